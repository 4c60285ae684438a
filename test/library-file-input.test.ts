import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileInput, openDestination, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, streamOf } from './support/records.js';

// The library's file input (fileInput): read as `pgland load --input` reads
// a file, and closed by the load however the load ends.

const dir = mkdtempSync(join(tmpdir(), 'pgland-file-input-'));
let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('library_file_input');
  dest = await openDestination(db.config({ schema: 'landing', batch_size: 500 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Whether this process holds `path` open. */
function isOpen(path: string): boolean {
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // the fd of readdir itself, gone by now
    }
  });
}

async function rows(customer: string): Promise<unknown[]> {
  const { rows } = await db.pool.query(
    `SELECT id, first_name, last_name, _pgland_raw_data FROM landing.crm_contacts WHERE _pgland_customer_id = $1 ORDER BY id`,
    [customer],
  );
  return rows;
}

describe('fileInput', () => {
  it('lands a file (records across many 1 MiB reads) as a stream of it lands, and closes it', async () => {
    const records = Array.from({ length: 6000 }, (_, i) => contact(i + 1, 1, { notes: 'x'.repeat(i % 700) }));
    const path = join(dir, 'contacts.ndjson');
    writeFileSync(path, ndjson(records));
    const input = fileInput(path);
    const result = await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'salesforce', customerId: 'file', input });
    expect(result.status).toBe('succeeded');
    expect(result.counts.inserted).toBe(6000);
    expect(isOpen(path)).toBe(false);
    const reference = await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'salesforce', customerId: 'stream', input: streamOf(records) });
    expect(reference.status).toBe('succeeded');
    expect(await rows('file')).toEqual(await rows('stream'));
  });

  it('is closed when its load is cancelled half way, with the rest unread', async () => {
    const path = join(dir, 'cancelled.ndjson');
    writeFileSync(path, ndjson(Array.from({ length: 50_000 }, (_, i) => contact(i + 1))));
    const stop = new AbortController();
    const result = await dest.load({
      kind: 'common',
      object: 'crm_contacts',
      provider: 'salesforce',
      customerId: 'cancelled',
      input: fileInput(path),
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    expect(result.status).toBe('cancelled');
    expect(isOpen(path)).toBe(false);
  });

  it('fails the run of a file it cannot read, naming the file', async () => {
    const path = join(dir, 'missing.ndjson');
    const result = await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'salesforce', customerId: 'missing', input: fileInput(path) });
    expect(result.status).toBe('failed');
    expect(String(result.error?.message)).toContain(path);
  });
});
