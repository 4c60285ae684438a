import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { silentLogger } from '../src/log.js';
import { parseCatalog } from '../src/protocols/catalog.js';
import { airbyteConfig, singerConfig } from '../src/protocols/config.js';
import { runAirbyteWrite } from '../src/protocols/airbyte.js';
import { runSinger } from '../src/protocols/singer.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 22: numbers keep every digit. The payload of the issue landed as
// {"big": 12345678901234567000, "snow": 1790000000000000000, "dec": 1.1, "e": null}
// in a run that reported success: it went through JSON.parse and back.

const SCHEMA = 'precision';
const PAYLOAD = '{"big": 12345678901234567890, "snow": 1790000000000000123, "dec": 1.10000000000000000000001, "e": 1e400}';
/** The payload as jsonb prints it: keys sorted, 1e400 written out; every digit the same. */
const AS_JSONB = `{"e": 1${'0'.repeat(400)}, "big": 12345678901234567890, "dec": 1.10000000000000000000001, "snow": 1790000000000000123}`;
const DECLARED = { type: 'object', properties: { big: { type: 'number' }, snow: { type: 'integer' }, dec: { type: 'number' }, e: { type: 'number' } } };

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('precision');
  dest = await openDestination(db.config({ schema: SCHEMA }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

async function landed(table: string): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query(`SELECT big::text, snow::text, dec::text, e::text, _pgland_raw_data::text AS raw FROM ${SCHEMA}.${table}`);
  expect(rows).toHaveLength(1);
  return rows[0];
}

const EXACT = { big: '12345678901234567890', snow: '1790000000000000123', dec: '1.10000000000000000000001', e: '1' + '0'.repeat(400), raw: AS_JSONB };

describe('numbers keep every digit (issue 22)', () => {
  it('an input envelope: the raw payload and the typed columns take the digits as sent, with no problem', async () => {
    const line = `{"id": "n1", "last_modified_at": "2026-01-15T10:30:00Z", "raw_data": ${PAYLOAD}, "data": {"nested": ${PAYLOAD}}}\n`;
    const r = await dest.load({ kind: 'custom', object: 'numbers', provider: 'p', customerId: 'c', declared: DECLARED as never, input: Readable.from([line]) });
    expect(r.status).toBe('succeeded');
    expect(r.counts.problems).toBe(0);
    expect(await landed('custom_numbers')).toEqual(EXACT);
  });

  it('a value that does not fit its column is a problem row, never a rounded value', async () => {
    const line = '{"id": "n2", "last_modified_at": "2026-01-15T10:30:00Z", "raw_data": {"snow": 12345678901234567890, "e": 1e400}}\n';
    const declared = { type: 'object', properties: { snow: { type: 'integer' }, e: { type: 'number' } } };
    const r = await dest.load({ kind: 'custom', object: 'too_big', provider: 'p', customerId: 'c', declared: declared as never, input: Readable.from([line]) });
    expect(r.status).toBe('partial');
    const { rows } = await db.pool.query(`SELECT field, reason, value_excerpt FROM ${SCHEMA}._pgland_problems WHERE run_id = $1`, [r.runId]);
    expect(rows).toEqual([{ field: 'snow', reason: 'integer 12345678901234567890 is out of range for bigint', value_excerpt: '12345678901234567890' }]);
    const raw = await db.pool.query(`SELECT snow, _pgland_raw_data->>'snow' AS raw_snow FROM ${SCHEMA}.custom_too_big`);
    expect(raw.rows).toEqual([{ snow: null, raw_snow: '12345678901234567890' }]);
  });

  it('a Singer record', async () => {
    const text = [
      JSON.stringify({ type: 'SCHEMA', stream: 'singer_numbers', schema: DECLARED, key_properties: [] }),
      `{"type": "RECORD", "stream": "singer_numbers", "record": ${PAYLOAD}}`,
    ].join('\n');
    await runSinger(
      dest,
      { input: Readable.from([text + '\n']), emit: () => undefined, log: silentLogger() },
      { ...singerConfig({}).options, customerId: 'c' },
    );
    expect(await landed('singer_numbers')).toEqual(EXACT);
  });

  it('an Airbyte record', async () => {
    const catalog = parseCatalog({ streams: [{ stream: { name: 'airbyte_numbers', json_schema: DECLARED }, destination_sync_mode: 'append' }] });
    const text = `{"type": "RECORD", "record": {"stream": "airbyte_numbers", "emitted_at": 1, "data": ${PAYLOAD}}}\n`;
    await runAirbyteWrite(
      dest,
      catalog,
      { input: Readable.from([text]), emit: () => undefined, log: silentLogger() },
      { ...airbyteConfig({}).options, customerId: 'c' },
    );
    expect(await landed('airbyte_numbers')).toEqual(EXACT);
  });
});
