import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSource, readSource, type ReadSpec, type ReadState, type SourceConnection } from '../src/index.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 17, fourth round: a first read (no start position) is one unordered
// snapshot (src/read/snapshot.ts). Each case compares it with the paged read
// of the same rows, and checks what the next read from its state sees.

let src: TestDatabase;
let conn: SourceConnection;
let dir: string;
let srcConfig: string;

// The highest cursor value, on 1,500 rows: the mark sits on a tie.
const TIED = '2026-03-01 12:00:00+00';

beforeAll(async () => {
  src = await freshDatabase('read_snapshot');
  dir = mkdtempSync(join(tmpdir(), 'pgland-read-snapshot-'));
  srcConfig = join(dir, 'src.json');
  writeFileSync(srcConfig, JSON.stringify(src.config()));
  await src.pool.query(`
    CREATE TABLE items (
      id integer PRIMARY KEY,
      updated_at timestamptz,
      status text,
      version bigint NOT NULL DEFAULT 1
    );
    INSERT INTO items
    SELECT g,
           CASE WHEN g = 77 THEN NULL
                WHEN g % 10 < 3 THEN '${TIED}'::timestamptz
                ELSE '2026-01-01'::timestamptz + ((g * 7919) % 5000) * interval '1.000001 second' END,
           CASE WHEN g % 3 = 0 THEN 'active' ELSE 'gone' END,
           1
      FROM generate_series(1, 5000) g;
    CREATE INDEX ON items (updated_at, id);
    CREATE TABLE pairs (k integer, c integer);
    INSERT INTO pairs SELECT g, g FROM generate_series(1, 100) g;
    INSERT INTO pairs VALUES (40, 40);`);
  conn = await connectSource(src.config());
});
afterAll(async () => {
  await conn?.close();
  await src?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const spec = (extra: Partial<ReadSpec> = {}): ReadSpec => ({ source: { table: 'items' }, key: 'id', cursor: 'updated_at', pageSize: 700, ...extra });

type Envelope = { id: string; last_modified_at: string; raw_data: { version: number; status: string } };

async function readAll(s: ReadSpec, previous?: ReadState, onWrite?: (writes: number) => Promise<void>, signal?: AbortSignal) {
  const lines: string[] = [];
  let writes = 0;
  const result = await readSource(
    conn,
    s,
    {
      ...(signal ? { signal } : {}),
      write: async (text) => {
        lines.push(...text.split('\n').filter((l) => l !== ''));
        await onWrite?.(++writes);
      },
    },
    previous,
  );
  return { lines, result, records: lines.map((l) => JSON.parse(l) as Envelope) };
}

describe('pgland read: a first read in one snapshot', () => {
  it('emits every row once, the lines and the bookmark of a paged read', async () => {
    const snap = await readAll(spec());
    const paged = await readAll(spec({ paged: true }));
    expect(snap.result.pages).toBe(1);
    expect(paged.result.pages).toBe(8);
    // Row 77 has a NULL cursor: not read, as by pages.
    expect(snap.records).toHaveLength(4999);
    expect(new Set(snap.records.map((r) => r.id)).size).toBe(4999);
    expect([...snap.lines].sort()).toEqual([...paged.lines].sort());
    expect(snap.result.state).toEqual(paged.result.state);
    expect(snap.result.state.bookmarks.items).toEqual({
      replication_key: 'updated_at',
      replication_key_value: '2026-03-01 12:00:00+00',
      key_property: 'id',
      key_value: '5000',
    });
  });

  it('the next read from its state gets only the rows changed since, a late tie on the mark included', async () => {
    const first = await readAll(spec());
    await src.pool.query(`UPDATE items SET updated_at = '${TIED}'::timestamptz + id * interval '1 ms', version = 2 WHERE id IN (1, 2, 400, 4999)`);
    await src.pool.query(`INSERT INTO items (id, updated_at, status) VALUES (5001, '${TIED}', 'late tie')`);
    const second = await readAll(spec(), first.result.state);
    expect(second.records.map((r) => r.id).sort()).toEqual(['1', '2', '400', '4999', '5001']);
    expect((await readAll(spec(), second.result.state)).records).toHaveLength(0);
    await src.pool.query(`DELETE FROM items WHERE id = 5001`);
  });

  it('rows written by another connection while the snapshot is read come in the next read', async () => {
    const touched = [3, 1000, 2500, 4998];
    const fresh = await readAll(spec(), undefined, async (writes) => {
      if (writes !== 1) return;
      await src.pool.query(`UPDATE items SET updated_at = clock_timestamp(), version = version + 100 WHERE id = ANY($1)`, [touched]);
      await src.pool.query(`INSERT INTO items (id, updated_at, status, version) VALUES (6000, clock_timestamp(), 'new', 100)`);
    });
    // The snapshot was taken before the writes: it has none of them.
    expect(fresh.records.length).toBeGreaterThan(4990);
    expect(fresh.records.filter((r) => r.raw_data.version >= 100)).toEqual([]);
    const next = await readAll(spec(), fresh.result.state);
    expect(next.records.map((r) => r.id).sort()).toEqual(['1000', '2500', '3', '4998', '6000']);
    expect(next.records.every((r) => r.raw_data.version >= 100)).toBe(true);
    await src.pool.query(`DELETE FROM items WHERE id = 6000`);
  });

  it('filters and a query source: the rows and the bookmark of a paged read', async () => {
    const filtered = spec({ filters: [{ column: 'status', op: '=', value: 'active' }] });
    const snap = await readAll(filtered);
    const paged = await readAll({ ...filtered, paged: true });
    expect(snap.records.length).toBeGreaterThan(1000);
    expect(snap.records.every((r) => r.raw_data.status === 'active')).toBe(true);
    expect([...snap.lines].sort()).toEqual([...paged.lines].sort());
    expect(snap.result.state).toEqual(paged.result.state);
    // A query has no unique index: its (cursor, key) pairs are checked for duplicates in the snapshot.
    const query: ReadSpec = {
      source: { query: 'SELECT id AS item_id, updated_at AS changed, status FROM items WHERE id <= 2000' },
      key: 'item_id',
      cursor: 'changed',
      filters: [{ column: 'status', op: '!=', value: 'gone' }],
    };
    const q = await readAll(query);
    const qPaged = await readAll({ ...query, paged: true });
    expect(q.result.pages).toBe(1);
    expect(q.records.length).toBeGreaterThan(500);
    expect([...q.lines].sort()).toEqual([...qPaged.lines].sort());
    expect(q.result.state).toEqual(qPaged.result.state);
  });

  it('a (cursor, key) on two rows is refused before any row is written', async () => {
    const written: string[] = [];
    await expect(readSource(conn, { source: { table: 'pairs' }, key: 'k', cursor: 'c' }, { write: (t) => void written.push(t) })).rejects.toMatchObject({
      code: 'key_not_unique',
      message: expect.stringMatching(/key "40" and cursor "40"/),
    });
    expect(written).toEqual([]);
  });

  it('singer: the SCHEMA, the RECORDs, then one STATE (a page-by-page read has one per page)', async () => {
    const args = ['read', '--config', srcConfig, '--table', 'items', '--key', 'id', '--cursor', 'updated_at', '--format', 'singer'];
    const snap = await runCli(args);
    const paged = await runCli([...args, '--paged', '--page-size', '1000']);
    expect(snap.code).toBe(0);
    expect(paged.code).toBe(0);
    const types = (out: string) =>
      out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { type: string }).type);
    const lines = (out: string) => out.trim().split('\n');
    expect(types(snap.stdout)).toEqual(['SCHEMA', ...Array<string>(4999).fill('RECORD'), 'STATE']);
    expect(types(paged.stdout).filter((t) => t === 'STATE')).toHaveLength(5);
    expect(lines(snap.stdout).at(-1)).toBe(lines(paged.stdout).at(-1));
  });

  it('a failed output or a cancel ends the snapshot at once, and the pool reads again after', async () => {
    const broken = readSource(conn, spec(), {
      write: () => {
        throw new Error('the pipe went away');
      },
    });
    await expect(broken).rejects.toThrow('the pipe went away');
    const cancel = new AbortController();
    await expect(
      readAll(
        spec(),
        undefined,
        async () => {
          cancel.abort();
          await new Promise((r) => setTimeout(r, 50));
        },
        cancel.signal,
      ),
    ).rejects.toMatchObject({ code: 'cancelled' });
    expect((await readAll(spec())).records).toHaveLength(4999);
  });
});
