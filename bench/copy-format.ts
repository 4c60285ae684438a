import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ColumnType } from '../src/encode/values.js';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { encodeRecord } from '../src/encode/record.js';
import { parseEnvelope, type RecordEnvelope } from '../src/input/envelope.js';
import { readLines } from '../src/input/lines.js';
import { copyStageSql, createStageSql } from '../src/stage/stage.js';
import { CONTACTS } from './csv.js';
import { dataset } from './dataset.js';
import { parseSize, recordSizeArg } from './options.js';
import { median } from './report.js';
import { benchServer } from './server.js';

/**
 * Text against binary COPY for pgland's staging table, each side on its own:
 * Node's cost to encode the rows, and the server's cost to take them in (the
 * rows are encoded beforehand and sent from memory). The binary encoder is a
 * prototype for this measurement only: it knows the types crm_contacts uses.
 * Usage: [BENCH_RECORD_SIZE=620|2300] node dist/bench/copy-format.js [size=100k] [reps=5] [cache-dir=.pgland/bench] [database-url]
 */

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** Binary COPY of one record (same columns, same values as the text encoder), appended to `out`. */
function binaryRow(r: RecordEnvelope, out: Buffer[]): void {
  const fields: (Buffer | null)[] = [
    int8(r.lineNumber),
    Buffer.from(r.id),
    timestamptz(r.lastModifiedAt),
    Buffer.from([r.isDeleted ? 1 : 0]),
    jsonb(r.rawData),
  ];
  for (const c of CONTACTS.columns) fields.push(binaryValue(r.data[c.source.key], c.type));
  let size = 2;
  for (const f of fields) size += 4 + (f ? f.length : 0);
  const row = Buffer.allocUnsafe(size);
  row.writeInt16BE(fields.length, 0);
  let at = 2;
  for (const f of fields) {
    row.writeInt32BE(f ? f.length : -1, at);
    at += 4;
    if (f) at += f.copy(row, at);
  }
  out.push(row);
}

function int8(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
}

function timestamptz(text: string): Buffer {
  return int8((Date.parse(text) - PG_EPOCH_MS) * 1000);
}

function jsonb(value: unknown): Buffer | null {
  return value === null || value === undefined ? null : Buffer.from('\u0001' + JSON.stringify(value));
}

function binaryValue(value: unknown, type: ColumnType): Buffer | null {
  if (value === null || value === undefined) return null;
  if (type === 'jsonb') return jsonb(value);
  if (type === 'timestamptz') return timestamptz(String(value));
  if (type === 'text') return Buffer.from(String(value));
  throw new Error(`the binary prototype does not encode ${type}`);
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER = Buffer.concat([SIGNATURE, Buffer.alloc(8)]);
const TRAILER = Buffer.from([0xff, 0xff]);

async function records(path: string): Promise<RecordEnvelope[]> {
  const out: RecordEnvelope[] = [];
  for await (const line of readLines(createReadStream(path))) {
    const p = parseEnvelope(line);
    if ('record' in p) out.push(p.record);
  }
  return out;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

function encodeText(recs: RecordEnvelope[]): Buffer[] {
  const stats = newEncodeStats();
  const chunks: Buffer[] = [];
  let pending = '';
  for (const r of recs) {
    pending += encodeRecord(r, CONTACTS, stats, [], `${r.lineNumber}\t`);
    if (pending.length >= 256 * 1024) {
      chunks.push(Buffer.from(pending));
      pending = '';
    }
  }
  chunks.push(Buffer.from(pending));
  return chunks;
}

function encodeBinary(recs: RecordEnvelope[]): Buffer[] {
  const rows: Buffer[] = [HEADER];
  for (const r of recs) binaryRow(r, rows);
  rows.push(TRAILER);
  return rows;
}

/** Milliseconds for the server to take the rows into a fresh staging table. */
async function copyInto(client: pg.Client, chunks: Buffer[], binary: boolean): Promise<number> {
  await client.query('BEGIN');
  await client.query(createStageSql(CONTACTS));
  const started = performance.now();
  const stream = client.query(copyFrom(copyStageSql(CONTACTS) + (binary ? ' WITH (FORMAT binary)' : '')));
  for (const c of chunks) if (!stream.write(c)) await once(stream, 'drain');
  stream.end();
  await once(stream, 'finish');
  const ms = performance.now() - started;
  await client.query('ROLLBACK');
  return ms;
}

async function main(): Promise<void> {
  const size = parseSize(process.argv[2] ?? '100k');
  const reps = Number(process.argv[3] ?? 5);
  const cacheDir = resolve(process.argv[4] ?? '.pgland/bench');
  const data = await dataset(cacheDir, size, recordSizeArg(process.env.BENCH_RECORD_SIZE), (s) => process.stderr.write(s + '\n'));
  const recs = await records(data.first.path);
  const server = await benchServer(process.argv[5], cacheDir);
  const client = new pg.Client({ connectionString: server.url, options: '-c TimeZone=UTC' });
  await client.connect();
  const result: Record<string, { encodeCpuMs: number[]; copyMs: number[]; bytes: number }> = {};
  try {
    for (let r = 0; r < reps; r++) {
      for (const format of r % 2 ? ['binary', 'text'] : ['text', 'binary']) {
        const binary = format === 'binary';
        const cpu = process.cpuUsage();
        const chunks = binary ? encodeBinary(recs) : encodeText(recs);
        const encodeCpuMs = cpuMs(cpu);
        const copyMs = await copyInto(client, chunks, binary);
        const entry = (result[format] ??= { encodeCpuMs: [], copyMs: [], bytes: chunks.reduce((s, c) => s + c.length, 0) });
        entry.encodeCpuMs.push(encodeCpuMs);
        entry.copyMs.push(copyMs);
      }
    }
  } finally {
    await client.end();
    await server.stop();
  }
  process.stdout.write(`${recs.length} records into the staging table, ${reps} repetitions (PostgreSQL ${server.version}):\n`);
  for (const [format, e] of Object.entries(result)) {
    process.stdout.write(
      `  ${format.padEnd(6)} Node encode ${((1000 * Math.min(...e.encodeCpuMs)) / recs.length).toFixed(2)} µs/record (least CPU), ` +
        `server COPY ${Math.round(recs.length / (median(e.copyMs) / 1000)).toLocaleString('en-US')} rows/s (median), ` +
        `${(e.bytes / recs.length).toFixed(0)} bytes/record\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
