import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredColumns, openDestination, quoteIdent, type DeclaredSchema, type Destination, type LoadResult } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

let db: TestDatabase;
const opened: Destination[] = [];

beforeAll(async () => {
  db = await freshDatabase('hostile_names');
  // The targets of the injection strings below: they must survive untouched.
  await db.pool.query(`CREATE TABLE public.x (n int); INSERT INTO public.x VALUES (1);
                       CREATE TABLE public.students (n int); INSERT INTO public.students VALUES (2);`);
});
afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await db?.drop();
});

async function destination(schema: string): Promise<Destination> {
  const dest = await openDestination(db.config({ schema }));
  opened.push(dest);
  return dest;
}

/** Every table, view and sequence in every schema, as "schema"."name". */
async function relations(): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      ORDER BY 1`,
  );
  return rows.map((r) => r.name as string);
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

type ValueOf = (field: string, index: number) => string;
const valueOf: ValueOf = (field) => `value of ${field}`;
// Hundreds of columns of 20-byte values do not fit in one 8 kB row (hostile-values.test.ts covers that);
// the keyword test is about names, so its values are short.
const shortValue: ValueOf = (_field, i) => String(i);

/** Lands one record whose raw_data has `value of <field>` in every declared field. */
async function landFields(
  dest: Destination,
  kind: 'standard' | 'custom',
  provider: string,
  object: string,
  fields: string[],
  value: ValueOf = valueOf,
): Promise<LoadResult> {
  const declared: DeclaredSchema = { type: 'object', properties: Object.fromEntries(fields.map((f) => [f, { type: 'string' }])) };
  const raw = Object.fromEntries(fields.map((f, i) => [f, value(f, i)]));
  return dest.load({
    kind,
    object,
    provider,
    customerId: 'acme',
    declared,
    input: streamOf([{ id: 'r1', last_modified_at: '2026-01-15T10:30:00Z', raw_data: raw }]),
  });
}

/** What PostgreSQL keeps of a string: no NUL, and U+FFFD for a lone surrogate (docs/input.md). */
function asStored(s: string): string {
  return s.replace(/\0/g, '').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Checks that every field landed in its own column with its own value (NULs are stripped on the way). */
async function expectEveryField(
  dest: Destination,
  result: LoadResult,
  fields: string[],
  { value = valueOf, fresh = true }: { value?: ValueOf; fresh?: boolean } = {},
): Promise<void> {
  expect(result.error).toBeUndefined();
  expect(result.status).toBe('succeeded');
  expect(result.counts).toMatchObject({ inserted: fresh ? 1 : 0, problems: 0, rejected: 0 });
  const columns = declaredColumns({ properties: Object.fromEntries(fields.map((f) => [f, { type: 'string' }])) });
  expect(new Set(columns.map((c) => c.name)).size).toBe(fields.length);
  const { rows } = await db.pool.query(`SELECT to_jsonb(t) AS row FROM ${quoteIdent(dest.schema)}.${quoteIdent(result.table)} t`);
  const landed = rows[0].row as Record<string, unknown>;
  const index = new Map(fields.map((f, i) => [f, i]));
  for (const c of columns) {
    expect(bytes(c.name)).toBeLessThanOrEqual(63);
    const expected = asStored(value(c.source.key, index.get(c.source.key)!));
    expect(landed[c.name], `column ${c.name} for field ${JSON.stringify(c.source.key)}`).toBe(expected);
  }
}

const hostile = [
  'a"b',
  'a""b',
  '"',
  "'single'",
  'dot.ted.name',
  'schema.table.column',
  '🚀',
  '🚀🛸',
  'launch 🚀',
  '"; drop table x; --',
  "Robert'); DROP TABLE students;--",
  'back\\slash',
  'tab\there',
  'new\nline',
  'NUL\u0000byte',
  'ünïcödé',
  'Ünïcödé',
  '日本語の名前',
  'नमस्ते',
  '  spaced   out  ',
  '',
  '$1',
  '%s%n',
  'pg_catalog.pg_class',
  '123abc',
  'lone \uD800 surrogate',
  '__proto__',
  'constructor',
  'toString',
];

describe('hostile names (issue 3)', () => {
  it('lands every PostgreSQL keyword as a field name, each in a column of exactly that name', async () => {
    const dest = await destination('landing');
    const { rows } = await db.pool.query<{ word: string }>(`SELECT word FROM pg_get_keywords() ORDER BY word`);
    const keywords = rows.map((r) => r.word);
    expect(keywords.length).toBeGreaterThan(400);
    const before = await relations();
    const result = await landFields(dest, 'custom', 'any', 'keywords', keywords, shortValue);
    await expectEveryField(dest, result, keywords, { value: shortValue });
    // Keywords are already snake_case: each column is the keyword itself.
    const cols = await db.pool.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'landing' AND table_name = 'custom_keywords'`);
    const names = new Set(cols.rows.map((r) => r.column_name as string));
    for (const k of keywords) expect(names.has(k), k).toBe(true);
    // Keywords as object and provider names too.
    const more = await landFields(dest, 'standard', 'user', 'order', ['select', 'from', 'where']);
    await expectEveryField(dest, more, ['select', 'from', 'where']);
    expect(more.table).toBe('user_order');
    const after = await relations();
    expect(after.filter((r) => !before.includes(r))).toEqual(['landing.custom_keywords', 'landing.user_order']);
  });

  it('keeps two 100-byte names that differ only at the end apart, as columns and as tables', async () => {
    const dest = await destination('landing');
    const a = 'a'.repeat(99) + '1';
    const b = 'a'.repeat(99) + '2';
    const e1 = 'é'.repeat(49) + 'x1'; // 100 bytes of two-byte characters
    const e2 = 'é'.repeat(49) + 'x2';
    const fields = [a, b, e1, e2];
    const result = await landFields(dest, 'custom', 'any', 'long_fields', fields);
    await expectEveryField(dest, result, fields);
    const cols = declaredColumns({ properties: Object.fromEntries(fields.map((f) => [f, {}])) }).map((c) => c.name);
    for (const c of cols) expect(bytes(c)).toBe(cols.indexOf(c) < 2 ? 63 : bytes(c)); // ASCII ones use the full 63 bytes
    expect(cols[0]!.startsWith('a'.repeat(54) + '_')).toBe(true);

    const t1 = await landFields(dest, 'custom', 'any', a, ['f']);
    const t2 = await landFields(dest, 'custom', 'any', b, ['f']);
    expect(t1.table).not.toBe(t2.table);
    expect(bytes(t1.table)).toBeLessThanOrEqual(63);
    expect(bytes(t2.table)).toBeLessThanOrEqual(63);
    const n = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'landing' AND c.relname = ANY ($1)`,
      [[t1.table, t2.table]],
    );
    expect(n.rows[0].n).toBe(2);
  });

  it('lands quotes, dots, emoji, unicode and injection strings as field names, without collision', async () => {
    const dest = await destination('landing');
    const before = await relations();
    const result = await landFields(dest, 'custom', 'any', 'hostile_fields', hostile);
    await expectEveryField(dest, result, hostile);
    const names = new Map(declaredColumns({ properties: Object.fromEntries(hostile.map((f) => [f, {}])) }).map((c) => [c.source.key, c.name]));
    // A few spelled out: the normalisation of docs/landed-tables.md.
    expect(names.get('dot.ted.name')).toBe('dot_ted_name');
    expect(names.get('"; drop table x; --')).toBe('drop_table_x');
    expect(names.get('launch 🚀')).toBe('launch');
    expect(names.get('日本語の名前')).toBe('日本語の名前');
    expect(names.get('नमस्ते')).toBe('नमस्ते');
    expect(names.get('123abc')).toBe('x_123abc');
    expect(names.get('ünïcödé')).toBe('ünïcödé');
    expect(names.get('Ünïcödé')).toMatch(/^ünïcödé_[0-9a-f]{8}$/);
    expect(names.get('🚀')).toMatch(/^x_[0-9a-f]{8}$/);
    expect(names.get('')).toMatch(/^x_[0-9a-f]{8}$/);
    expect(await relations()).toEqual([...before, 'landing.custom_hostile_fields'].sort());
  });

  it('lands hostile object and provider names in tables of their own, touching no other table', async () => {
    const dest = await destination('landing');
    const before = await relations();
    // Object names that normalise alike (a"b and a""b, Ünïcödé and ünïcödé)
    // still get tables of their own: the first keeps the plain name, the other
    // gets a hash suffix (the table registry in _pgland_tables).
    const alike = new Map([
      ['a""b', 'a"b'],
      ['Ünïcödé', 'ünïcödé'],
    ]);
    // The empty name and NUL are refused up front (below).
    const objects = hostile.filter((h) => h !== '' && !h.includes('\0'));
    const tableOf = new Map<string, string>();
    for (const name of objects) {
      // A second custom object in a shared table re-delivers the same row
      // (same provider, customer and id): unchanged. As a standard object its
      // provider differs too, so it is a row of its own.
      const custom = await landFields(dest, 'custom', 'any', name, ['f']);
      await expectEveryField(dest, custom, ['f']);
      const standard = await landFields(dest, 'standard', name, name, ['f']);
      await expectEveryField(dest, standard, ['f']);
      for (const [kind, t] of [
        ['custom', custom.table],
        ['standard', standard.table],
      ] as const) {
        expect(bytes(t)).toBeLessThanOrEqual(63);
        expect([...tableOf.values()], `${JSON.stringify(name)} → ${t}`).not.toContain(t);
        const first = alike.get(name);
        if (first) expect(t).toMatch(new RegExp(`^${tableOf.get(`${kind}:${first}`)}_[0-9a-f]{8}$`));
        tableOf.set(`${kind}:${name}`, t);
      }
    }
    const added = (await relations()).filter((r) => !before.includes(r));
    expect(added).toHaveLength(objects.length * 2);
    expect(added.every((r) => r.startsWith('landing.'))).toBe(true);
    expect((await relations()).filter((r) => before.includes(r))).toEqual(before);
    const x = await db.pool.query(`SELECT (SELECT n FROM public.x) AS x, (SELECT n FROM public.students) AS s`);
    expect(x.rows[0]).toEqual({ x: 1, s: 2 });
    // The names as given are kept verbatim in the run history (as parameters, not SQL).
    const runs = await db.pool.query(`SELECT DISTINCT object FROM landing._pgland_runs WHERE object = ANY ($1)`, [hostile.map((h) => h.replace(/\0/g, ''))]);
    expect(runs.rowCount).toBeGreaterThan(0);
    // An empty object name is not a name, and PostgreSQL text cannot hold NUL
    // (the names are kept in the run history, the provider in every row):
    // refused before anything is created.
    const refused = await relations();
    for (const [provider, object] of [
      ['any', ''],
      ['any', 'NUL\u0000byte'],
      ['NUL\u0000byte', 'thing'],
    ]) {
      await expect((async () => landFields(dest, 'standard', provider!, object!, ['f']))()).rejects.toMatchObject({ code: 'config_invalid' });
    }
    expect(await relations()).toEqual(refused);
  });

  it('never lets a standard object land in a common or custom object table', async () => {
    const dest = await destination('landing');
    const asCommon = await landFields(dest, 'standard', 'crm', 'accounts', ['f']);
    expect(asCommon.table).toMatch(/^crm_accounts_[0-9a-f]{8}$/);
    const asCustom = await landFields(dest, 'standard', 'custom', 'thing', ['f']);
    expect(asCustom.table).toMatch(/^custom_thing_[0-9a-f]{8}$/);
    const asCustom2 = await landFields(dest, 'standard', 'custom_crm', 'thing', ['f']);
    expect(asCustom2.table).toMatch(/^custom_crm_thing_[0-9a-f]{8}$/);
    const futureCommon = await landFields(dest, 'standard', 'engagement', 'events', ['f']);
    expect(futureCommon.table).toMatch(/^engagement_events_[0-9a-f]{8}$/);
    const custom = await landFields(dest, 'custom', 'any', 'thing', ['f']);
    expect(custom.table).toBe('custom_thing');
    const custom2 = await landFields(dest, 'custom', 'any', 'crm_thing', ['f']);
    expect(custom2.table).toBe('custom_crm_thing');
  });

  it('lands into a schema whose own name needs quoting', async () => {
    const dest = await destination('We"ird.Schema; drop table x');
    const result = await landFields(dest, 'custom', 'any', 'thing', ['select', 'a"b']);
    await expectEveryField(dest, result, ['select', 'a"b']);
    const x = await db.pool.query(`SELECT n FROM public.x`);
    expect(x.rows).toEqual([{ n: 1 }]);
  });
});
