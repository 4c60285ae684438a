import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { EXCERPT_BYTES, readLineChunks, type Line } from '../src/input/lines.js';
import { silentLogger } from '../src/log.js';
import { airbyteConfig, singerConfig } from '../src/protocols/config.js';
import { runAirbyteWrite } from '../src/protocols/airbyte.js';
import { parseCatalog } from '../src/protocols/catalog.js';
import { runSinger } from '../src/protocols/singer.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

/*
 * The threat model's checklist (docs/security.md, "Limits: memory,
 * connections and bad input"), item 10: a line longer than max_record_bytes
 * is never held; it is a reject, and the rest of the input lands.
 */

const MiB = 1024 * 1024;
const SCHEMA = 'sec_input';
let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('security_input');
  dest = await openDestination(db.config({ schema: SCHEMA, max_record_bytes: MiB }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

/** `total` bytes of one line with no newline, in 64 KiB chunks of one reused buffer (nothing of it is kept here). */
async function* longLine(head: string, total: number): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const first = Buffer.from(head);
  yield first;
  for (let sent = first.length; sent < total; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, total - sent));
}

async function* concat(...parts: (string | AsyncIterable<Buffer>)[]): AsyncGenerator<Buffer | string> {
  for (const p of parts) {
    if (typeof p === 'string') yield p;
    else yield* p;
  }
}

describe('a line longer than max_record_bytes (item 10)', () => {
  it('is skipped as it streams: the reader never holds more than the cap, and yields the line with its number, length and first bytes', async () => {
    const stats = { maxCarriedBytes: 0 };
    const head = '{"id":"huge","last_modified_at":"2026-01-01T00:00:00Z","data":{"blob":"';
    const input = concat('{"id":"1"}\n', longLine(head, 50 * MiB), '\n{"id":"2"}\n');
    const lines: Line[] = [];
    for await (const chunk of readLineChunks(input, { maxLineBytes: MiB, stats })) lines.push(...chunk);

    expect(lines.map((l) => [l.lineNumber, l.tooLong?.bytes])).toEqual([
      [1, undefined],
      [2, 50 * MiB],
      [3, undefined],
    ]);
    expect(lines[1]!.tooLong).toEqual({ bytes: 50 * MiB, limit: MiB });
    expect(Buffer.byteLength(lines[1]!.text)).toBe(EXCERPT_BYTES);
    expect(lines[1]!.text.startsWith(head)).toBe(true);
    // What the reader held of the long line stayed below the cap (plus nothing: chunks are not copied).
    expect(stats.maxCarriedBytes).toBeGreaterThan(0);
    expect(stats.maxCarriedBytes).toBeLessThanOrEqual(MiB);
  });

  it('is skipped within one chunk too, and at the end of the input', async () => {
    const big = 'x'.repeat(2 * MiB);
    const lines: Line[] = [];
    for await (const chunk of readLineChunks(Readable.from([`{"id":"a"}\n${big}\n{"id":"b"}\n${big}`]), { maxLineBytes: MiB })) lines.push(...chunk);
    expect(lines.map((l) => [l.lineNumber, l.tooLong?.bytes ?? l.text])).toEqual([
      [1, '{"id":"a"}'],
      [2, 2 * MiB],
      [3, '{"id":"b"}'],
      [4, 2 * MiB],
    ]);
  });

  it('pgland load: the long line is a reject with its line, length and excerpt; the other records land', async () => {
    const ts = '2026-01-01T00:00:00Z';
    const head = `{"id":"huge","last_modified_at":"${ts}","data":{"blob":"`;
    const input = concat(
      JSON.stringify({ id: 'a', last_modified_at: ts, data: {} }) + '\n',
      longLine(head, 20 * MiB),
      '"}}\n' + JSON.stringify({ id: 'b', last_modified_at: ts, data: {} }) + '\n',
    );
    const result = await dest.load({ kind: 'custom', provider: 'p', object: 'blobs', customerId: 'acme', input });
    expect(result.status).toBe('partial');
    expect(result.counts).toMatchObject({ inserted: 2, rejected: 1 });
    const { rows } = await db.pool.query(`SELECT id FROM ${SCHEMA}.custom_blobs ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
    const rejects = await db.pool.query(`SELECT line_number, record_id, reason, raw_text FROM ${SCHEMA}._pgland_rejects WHERE run_id = $1`, [result.runId]);
    expect(rejects.rows).toEqual([
      {
        line_number: '2',
        record_id: 'huge',
        reason: expect.stringMatching(/^the line is 20971523 bytes, more than max_record_bytes \(1048576\): it was skipped unread/),
        raw_text: expect.stringMatching(/^\{"id":"huge".*a{50}$/),
      },
    ]);
    expect(Buffer.byteLength(rejects.rows[0].raw_text)).toBe(EXCERPT_BYTES);
  });

  it('Singer: a RECORD too long is a reject of its stream and the sync goes on; a SCHEMA too long stops it, naming the line', async () => {
    const schema = { type: 'SCHEMA', stream: 'notes', schema: { type: 'object', properties: { k: { type: 'string' } } }, key_properties: ['k'] };
    const out: string[] = [];
    const result = await runSinger(
      dest,
      {
        input: concat(
          JSON.stringify(schema) + '\n' + JSON.stringify({ type: 'RECORD', stream: 'notes', record: { k: 'a' } }) + '\n',
          longLine('{"type":"RECORD","stream":"notes","record":{"k":"big","body":"', 3 * MiB),
          '"}}\n' + JSON.stringify({ type: 'RECORD', stream: 'notes', record: { k: 'b' } }) + '\n' + JSON.stringify({ type: 'STATE', value: { at: 1 } }) + '\n',
        ),
        emit: (line) => void out.push(line),
        log: silentLogger(),
      },
      { ...singerConfig({}).options, customerId: 'acme' },
    );
    expect(result.records).toBe(3);
    expect(out).toEqual(['{"at":1}']);
    const { rows } = await db.pool.query(`SELECT id FROM ${SCHEMA}.${result.streams[0]!.table} ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
    const rejects = await db.pool.query(
      `SELECT reason, raw_text FROM ${SCHEMA}._pgland_rejects j JOIN ${SCHEMA}._pgland_runs r USING (run_id) WHERE r.object = 'notes'`,
    );
    expect(rejects.rows).toEqual([
      {
        reason: expect.stringMatching(/^the Singer message on line 3: the line is 3145731 bytes, more than max_record_bytes \(1048576\)/),
        raw_text: expect.stringContaining('{\\"type\\":\\"RECORD\\",\\"stream\\":\\"notes\\"'),
      },
    ]);

    const stopped = runSinger(
      dest,
      { input: concat(longLine('{"type":"SCHEMA","stream":"other","schema":{"properties":{"', 2 * MiB), '"}}\n'), emit: () => undefined, log: silentLogger() },
      { ...singerConfig({}).options, customerId: 'acme' },
    );
    await expect(stopped).rejects.toMatchObject({
      code: 'protocol_error',
      message: expect.stringMatching(new RegExp(`^line 1: the message is ${2 * MiB + 3} bytes, more than max_record_bytes`)),
    });
  });

  it('Airbyte: a RECORD too long is a reject of its stream, counted in the STATE echoed after it', async () => {
    const catalog = parseCatalog({
      streams: [
        {
          stream: { name: 'docs', json_schema: { type: 'object', properties: { id: { type: 'integer' } } }, supported_sync_modes: ['incremental'] },
          sync_mode: 'incremental',
          destination_sync_mode: 'append_dedup',
          primary_key: [['id']],
          cursor_field: [],
        },
      ],
    });
    const record = (id: number) => JSON.stringify({ type: 'RECORD', record: { stream: 'docs', data: { id }, emitted_at: 1 } }) + '\n';
    const out: string[] = [];
    const result = await runAirbyteWrite(
      dest,
      catalog,
      {
        input: concat(
          record(1),
          longLine('{"type":"RECORD","record":{"stream":"docs","emitted_at":1,"data":{"id":2,"body":"', 2 * MiB),
          '"}}}\n',
          record(3),
          '{"type":"STATE","state":{"type":"LEGACY","data":{}}}\n',
        ),
        emit: (line) => void out.push(line),
        log: silentLogger(),
      },
      { ...airbyteConfig({}).options, customerId: 'acme' },
    );
    expect(out).toEqual(['{"type":"STATE","state":{"type":"LEGACY","data":{},"destinationStats":{"recordCount":3.0}}}']);
    const { rows } = await db.pool.query(`SELECT id FROM ${SCHEMA}.${result.streams[0]!.table} ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual(['1', '3']);
    const rejects = await db.pool.query(`SELECT reason FROM ${SCHEMA}._pgland_rejects j JOIN ${SCHEMA}._pgland_runs r USING (run_id) WHERE r.object = 'docs'`);
    expect(rejects.rows).toEqual([{ reason: expect.stringMatching(new RegExp(`^the Airbyte message on line 2: the line is ${2 * MiB + 4} bytes`)) }]);
  });
});
