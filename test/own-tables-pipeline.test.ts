import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, parseMapping, type Destination, type IntoResult } from '../src/index.js';
import { freshDatabase, terminateBackends, type TestDatabase } from './support/db.js';
import { contact, type TestRecord } from './support/records.js';
import { loseStagedRows, pipeTables, runBackends } from './support/run-backends.js';

// Issue 18: after its first batch, a load into an own table stages batch n+1
// on a helper connection, in pgland's schema, while batch n merges into the
// customer's table on the run's connection. These tests break each side on
// purpose and check what lands: every record once, newest wins, in order.

let db: TestDatabase;
const opened: Destination[] = [];

beforeAll(async () => {
  db = await freshDatabase('into_pipeline');
});
afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await db?.drop();
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const MAP = ['email=data.email_addresses[0].email_address', 'name=data.last_name', 'age=data.age', 'updated_at=last_modified_at'];

async function destination(app: string, poolSize?: number): Promise<Destination> {
  const d = await openDestination(db.config({ schema: 'pgland', batch_size: 100, batch_retries: 3, application_name: app }), poolSize ? { poolSize } : {});
  opened.push(d);
  return d;
}

/** The customer's schema: people (identity key, unique email, a CHECK) and a canary table nothing may touch. */
async function customerSchema(schema: string): Promise<void> {
  await db.pool.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.people (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email text NOT NULL UNIQUE,
      name text,
      age int CONSTRAINT age_not_negative CHECK (age >= 0),
      updated_at timestamptz
    );
    CREATE TABLE ${schema}.canary (x int);
    INSERT INTO ${schema}.canary VALUES (1), (2);`);
}

const person = (i: number, version = 1, age = 30): TestRecord => contact(i, version, { age });

function lines(records: TestRecord[]): string[] {
  return records.map((r) => JSON.stringify(r) + '\n');
}

function load(d: Destination, schema: string, input: AsyncIterable<string>, signal?: AbortSignal): Promise<IntoResult> {
  return d.loadInto({ into: `${schema}.people`, write: 'upsert', match: 'email', mappings: MAP.map(parseMapping), input, ...(signal ? { signal } : {}) });
}

async function* each(records: TestRecord[], before?: (i: number) => Promise<void>): AsyncGenerator<string> {
  for (const [i, line] of lines(records).entries()) {
    await before?.(i);
    yield line;
  }
}

/** Every row's name by email, and how many rows the table holds. */
async function names(schema: string): Promise<Map<string, string>> {
  const { rows } = await db.pool.query(`SELECT email, name FROM ${schema}.people`);
  return new Map(rows.map((r) => [r.email as string, r.name as string]));
}

function expectAllAt(found: Map<string, string>, n: number, version: number): void {
  expect(found.size).toBe(n);
  for (const i of range(n)) expect(found.get(`c${i}@example.com`)).toBe(`Last${i} v${version}`);
}

async function seed(d: Destination, schema: string, n: number): Promise<void> {
  await customerSchema(schema);
  const r = await load(d, schema, each(range(n).map((i) => person(i))));
  expect(r.error).toBeUndefined();
}

async function canary(schema: string): Promise<number[]> {
  const { rows } = await db.pool.query(`SELECT x FROM ${schema}.canary ORDER BY x`);
  return rows.map((r) => r.x as number);
}

describe('pipelined loads into an own table (issue 18)', () => {
  it('lands every batch in input order with a helper; staging tables only in pgland schema, none left', async () => {
    const app = 'pgland-ip-plain';
    const d = await destination(app);
    await seed(d, 'ip_plain', 1000);
    // Emails repeat across batches with ever newer versions: merges must run in input order.
    const records = [...range(1000).map((i) => person(i, 2)), ...range(500).map((i) => person(i, 3))];
    let seen = { run: [] as number[], helper: [] as number[] };
    let during = { own: [] as string[], customer: [] as string[] };
    const r = await load(
      d,
      'ip_plain',
      each(records, async (i) => {
        if (i !== 700) return;
        seen = await runBackends(db.pool, app);
        during = { own: await pipeTables(db.pool, 'pgland'), customer: await pipeTables(db.pool, 'ip_plain') };
      }),
    );
    expect(seen.run).toHaveLength(1);
    expect(seen.helper).toHaveLength(1);
    expect(during.own).toHaveLength(2);
    expect(during.customer).toEqual([]);
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 1500, inserted: 0, updated: 1500, batches: 15 });
    const found = await names('ip_plain');
    expect(found.size).toBe(1000);
    for (const i of range(1000)) expect(found.get(`c${i}@example.com`)).toBe(`Last${i} v${i < 500 ? 3 : 2}`);
    expect(await pipeTables(db.pool, 'pgland')).toEqual([]);
    expect(await canary('ip_plain')).toEqual([1, 2]);
  });

  it('an older version in a later batch does not overwrite a newer one landed by an earlier batch', async () => {
    const d = await destination('pgland-ip-newest');
    await seed(d, 'ip_newest', 300);
    const records = [...range(300).map((i) => person(i, 5)), ...range(300).map((i) => person(i, 4))];
    const r = await load(d, 'ip_newest', each(records));
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 600, updated: 300, batches: 6 });
    expectAllAt(await names('ip_newest'), 300, 5);
  });

  it('records a later batch refuses are rejects naming their constraint; the rest lands', async () => {
    const d = await destination('pgland-ip-rejects');
    await seed(d, 'ip_rejects', 0);
    const records = range(500).map((i) => person(i, 1, i === 250 || i === 420 ? -1 : 30));
    const r = await load(d, 'ip_rejects', each(records));
    expect(r.status).toBe('partial');
    expect(r.counts).toMatchObject({ rowsRead: 500, inserted: 498, rejected: 2, batches: 5 });
    const { rows } = await db.pool.query(`SELECT line_number, reason FROM pgland._pgland_rejects WHERE run_id = $1 ORDER BY line_number`, [r.runId]);
    expect(rows.map((x) => Number(x.line_number))).toEqual([251, 421]);
    for (const x of rows) expect(x.reason).toContain('"age_not_negative"');
    expect((await names('ip_rejects')).size).toBe(498);
  });

  /** Version 2 of records 0..799 into a seeded table, terminating the run's connection or its helper before the records numbered in `at`. */
  async function killing(name: string, which: 'run' | 'helper', at: number[]): Promise<{ r: IntoResult; killed: number[] }> {
    const app = `pgland-ip-${name}`;
    const d = await destination(app);
    await seed(d, `ip_${name}`, 800);
    let killed: number[] = [];
    const r = await load(
      d,
      `ip_${name}`,
      each(
        range(800).map((i) => person(i, 2)),
        async (i) => {
          if (!at.includes(i)) return;
          killed = (await runBackends(db.pool, app))[which];
          await terminateBackends(db.pool, killed); // the loader meets the loss at its next statement
        },
      ),
    );
    expect(r.error).toBeUndefined();
    expectAllAt(await names(`ip_${name}`), 800, 2);
    return { r, killed };
  }

  it('a helper connection killed while it stages: the batch is staged again, every record lands once', async () => {
    const { r, killed } = await killing('helper', 'helper', [450]); // batch 5 is being COPYed on the helper
    expect(killed.length).toBeGreaterThan(0);
    expect(r.counts).toMatchObject({ rowsRead: 800, updated: 800, batches: 8 });
  });

  it("the run's connection killed while the helper stages: the merge is replayed, every record lands once", async () => {
    const { r, killed } = await killing('run', 'run', [350, 650]);
    expect(killed).toHaveLength(1);
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ rowsRead: 800, updated: 800, unchanged: 0, batches: 8 });
  });

  it('a staged batch that lost rows before its merge is COPYed again from its kept bytes', async () => {
    const d = await destination('pgland-ip-lost');
    await seed(d, 'ip_lost', 500);
    const meddler = new pg.Client({ connectionString: db.url });
    await meddler.connect();
    let meddled: Promise<unknown> | undefined;
    try {
      const r = await load(
        d,
        'ip_lost',
        each(
          range(500).map((i) => person(i, 2)),
          async (i) => {
            if (i !== 295) return;
            // Batch 3 (records 200..299) is being COPYed into staging table _1: 10 of its rows go.
            const tables = await pipeTables(db.pool, 'pgland');
            expect(tables).toHaveLength(2);
            meddled = (await loseStagedRows(meddler, db.pool, `pgland.${tables[1]!}`)).done;
          },
        ),
      );
      await meddled;
      expect(r.error).toBeUndefined();
      expect(r.counts).toMatchObject({ rowsRead: 500, updated: 500, unchanged: 0, batches: 5 });
      expectAllAt(await names('ip_lost'), 500, 2);
    } finally {
      await meddler.end();
    }
  });

  it('an input that fails while the next batch is staged: the batches before it commit, nothing after', async () => {
    const d = await destination('pgland-ip-input');
    await seed(d, 'ip_input', 500);
    async function* input(): AsyncGenerator<string> {
      for (const [i, line] of lines(range(500).map((n) => person(n, 2))).entries()) {
        if (i === 350) throw new Error('the socket closed');
        yield line;
      }
    }
    const r = await load(d, 'ip_input', input());
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/the socket closed/);
    expect(r.counts).toMatchObject({ batches: 3, updated: 300 });
    const found = await names('ip_input');
    for (const i of range(500)) expect(found.get(`c${i}@example.com`)).toBe(`Last${i} v${i < 300 ? 2 : 1}`);
    expect(await pipeTables(db.pool, 'pgland')).toEqual([]);
  });

  it('cancelled while pipelining: the batches committed stay, no later one lands, nothing is left behind', async () => {
    const d = await destination('pgland-ip-cancel');
    await seed(d, 'ip_cancel', 600);
    const abort = new AbortController();
    const r = await load(
      d,
      'ip_cancel',
      each(
        range(600).map((i) => person(i, 2)),
        async (i) => {
          if (i === 450) abort.abort();
        },
      ),
      abort.signal,
    );
    expect(r.status).toBe('cancelled');
    const committed = r.counts.batches;
    expect(committed).toBeLessThan(5);
    expect(r.counts.updated).toBe(committed * 100);
    const found = await names('ip_cancel');
    for (const i of range(600)) expect(found.get(`c${i}@example.com`)).toBe(`Last${i} v${i < committed * 100 ? 2 : 1}`);
    expect(await pipeTables(db.pool, 'pgland')).toEqual([]);
  });

  it('with no second connection to be had, the run goes on one batch at a time', async () => {
    const d = await destination('pgland-ip-single', 1);
    await seed(d, 'ip_single', 500);
    const r = await load(d, 'ip_single', each(range(500).map((i) => person(i, 2))));
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 500, updated: 500, batches: 5 });
    expectAllAt(await names('ip_single'), 500, 2);
  });

  it("a killed run's staging tables are dropped by the next load into an own table", async () => {
    const d = await destination('pgland-ip-orphan');
    await seed(d, 'ip_orphan', 10);
    const runId = '00000000-0000-4000-8000-00000000cafe';
    await db.pool.query(
      `INSERT INTO pgland._pgland_runs (run_id, provider, customer_id, object, object_kind, table_name, mode, write_mode, status, pgland_version)
       VALUES ($1, 'pgland', '', '"elsewhere"."t"', 'own_table', '"elsewhere"."t"', 'incremental', 'upsert', 'running', 'test')`,
      [runId],
    );
    const orphan = (k: number): string => `_pgland_pipe_0000000000004000800000000000cafe_${k}`;
    for (const k of [0, 1]) await db.pool.query(`CREATE UNLOGGED TABLE pgland.${orphan(k)} (x int)`);
    // Its run is still marked running (another table's): its tables stay.
    expect((await load(d, 'ip_orphan', each([person(1, 2)]))).status).toBe('succeeded');
    expect(await pipeTables(db.pool, 'pgland')).toEqual([orphan(0), orphan(1)]);
    await db.pool.query(`UPDATE pgland._pgland_runs SET status = 'abandoned' WHERE run_id = $1`, [runId]);
    expect((await load(d, 'ip_orphan', each([person(2, 2)]))).status).toBe('succeeded');
    expect(await pipeTables(db.pool, 'pgland')).toEqual([]);
  });
});
