import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { csvLine } from './csv.js';
import { changedInIncrement, contact, missingInFullRefresh, type Contact, type RecordSize } from './generate.js';

/** Bump when generate.ts or csv.ts change what they write: cached files are then regenerated. */
const GENERATOR_VERSION = 1;

export interface DataFile {
  path: string;
  bytes: number;
  rows: number;
}

/** The files of one size: the first load, the 10%-changed increment, the 1%-missing full refresh. */
export interface Dataset {
  size: number;
  /** Bytes per NDJSON line, roughly: 620 (compact contacts) or 2300 (HubSpot-like, 1.5 KB raw payload). */
  recordSize: RecordSize;
  first: DataFile;
  incr: DataFile;
  full: DataFile;
  firstCsv: DataFile;
  incrCsv: DataFile;
}

type Variant = 'first' | 'incr' | 'full';

/** Record `n` as the variant's file has it, or null when the file leaves it out. */
function recordOf(variant: Variant, n: number, recordSize: RecordSize): Contact | null {
  if (variant === 'first') return contact(n, 1, recordSize);
  if (variant === 'full' && missingInFullRefresh(n)) return null;
  return contact(n, changedInIncrement(n) ? 2 : 1, recordSize);
}

/**
 * The dataset's folder: the generator's version, the record count and, for
 * other than the original 620-byte records, the record size (so that the
 * caches of earlier runs stay valid).
 */
export function datasetDir(cacheDir: string, size: number, recordSize: RecordSize): string {
  return join(cacheDir, `contacts-v${GENERATOR_VERSION}-${size}${recordSize === 620 ? '' : `-${recordSize}b`}`);
}

/** Writes a file through a temporary name, so that an interrupted run never leaves a truncated file in the cache. */
export async function writeFile(path: string, size: number, line: (n: number) => string | null): Promise<DataFile> {
  const tmp = path + '.partial';
  const out = createWriteStream(tmp);
  let rows = 0;
  let chunk = '';
  for (let n = 0; n < size; n++) {
    const text = line(n);
    if (text === null) continue;
    rows++;
    chunk += text;
    if (chunk.length >= 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  renameSync(tmp, path);
  return { path, bytes: statSync(path).size, rows };
}

function rowsOf(variant: Variant, size: number): number {
  if (variant !== 'full') return size;
  let rows = 0;
  for (let n = 0; n < size; n++) if (!missingInFullRefresh(n)) rows++;
  return rows;
}

/**
 * The dataset of one size, generated on first use into `cacheDir` and reused
 * afterwards (the files are deterministic, so a cached file is the same file).
 */
export async function dataset(cacheDir: string, size: number, recordSize: RecordSize, log: (s: string) => void): Promise<Dataset> {
  const dir = datasetDir(cacheDir, size, recordSize);
  mkdirSync(dir, { recursive: true });
  const make = async (name: string, variant: Variant, csv: boolean): Promise<DataFile> => {
    const path = join(dir, name);
    if (existsSync(path)) return { path, bytes: statSync(path).size, rows: rowsOf(variant, size) };
    log(`generating ${name} (${size} records of about ${recordSize} bytes) in ${dir}`);
    return writeFile(path, size, (n) => {
      const r = recordOf(variant, n, recordSize);
      return r === null ? null : csv ? csvLine(r) : JSON.stringify(r) + '\n';
    });
  };
  return {
    size,
    recordSize,
    first: await make('first.ndjson', 'first', false),
    incr: await make('incr.ndjson', 'incr', false),
    full: await make('full.ndjson', 'full', false),
    firstCsv: await make('first.csv', 'first', true),
    incrCsv: await make('incr.csv', 'incr', true),
  };
}
