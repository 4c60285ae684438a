import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { convert, isTimestampText, type ColumnType } from '../src/encode/values.js';
import { openDestination, type DeclaredSchema, type Destination, type LoadResult } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('hostile_values');
  dest = await openDestination(db.config({ schema: 'landing', batch_retries: 0 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

const LM = '2026-01-15T10:30:00Z';
const schema: DeclaredSchema = {
  type: 'object',
  properties: {
    t: { type: 'string' },
    n: { type: 'number' },
    i: { type: 'integer' },
    b: { type: 'boolean' },
    ts: { type: 'string', format: 'date-time' },
    d: { type: 'string', format: 'date' },
    o: { type: 'object' },
    a: { type: 'array' },
    any: {},
  },
};

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let k = 0; k < depth; k++) v = k % 2 ? { k: v } : [v];
  return v;
}

/** One input line per case; a string is a line as is (not JSON.stringified). */
function cases(): { line: unknown; expect: 'landed' | 'rejected'; problems?: string[] }[] {
  const rec = (id: string, raw: Record<string, unknown>, lm = LM): Record<string, unknown> => ({ id, last_modified_at: lm, raw_data: raw });
  return [
    // Text PostgreSQL cannot hold as is: NUL is stripped, lone surrogates become U+FFFD.
    { line: rec('nul', { t: 'a\u0000b', o: { 'k\u0000': 'v\u0000' }, 'raw\u0000key': 1 }), expect: 'landed' },
    { line: rec('surrogate', { t: '\uD800x\uDFFF', o: { '\uDC00': '\uD83D' } }), expect: 'landed' },
    { line: rec('big', { t: 'x'.repeat(10 * 1024 * 1024), any: 'y'.repeat(1024 * 1024) }), expect: 'landed' },
    { line: rec('deep', { any: nested(1000), o: { deep: nested(999) } }), expect: 'landed' },
    // Deeper than anyone's JSON needs: JSON.stringify and jsonb both give up somewhere past a few thousand.
    {
      line: `{"id": "deeper", "last_modified_at": "${LM}", "raw_data": {"any": ${'['.repeat(100_000)}"bottom"${']'.repeat(100_000)}}}`,
      expect: 'rejected',
    },
    { line: '{"id": "broken", "last_modified_at": ', expect: 'rejected' },
    { line: '[1, 2, 3]', expect: 'rejected' },
    { line: { last_modified_at: LM, raw_data: {} }, expect: 'rejected' },
    { line: rec('x'.repeat(2000), {}), expect: 'rejected' },
    { line: rec('bad-lm', {}, '2026-01-15-05'), expect: 'rejected' },
    { line: rec('impossible-lm', {}, '2026-02-30T00:00:00Z'), expect: 'rejected' },
    // Wrong JSON types.
    {
      line: rec('types', { t: { x: 1 }, n: true, i: 'abc', b: 'yes', ts: 1700000000000, d: [2026, 1, 1], o: [1], a: 'not a list' }),
      expect: 'landed',
      problems: ['t', 'n', 'i', 'b', 'ts', 'd', 'o', 'a'],
    },
    // Out of range.
    { line: rec('range-1', { i: '9223372036854775808', n: '1e1001' }), expect: 'landed', problems: ['i', 'n'] },
    // Numbers land as sent (issue 22): 1e400 fits numeric and text; 1e20 is beyond bigint.
    {
      line: '{"id": "range-2", "last_modified_at": "2026-01-15T10:30:00Z", "raw_data": {"n": 1e400, "i": 1e20, "t": -1e400}}',
      expect: 'landed',
      problems: ['i'],
    },
    // eslint-disable-next-line no-loss-of-precision -- on purpose: JSON.stringify writes what the double holds
    { line: rec('range-3', { n: '1e-20000', i: 9007199254740993 }), expect: 'landed', problems: ['n'] },
    { line: rec('range-4', { i: '1'.repeat(1_000_000), n: '1'.repeat(3_000_000) + 'x' }), expect: 'landed', problems: ['i', 'n'] },
    // Impossible and malformed dates.
    { line: rec('date-1', { d: '2026-02-30', ts: '2026-02-29T10:00:00Z' }), expect: 'landed', problems: ['d', 'ts'] },
    { line: rec('date-2', { d: '2026-13-01', ts: '2026-01-15-05' }), expect: 'landed', problems: ['d', 'ts'] },
    { line: rec('date-3', { d: '0000-01-01', ts: '2026-01-15T10:00:00+16:00' }), expect: 'landed', problems: ['d', 'ts'] },
    { line: rec('date-4', { ts: '2026-01-15T25:00:00Z', d: 'yesterday' }), expect: 'landed', problems: ['d', 'ts'] },
    // Values that fit, at the edges.
    {
      line: rec('edges', {
        t: 12.5,
        n: '-0.000001e-3',
        i: '-9223372036854775808',
        b: 'TRUE',
        ts: '2024-02-29 23:59:59.999999999-15:59',
        d: '2026-01-15T23:00:00+05:00',
        o: {},
        a: [],
      }),
      expect: 'landed',
    },
    // "" is no value in a typed column (providers send it for unset properties).
    { line: rec('empty', { n: '', i: '', b: '', ts: '', d: '', t: '' }), expect: 'landed' },
  ];
}

function idOf(line: unknown): string {
  return (typeof line === 'string' ? JSON.parse(line) : line).id;
}

async function runRow(runId: string): Promise<Record<string, string>> {
  const { rows } = await db.pool.query(
    `SELECT status, rows_read, rows_inserted, rows_updated, rows_unchanged, rows_superseded, rows_rejected, problems
       FROM landing._pgland_runs WHERE run_id = $1`,
    [runId],
  );
  return rows[0];
}

describe('hostile values (issue 3)', () => {
  it('lands or keeps every line: landed rows, rejects and problems add up to the lines read', async () => {
    const all = cases();
    const result: LoadResult = await dest.load({
      kind: 'custom',
      object: 'hostile',
      provider: 'any',
      customerId: 'acme',
      declared: schema,
      input: streamOf(
        all.map((c) => c.line),
        1 << 20,
      ),
    });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('partial');

    const c = result.counts;
    expect(c.rowsRead).toBe(all.length);
    expect(c.inserted + c.updated + c.unchanged + c.superseded + c.rejected).toBe(c.rowsRead);
    const run = await runRow(result.runId);
    expect(Number(run.rows_read)).toBe(all.length);
    expect(Number(run.rows_inserted) + Number(run.rows_updated) + Number(run.rows_unchanged) + Number(run.rows_superseded) + Number(run.rows_rejected)).toBe(
      all.length,
    );

    // Every line is either a landed row or a reject, by line number.
    const landedLines = all.flatMap((x, i) => (x.expect === 'landed' ? [i + 1] : []));
    const rejectedLines = all.flatMap((x, i) => (x.expect === 'rejected' ? [i + 1] : []));
    const rejects = await db.pool.query(`SELECT line_number::int, reason FROM landing._pgland_rejects WHERE run_id = $1 ORDER BY 1`, [result.runId]);
    expect(rejects.rows.map((r) => r.line_number)).toEqual(rejectedLines);
    for (const r of rejects.rows) expect(r.reason.length).toBeGreaterThan(10);
    const landedIds = all.flatMap((x) => (x.expect === 'landed' ? [idOf(x.line)] : []));
    const landed = await db.pool.query(`SELECT id FROM landing.custom_hostile ORDER BY id`);
    expect(landed.rows.map((r) => r.id)).toEqual([...landedIds].sort());
    expect(landedLines).toHaveLength(landedIds.length);

    // One problem per value that did not fit, with its run, line, record, field, column, excerpt and reason.
    const problems = await db.pool.query(
      `SELECT line_number::int, record_id, field, column_name, value_excerpt, reason FROM landing._pgland_problems WHERE run_id = $1 ORDER BY 1, 3`,
      [result.runId],
    );
    const expected = all.flatMap((x, i) => (x.problems ?? []).map((f) => `${i + 1}:${f}`)).sort();
    expect(problems.rows.map((p) => `${p.line_number}:${p.field}`).sort()).toEqual(expected);
    expect(c.problems).toBe(expected.length);
    for (const p of problems.rows) {
      expect(p.column_name).toBe(p.field);
      expect(p.record_id).toBe(idOf(all[p.line_number - 1]!.line));
      expect(p.value_excerpt.length).toBeLessThanOrEqual(60);
      expect(p.reason).toMatch(/expected|range|exponent|decimal|valid|JSON number/);
    }
    const byKey = new Map(problems.rows.map((p) => [`${p.record_id}:${p.field}`, p]));
    expect(byKey.get('types:a')).toMatchObject({ value_excerpt: 'not a list', reason: expect.stringContaining('a JSON array') });
    expect(byKey.get('types:t')).toMatchObject({ value_excerpt: '{"x":1}' });
    expect(byKey.get('range-4:i')!.value_excerpt).toMatch(/^1{57}\.\.\.$/);
    expect(byKey.get('date-1:d')).toMatchObject({ value_excerpt: '2026-02-30' });

    // The values themselves: NUL stripped, surrogates replaced, big and deep values whole.
    const { rows } = await db.pool.query(
      `SELECT id, t, length(t) AS t_len, length("any" #>> '{}') AS any_len, n::text, i::text, b, ts::text, d::text, o, a,
              jsonb_typeof("any") AS any_type, _pgland_raw_data AS raw, _pgland_raw_data::text AS raw_text
         FROM landing.custom_hostile WHERE id IN ('nul', 'surrogate', 'big', 'deep', 'types', 'edges', 'empty', 'range-2')`,
    );
    const row = new Map(rows.map((r) => [r.id, r]));
    expect(row.get('nul')).toMatchObject({ t: 'ab', o: { k: 'v' } });
    expect(row.get('nul').raw).toMatchObject({ rawkey: 1 });
    expect(row.get('surrogate')).toMatchObject({ t: '\uFFFDx\uFFFD', o: { '\uFFFD': '\uFFFD' } });
    expect(row.get('big')).toMatchObject({ t_len: 10 * 1024 * 1024, any_len: 1024 * 1024 });
    expect(row.get('deep').any_type).toBe('object');
    const depth = await db.pool.query(
      `WITH RECURSIVE walk(v, n) AS (SELECT "any", 0 FROM landing.custom_hostile WHERE id = 'deep'
         UNION ALL SELECT coalesce(v->0, v->'k'), n + 1 FROM walk WHERE jsonb_typeof(v) IN ('array', 'object'))
       SELECT max(n) AS n FROM walk`,
    );
    expect(depth.rows[0].n).toBe(1000);
    // A bad value lands as NULL; the record and its raw payload are whole.
    expect(row.get('types')).toMatchObject({ t: null, n: null, i: null, b: null, ts: null, d: null, o: null, a: null });
    expect(row.get('types').raw).toMatchObject({ i: 'abc', a: 'not a list', o: [1] });
    // 1e400 is beyond a double, not beyond numeric: it lands as sent, in the columns and the raw payload (issue 22).
    expect(row.get('range-2')).toMatchObject({ n: '1' + '0'.repeat(400), i: null, t: '-1e400' });
    expect(row.get('range-2').raw_text).toBe(`{"i": 100000000000000000000, "n": 1${'0'.repeat(400)}, "t": -1${'0'.repeat(400)}}`);
    expect(row.get('edges')).toMatchObject({
      t: '12.5',
      n: '-0.000000001',
      i: '-9223372036854775808',
      b: true,
      ts: '2024-03-01 15:59:00+00',
      d: '2026-01-15',
      o: {},
      a: [],
    });
    expect(row.get('empty')).toMatchObject({ n: null, i: null, b: null, ts: null, d: null, t: '' });

    const nul = await db.pool.query(`SELECT nul_stripped::int FROM landing._pgland_runs WHERE run_id = $1`, [result.runId]);
    expect(nul.rows[0].nul_stripped).toBeGreaterThanOrEqual(4);
  });

  it('lands a record too wide for one PostgreSQL row, leaving the last columns to the raw payload', async () => {
    const fields = Array.from({ length: 600 }, (_, k) => `field_${String(k).padStart(3, '0')}`);
    const wide: DeclaredSchema = { properties: Object.fromEntries(fields.map((f) => [f, { type: 'string' }])) };
    const full = Object.fromEntries(fields.map((f) => [f, `a twenty byte value ${f}`]));
    const sparse = Object.fromEntries(fields.slice(0, 50).map((f) => [f, `a twenty byte value ${f}`]));
    const result = await dest.load({
      kind: 'custom',
      object: 'wide',
      provider: 'any',
      customerId: 'acme',
      declared: wide,
      input: streamOf([
        { id: 'full', last_modified_at: LM, raw_data: full },
        { id: 'sparse', last_modified_at: LM, raw_data: sparse },
      ]),
    });
    expect(result.error).toBeUndefined();
    expect(result.counts).toMatchObject({ rowsRead: 2, inserted: 2 });
    expect(result.counts.problems).toBeGreaterThan(100);
    const problems = await db.pool.query(
      `SELECT record_id, min(field) AS first, max(field) AS last, count(*)::int AS n, min(reason) AS reason
         FROM landing._pgland_problems WHERE run_id = $1 GROUP BY 1`,
      [result.runId],
    );
    expect(problems.rows).toHaveLength(1);
    expect(problems.rows[0]).toMatchObject({ record_id: 'full', last: 'field_599', reason: expect.stringContaining('one PostgreSQL row') });
    const kept = 600 - problems.rows[0].n;
    const { rows } = await db.pool.query(
      `SELECT field_000, field_${String(kept - 1).padStart(3, '0')} AS last_kept, field_599, _pgland_raw_data->>'field_599' AS raw_599
         FROM landing.custom_wide WHERE id = 'full'`,
    );
    expect(rows[0]).toEqual({
      field_000: 'a twenty byte value field_000',
      last_kept: `a twenty byte value field_${String(kept - 1).padStart(3, '0')}`,
      field_599: null,
      raw_599: 'a twenty byte value field_599',
    });
  });

  it('types at most 1,500 declared fields, so that CREATE TABLE never meets the 1,600-column limit', async () => {
    const fields = Array.from({ length: 1700 }, (_, k) => `f${String(k).padStart(4, '0')}`);
    const huge: DeclaredSchema = { properties: Object.fromEntries(fields.map((f) => [f, { type: 'integer' }])) };
    const result = await dest.load({
      kind: 'custom',
      object: 'huge',
      provider: 'any',
      customerId: 'acme',
      declared: huge,
      input: streamOf([{ id: 'h1', last_modified_at: LM, raw_data: { f0000: 1, f1499: 2, f1699: 3 } }]),
    });
    expect(result.error).toBeUndefined();
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });
    const { rows } = await db.pool.query(`SELECT f0000, f1499, _pgland_raw_data->>'f1699' AS raw FROM landing.custom_huge`);
    expect(rows[0]).toEqual({ f0000: '1', f1499: '2', raw: '3' });
    const cols = await db.pool.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'landing' AND table_name = 'custom_huge'`);
    expect(cols.rows[0].n).toBe(1500 + 9);
  });

  it('a declared field named like an Object.prototype member is not read from the prototype', async () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    const proto: DeclaredSchema = { properties: Object.fromEntries(names.map((f) => [f, { type: 'string' }])) };
    const result = await dest.load({
      kind: 'custom',
      object: 'proto',
      provider: 'any',
      customerId: 'acme',
      declared: proto,
      input: streamOf([{ id: 'p1', last_modified_at: LM, raw_data: { other: 1 } }]),
    });
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });
    const { rows } = await db.pool.query(`SELECT constructor, to_string, proto, has_own_property, value_of FROM landing.custom_proto`);
    expect(rows[0]).toEqual({ constructor: null, to_string: null, proto: null, has_own_property: null, value_of: null });
  });

  it('never passes the server a date, timestamp or number it would refuse (which would fail the COPY)', async (ctx) => {
    const version = await db.pool.query(`SELECT current_setting('server_version_num')::int AS v`);
    if (version.rows[0].v < 160000) ctx.skip(); // pg_input_is_valid is PostgreSQL 16+

    // Every combination of awkward date and time parts.
    const dates: string[] = [];
    const years = ['0000', '0001', '1970', '2024', '2026', '9999', '10000', '197'];
    const months = ['00', '01', '02', '12', '13', '1'];
    const days = ['00', '01', '28', '29', '30', '31', '32'];
    const times = [
      '',
      'T00:00',
      'T23:59:59',
      't24:00:00',
      ' 12:60',
      'T12:00:60',
      'T10:30:00.123456789',
      'T10:30:00.1234567890',
      'T10:30:00.',
      '_10:30',
      'T1:30',
    ];
    const offsets = ['', 'Z', 'z', '+00', '+05:30', '+0530', '-15:59', '+16', '+15:60', '-05', '+5', '+05:3', ' UTC'];
    for (const y of years) for (const mo of months) for (const d of days) dates.push(`${y}-${mo}-${d}`);
    const stamps: string[] = [];
    let k = 0;
    for (const date of dates) for (const time of times) for (const off of offsets) if (k++ % 7 === 0) stamps.push(date + time + off);
    for (const date of dates) for (const off of offsets) stamps.push(date + off);
    const accepted = stamps.filter(isTimestampText);
    expect(accepted.length).toBeGreaterThan(200);
    const ts = await db.pool.query(`SELECT s FROM unnest($1::text[]) s WHERE NOT (pg_input_is_valid(s, 'timestamptz') AND pg_input_is_valid(s, 'date'))`, [
      accepted,
    ]);
    expect(ts.rows.map((r) => r.s)).toEqual([]);

    // Numbers: convert()'s text for numeric, bigint and double precision columns.
    const numbers: string[] = [];
    for (const sign of ['', '+', '-'])
      for (const int of ['', '0', '1', '007', '9'.repeat(19), '9'.repeat(20)])
        for (const frac of ['', '.', '.5', '.' + '0'.repeat(16383), '.' + '0'.repeat(16384)])
          for (const exp of ['', 'e5', 'E-5', 'e1000', 'e1001', 'e-1000', 'e-1001', 'e308', 'e309', 'e-324', 'e-400', 'e', 'e99999999999', 'e+1'])
            numbers.push(sign + int + frac + exp);
    numbers.push('1'.repeat(131072), '1'.repeat(131073), '1'.repeat(131072) + '.5', '0'.repeat(200_000) + '1', 'NaN', 'Infinity', ' 1', '1 ', '0x1F', '1_000');
    const stats = newEncodeStats();
    for (const type of ['numeric', 'bigint', 'double precision'] as ColumnType[]) {
      const pgType = type === 'double precision' ? 'float8' : type === 'bigint' ? 'int8' : 'numeric';
      const fields = numbers.flatMap((s) => {
        const c = convert(s, type, stats);
        return c.ok && c.field !== null ? [c.field] : [];
      });
      expect(fields.length, type).toBeGreaterThan(type === 'bigint' ? 5 : 20);
      const bad = await db.pool.query(`SELECT left(s, 40) AS s FROM unnest($1::text[]) s WHERE NOT pg_input_is_valid(s, $2)`, [fields, pgType]);
      expect(
        bad.rows.map((r) => r.s),
        type,
      ).toEqual([]);
    }
    // JSON numbers too (what JSON.parse can produce).
    const jsonNumbers = [0, -0, 1e21, 1.5e-7, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 53 - 1, Infinity, -Infinity];
    for (const type of ['numeric', 'bigint', 'double precision', 'text'] as ColumnType[]) {
      const pgType = type === 'double precision' ? 'float8' : type === 'bigint' ? 'int8' : type;
      const fields = jsonNumbers.flatMap((v) => {
        const c = convert(v, type, stats);
        return c.ok && c.field !== null ? [c.field] : [];
      });
      const bad = await db.pool.query(`SELECT s FROM unnest($1::text[]) s WHERE NOT pg_input_is_valid(s, $2)`, [fields, pgType]);
      expect(
        bad.rows.map((r) => r.s),
        type,
      ).toEqual([]);
      if (type !== 'text') expect(fields).not.toContain('Infinity');
    }
  });
});
