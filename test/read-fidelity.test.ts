import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSource, readSource, type ReadSpec, type SourceConnection } from '../src/index.js';
import { quoteLiteral } from '../src/sql/ident.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 17: pgland read builds each row's JSON from COPY's text in Node; it
// must be the JSON row_to_json writes, for every type and every hostile
// value, and the values it writes into its COPY statements (positions,
// filters) must be data, whatever they hold.

let db: TestDatabase;
let conn: SourceConnection;

const HOSTILE = [
  "x' OR '1'='1",
  "'; DROP TABLE kinds; --",
  '\\',
  "\\'",
  "E'\\''",
  'back\\slash\\\\two',
  'tab\there',
  'new\nline\r\n',
  '$$dollar$$',
  '"double"',
  '\u0001\u001f\u007f control',
  'ü 日本 😀 \u2028',
  ' ',
  '',
  '\\N',
  'end\\',
];

beforeAll(async () => {
  db = await freshDatabase('read_fidelity');
  await db.pool.query(`
    CREATE TYPE mood AS ENUM ('ok', 'sad');
    CREATE TYPE pair AS (a int, b text);
    CREATE TABLE kinds (
      id int PRIMARY KEY,
      v int NOT NULL,
      t text, n numeric, f8 float8, f4 real, b boolean, i8 bigint,
      tz timestamptz, ts timestamp, d date, j json, jb jsonb,
      ai int[], at timestamptz[], atext text[], p pair, m mood,
      by bytea, iv interval, u uuid, tm time, tt timetz, r int4range, x xml, mn money
    )`);
  const rows: string[] = [
    `(1, 1, 'plain', 1.50, 0.1, 1.5, true, 9007199254740993, '2026-01-15 10:30:00.5+00', '2026-01-15 10:30:00.123456', '2026-01-15',
      '{"b": 1,  "a" : [1, 2]}', '{"b": 1, "a": "x\\"y"}', '{1,NULL,3}', '{"2026-01-15 10:30:00+00",NULL}', '{"a\\"b","c,d","NULL",NULL}',
      ROW(1, 'x"y'), 'ok', '\\x00ff', '1 day 02:03:04.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10:30:00', '10:30:00+02', '[1,5)', '<a>x</a>', 12.34)`,
    `(2, 1, NULL, 'NaN', 'NaN', '-Infinity', false, -1, 'infinity', '-infinity', 'infinity', 'null', 'null', '{}', '{}', '{}',
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    `(3, 2, E'\\\\N', 12345678901234567890.123456789012345678, 'Infinity', '-0', NULL, NULL, '0044-03-15 10:00:00+00 BC', '0044-03-15 10:00:00 BC', '0044-03-15 BC',
      '"just a string"', '[1, "two", null, {"x": [true]}]', NULL, NULL, NULL, ROW(NULL, NULL), 'sad', '\\x', '-3 mons', NULL, NULL, NULL, 'empty', NULL, -1)`,
    `(4, 2, 'x', -0.000001, 1e300, 3.4e38, true, 0, '1900-01-01 00:00:00+05:21:10', '9999-12-31 23:59:59.999999', '2000-02-29',
      '{}', '{}', '{{1,2},{3,4}}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
  ];
  await db.pool.query(`INSERT INTO kinds VALUES ${rows.join(',\n')}`);
  // Hostile text in every column a statement is built from: the key, the cursor and filter values.
  await db.pool.query(`CREATE TABLE hostile (k text PRIMARY KEY, c text NOT NULL, note text)`);
  for (const [i, h] of HOSTILE.entries()) {
    await db.pool.query('INSERT INTO hostile VALUES ($1, $2, $3), ($4, $2, $1)', [h, HOSTILE[(i * 7) % HOSTILE.length], String(i), `k${i}${h}`]);
  }
  conn = await connectSource(db.config());
});
afterAll(async () => {
  await conn?.close();
  await db?.drop();
});

async function readAll(spec: ReadSpec): Promise<{ records: { id: string; raw_data: Record<string, unknown> }[]; text: string }> {
  let text = '';
  await readSource(conn, spec, { write: (t) => void (text += t) });
  return {
    text,
    records: text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l)),
  };
}

describe('pgland read: the JSON of every type (issue 17)', () => {
  it('writes each row as row_to_json does, type by type', async () => {
    const { records } = await readAll({ source: { table: 'kinds' }, key: 'id', cursor: 'v', pageSize: 3 });
    const client = await conn.pool.connect();
    try {
      // The same session settings as a read's pages: ISO dates, exact floats, ISO intervals, UTC.
      await client.query("SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET IntervalStyle = 'iso_8601'");
      const expected = (await client.query<{ j: string }>('SELECT row_to_json(k)::text AS j FROM kinds k ORDER BY v, id')).rows.map((r) => JSON.parse(r.j));
      expect(records.map((r) => r.raw_data)).toEqual(expected);
      // Exact digits: a numeric and a bigint past 2^53 are not rounded through a double on the way.
      const line = (await readAll({ source: { table: 'kinds' }, key: 'id', cursor: 'v', filters: [{ column: 'id', op: 'in', value: ['1', '3'] }] })).text;
      expect(line).toContain('"i8":9007199254740993');
      expect(line).toContain('"n":12345678901234567890.123456789012345678');
      expect(line).toContain('"n":1.50');
    } finally {
      client.release();
    }
  });

  it('hostile keys, cursors and filter values are data: every row once, page by page of one row', async () => {
    const { records } = await readAll({ source: { table: 'hostile' }, key: 'k', cursor: 'c', pageSize: 1 });
    const all = (await db.pool.query<{ k: string; c: string; note: string }>('SELECT k, c, note FROM hostile')).rows;
    expect(records.map((r) => r.id).sort()).toEqual(all.map((r) => r.k).sort());
    for (const r of records) expect(r.raw_data).toEqual(all.find((a) => a.k === r.id));
    for (const h of HOSTILE) {
      const eq = await readAll({ source: { table: 'hostile' }, key: 'k', cursor: 'c', filters: [{ column: 'k', op: '=', value: h }] });
      expect(eq.records.map((r) => r.id)).toEqual([h]);
      const since = await readAll({ source: { table: 'hostile' }, key: 'k', cursor: 'c', start: { cursor: h, key: h } });
      const after = await db.pool.query<{ k: string }>('SELECT k FROM hostile WHERE (c, k) > ($1, $1) ORDER BY c, k', [h]);
      expect(since.records.map((r) => r.id)).toEqual(after.rows.map((a) => a.k));
    }
    // A query source that closes the wrapping's parentheses to append a statement: refused before any page runs.
    for (const query of [
      'SELECT k, c FROM hostile) AS s) TO STDOUT; DELETE FROM hostile; COPY (SELECT 1 FROM (SELECT 1',
      'SELECT k, c FROM hostile) AS s; DELETE FROM hostile; SELECT * FROM (SELECT 1',
      'SELECT k, c FROM hostile; COMMIT; DELETE FROM hostile',
    ]) {
      await expect(readAll({ source: { query }, key: 'k', cursor: 'c' }), query).rejects.toThrow();
    }
    const list = await readAll({ source: { table: 'hostile' }, key: 'k', cursor: 'c', filters: [{ column: 'k', op: 'in', value: HOSTILE }] });
    expect(list.records).toHaveLength(HOSTILE.length);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM hostile')).rows[0].n).toBe(2 * HOSTILE.length);
  });

  it('a row larger than many chunks of COPY output comes whole, between small ones', async () => {
    await db.pool.query(`CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, t text, j jsonb)`);
    await db.pool.query(
      `INSERT INTO big VALUES (1, 1, 'small', '{}'), (2, 2, repeat(E'ab\\tc"\\n\\\\', 1000000), (SELECT jsonb_agg(g) FROM generate_series(1, 300000) g)), (3, 3, 'after', '[]')`,
    );
    const { records } = await readAll({ source: { table: 'big' }, key: 'id', cursor: 'v' });
    expect(records.map((r) => r.id)).toEqual(['1', '2', '3']);
    const t = (await db.pool.query<{ t: string }>('SELECT t FROM big WHERE id = 2')).rows[0]!.t;
    expect(t.length).toBe(7_000_000);
    expect(records[1]!.raw_data.t).toBe(t);
    expect((records[1]!.raw_data.j as number[]).length).toBe(300_000);
    expect(records[2]!.raw_data).toEqual({ id: 3, v: 3, t: 'after', j: [] });
  });

  it('quoteLiteral gives back every hostile value exactly, whatever standard_conforming_strings says', async () => {
    const client = await conn.pool.connect();
    try {
      for (const scs of ['on', 'off']) {
        await client.query(`SET standard_conforming_strings = ${scs}`);
        for (const h of HOSTILE) {
          const { rows } = await client.query<{ v: string }>({ text: `SELECT ${quoteLiteral(h)}::text AS v`, queryMode: 'simple' } as never);
          expect(rows[0]!.v, `${JSON.stringify(h)} with standard_conforming_strings ${scs}`).toBe(h);
        }
      }
      expect(() => quoteLiteral('a\0b')).toThrow(/NUL/);
    } finally {
      client.release(true);
    }
  });
});
