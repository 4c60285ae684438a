import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSource, readSource, type ReadSpec, type ReadState, type SourceConnection } from '../src/index.js';
import { runCli, spawnCli, type CliResult } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 17: pgland read. A source table of 10,000 rows, 3,000 of them on one
// cursor value, read by pages of 100; piped into pgland singer and pgland load.

let src: TestDatabase;
let dst: TestDatabase;
let conn: SourceConnection;
let dir: string;
let srcConfig: string;

const TIED = '2026-03-01 12:00:00+00';

beforeAll(async () => {
  src = await freshDatabase('read_src');
  dst = await freshDatabase('read_dst');
  dir = mkdtempSync(join(tmpdir(), 'pgland-read-'));
  srcConfig = join(dir, 'src.json');
  writeFileSync(srcConfig, JSON.stringify(src.config()));
  // Names with quotes, backslashes, newlines and other scripts; some NULLs; 3,000 rows on one cursor value.
  await src.pool.query(`
    CREATE TABLE items (
      id integer PRIMARY KEY,
      updated_at timestamptz NOT NULL,
      name text,
      amount numeric(12, 2),
      flag boolean,
      tags text[],
      meta jsonb,
      born date,
      version bigint NOT NULL DEFAULT 1
    );
    INSERT INTO items
    SELECT g,
           CASE WHEN g % 10 < 3 THEN '${TIED}'::timestamptz
                ELSE '2026-01-01'::timestamptz + g * interval '1.000001 second' END,
           CASE WHEN g % 97 = 0 THEN NULL ELSE 'name ' || g || E' "quoted" \\\\ back\\nline ü ' || chr(12354) END,
           g * 1.25,
           g % 2 = 0,
           ARRAY['t' || g % 5, 'x'],
           jsonb_build_object('n', g, 'nested', jsonb_build_object('ok', g % 3 = 0)),
           DATE '2000-01-01' + g,
           g
      FROM generate_series(1, 10000) g;
    CREATE INDEX ON items (updated_at, id);`);
  conn = await connectSource(src.config());
});
afterAll(async () => {
  await conn?.close();
  await src?.drop();
  await dst?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const spec = (extra: Partial<ReadSpec> = {}): ReadSpec => ({ source: { table: 'items' }, key: 'id', cursor: 'updated_at', pageSize: 100, ...extra });

async function readAll(s: ReadSpec, previous?: ReadState, onPage?: (pages: number) => Promise<void>) {
  const lines: string[] = [];
  let pages = 0;
  const result = await readSource(
    conn,
    s,
    {
      write: async (text) => {
        lines.push(...text.split('\n').filter((l) => l !== ''));
        await onPage?.(++pages);
      },
    },
    previous,
  );
  return { lines, result, records: lines.map((l) => JSON.parse(l) as { id: string; last_modified_at: string; raw_data: Record<string, unknown> }) };
}

/** Runs `pgland read …` into another pgland command, as a shell pipe does. */
async function pipe(readArgs: string[], intoArgs: string[]): Promise<{ read: CliResult; into: CliResult }> {
  const r = spawnCli(readArgs);
  const l = spawnCli(intoArgs);
  r.child.stdout!.pipe(l.child.stdin!);
  return { read: await r.done, into: await l.done };
}

/** md5 over every column of every row, as text, in id order. */
const CHECKSUM = (table: string) => `
  SELECT md5(string_agg(concat_ws('|', id::text, updated_at::text, name, trim_scale(amount)::text, flag::text,
                                  to_jsonb(tags)::text, meta::text, born::text, version::text), E'\\n' ORDER BY id::bigint)) AS sum,
         count(*)::int AS n
    FROM ${table}`;

describe('pgland read (issue 17)', () => {
  it('reads every row exactly once by pages of 100 when 3,000 rows share one cursor value', async () => {
    const { records, result } = await readAll(spec({ paged: true }));
    expect(records).toHaveLength(10_000);
    expect(new Set(records.map((r) => r.id)).size).toBe(10_000);
    expect(result.pages).toBe(100);
    expect(records.filter((r) => r.raw_data.updated_at === '2026-03-01T12:00:00+00:00')).toHaveLength(3000);
    // In (cursor, key) order, and the envelope's fields as pgland load reads them.
    const order = records.map((r) => `${r.last_modified_at} ${String(r.id).padStart(6, '0')}`);
    expect(order).toEqual([...order].sort());
    // Ids 1 and 2 are on the tied value; 3 is the first row in cursor order.
    expect(records[0]).toMatchObject({
      id: '3',
      last_modified_at: '2026-01-01T00:00:03.000003+00:00',
      raw_data: { id: 3, amount: 3.75, flag: false, tags: ['t3', 'x'], born: '2000-01-04' },
    });
    expect(result.state.bookmarks.items).toEqual({
      replication_key: 'updated_at',
      replication_key_value: expect.stringMatching(/^2026-03-01 12:00:00\+00$/),
      key_property: 'id',
      key_value: '10000',
    });
  });

  it('re-reads from the saved state only the rows changed since, including rows on the last cursor value', async () => {
    const first = await readAll(spec());
    await src.pool.query(
      `UPDATE items SET updated_at = '${TIED}'::timestamptz + interval '1 hour' + id * interval '1 ms', version = version + 1 WHERE id % 500 = 1`,
    );
    // A row written later on the high-water mark's own value, with a key after the last one read.
    await src.pool.query(`INSERT INTO items (id, updated_at, name, version) VALUES (10001, '${TIED}', 'late tie', 1)`);
    const second = await readAll(spec(), first.result.state);
    const expected = [...Array.from({ length: 20 }, (_, i) => String(i * 500 + 1)), '10001'].sort();
    expect(second.records.map((r) => r.id).sort()).toEqual(expected);
    const third = await readAll(spec(), second.result.state);
    expect(third.records).toHaveLength(0);
    expect(third.result.state).toEqual(second.result.state);
    await src.pool.query(`DELETE FROM items WHERE id = 10001`);
  });

  it('never loses a row updated during a read: it comes in this read or the next', async () => {
    // While the read runs (after its third page): update rows already read and rows not read yet, to a later cursor.
    const touched = [5, 250, 4000, 7777, 9998, 2, 3];
    const fresh = await readAll(spec(), undefined, async (page) => {
      if (page === 3) {
        await src.pool.query(`UPDATE items SET updated_at = clock_timestamp(), version = version + 100 WHERE id = ANY($1)`, [touched]);
      }
    });
    const next = await readAll(spec(), fresh.result.state);
    const seen = new Map<string, number>();
    for (const r of [...fresh.records, ...next.records]) seen.set(r.id, Math.max(seen.get(r.id) ?? 0, Number(r.raw_data.version)));
    for (const id of touched) expect(seen.get(String(id)), `row ${id}`).toBeGreaterThanOrEqual(100);
    expect(new Set(fresh.records.map((r) => r.id)).size).toBe(10_000);
  });

  it('pgland read --format singer | pgland singer reproduces the table (checksum over every column)', async () => {
    const singerConfig = join(dir, 'singer.json');
    writeFileSync(singerConfig, JSON.stringify({ ...dst.config({ schema: 'via_singer' }), provider: 'pg', customer: 'c1', kind: 'custom' }));
    const { read, into } = await pipe(
      ['read', '--config', srcConfig, '--table', 'public.items', '--key', 'id', '--cursor', 'updated_at', '--format', 'singer', '--page-size', '1000'],
      ['singer', '--config', singerConfig],
    );
    expect(read.stderr).toBe('');
    expect(read.code).toBe(0);
    expect(into.code, into.stderr).toBe(0);
    const a = (await src.pool.query(CHECKSUM('items'))).rows[0];
    const b = (await dst.pool.query(CHECKSUM('via_singer.custom_items'))).rows[0];
    expect(b).toEqual(a);
    expect(a.n).toBe(10_000);
  });

  it('pgland read | pgland load --schema-file (from --print-schema) reproduces the table, and --state advances only after the output', async () => {
    const schemaFile = join(dir, 'items.schema.json');
    const printed = await runCli(['read', '--config', srcConfig, '--table', 'items', '--key', 'id', '--cursor', 'updated_at', '--print-schema']);
    expect(printed.code).toBe(0);
    writeFileSync(schemaFile, printed.stdout);
    const dstConfig = join(dir, 'dst.json');
    writeFileSync(dstConfig, JSON.stringify(dst.config({ schema: 'via_load' })));
    const stateFile = join(dir, 'items.state.json');
    const { read, into } = await pipe(
      ['read', '--config', srcConfig, '--table', 'items', '--key', 'id', '--cursor', 'updated_at', '--state', stateFile, '--page-size', '500'],
      [
        'load',
        '--config',
        dstConfig,
        '--provider',
        'pg',
        '--customer',
        'c1',
        '--kind',
        'custom',
        '--object',
        'items',
        '--schema-file',
        schemaFile,
        '--input',
        '-',
      ],
    );
    expect(read.code, read.stderr).toBe(0);
    expect(into.code, into.stdout + into.stderr).toBe(0);
    const a = (await src.pool.query(CHECKSUM('items'))).rows[0];
    const b = (await dst.pool.query(CHECKSUM('via_load.custom_items'))).rows[0];
    expect(b).toEqual(a);
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as ReadState;
    expect(state.bookmarks.items?.key_value).toBeDefined();

    // The next run moves only the changed rows.
    await src.pool.query(`UPDATE items SET name = 'changed ' || id, updated_at = now() WHERE id <= 30`);
    const again = await pipe(
      ['read', '--config', srcConfig, '--table', 'items', '--key', 'id', '--cursor', 'updated_at', '--state', stateFile],
      [
        'load',
        '--config',
        dstConfig,
        '--provider',
        'pg',
        '--customer',
        'c1',
        '--kind',
        'custom',
        '--object',
        'items',
        '--schema-file',
        schemaFile,
        '--input',
        '-',
        '--json',
      ],
    );
    expect(again.read.code).toBe(0);
    expect(JSON.parse(again.into.stdout)).toMatchObject({ status: 'succeeded', counts: { rowsRead: 30, updated: 30 } });
    expect((await dst.pool.query(CHECKSUM('via_load.custom_items'))).rows[0]).toEqual((await src.pool.query(CHECKSUM('items'))).rows[0]);
  });

  it('a read whose output stops leaves the state file as it was', async () => {
    const stateFile = join(dir, 'kept.state.json');
    const kept = '{"bookmarks":{"items":{"replication_key":"version","replication_key_value":"0","key_property":"id","key_value":"0"}}}\n';
    writeFileSync(stateFile, kept);
    // The reader downstream goes away after 2,000 lines, as `| head -2000` does.
    const r = spawnCli(['read', '--config', srcConfig, '--table', 'items', '--key', 'id', '--cursor', 'version', '--state', stateFile, '--page-size', '500']);
    let lines = 0;
    r.child.stdout!.on('data', (d: Buffer) => {
      lines += d.toString().split('\n').length - 1;
      if (lines >= 2000) r.child.stdout!.destroy();
    });
    const done = await r.done;
    expect(done.code).toBe(1);
    expect(done.stderr).toMatch(/cannot write the output[\s\S]*the state file was not advanced/);
    expect(readFileSync(stateFile, 'utf8')).toBe(kept);
  });

  it('filters take their value as a parameter: an injection string is data', async () => {
    const { records } = await readAll(spec({ filters: [{ column: 'name', op: '=', value: "x' OR '1'='1" }] }));
    expect(records).toHaveLength(0);
    const some = await readAll(
      spec({
        filters: [
          { column: 'id', op: 'in', value: ['3', '4'] },
          { column: 'flag', op: '=', value: 'true' },
        ],
      }),
    );
    expect(some.records.map((r) => r.id)).toEqual(['4']);
    const cli = await runCli([
      'read',
      '--config',
      srcConfig,
      '--table',
      'items',
      '--key',
      'id',
      '--cursor',
      'version',
      '--filter',
      'id <= 3',
      '--filter',
      'name is not null',
    ]);
    expect(
      cli.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    ).toEqual(expect.arrayContaining(['1', '2', '3']));
    expect(cli.stdout.trim().split('\n')).toHaveLength(3);
    // Integer cursors order versions as numbers (1970 plus that many microseconds).
    const first = JSON.parse(cli.stdout.split('\n')[0]!) as { last_modified_at: string; raw_data: { version: number } };
    expect(first.last_modified_at).toBe(`1970-01-01T00:00:00.${String(first.raw_data.version).padStart(6, '0')}Z`);
  });

  it('a query source is wrapped, checked up front, and read in a read-only transaction', async () => {
    const q = 'SELECT id AS item_id, updated_at AS changed, name FROM items WHERE id <= 250 -- a trailing comment';
    const { records } = await readAll({ source: { query: q }, key: 'item_id', cursor: 'changed', pageSize: 100 });
    expect(records).toHaveLength(250);
    const missing = await runCli(['read', '--config', srcConfig, '--query', 'SELECT id, name FROM items', '--key', 'id', '--cursor', 'updated_at']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/the cursor column "updated_at" is not a column of the source\n {2}fix: the source's columns are: id, name/);
    const json = await runCli(['read', '--config', srcConfig, '--query', 'SELECT id, meta::json AS m FROM items', '--key', 'id', '--cursor', 'm']);
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/column "m" \(json\) cannot be sorted or compared[\s\S]*fix: use jsonb instead of json/);
    await src.pool.query('CREATE SEQUENCE IF NOT EXISTS counter');
    const writes = await runCli([
      'read',
      '--config',
      srcConfig,
      '--query',
      "SELECT id, updated_at, nextval('counter') FROM items",
      '--key',
      'id',
      '--cursor',
      'updated_at',
    ]);
    expect(writes.code).toBe(1);
    expect(writes.stderr).toMatch(/read-only transaction/);
    const two = await runCli(['read', '--config', srcConfig, '--query', 'SELECT 1 AS id, now() AS t; DELETE FROM items', '--key', 'id', '--cursor', 't']);
    expect(two.code).not.toBe(0);
    expect((await src.pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(10_000);
  });

  it('a key that is not unique is refused, not silently skipped at a page boundary', async () => {
    await expect(
      readAll({ source: { query: 'SELECT id % 10 AS k, updated_at FROM items' }, key: 'k', cursor: 'updated_at', pageSize: 100 }),
    ).rejects.toMatchObject({ code: 'key_not_unique' });
  });
});
