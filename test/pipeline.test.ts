import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { freshDatabase, terminateBackends, type TestDatabase } from './support/db.js';
import { contact, streamOf } from './support/records.js';
import { loseStagedRows, pipeTables as pipeTablesOf, runBackends } from './support/run-backends.js';

// Issue 8: after its first batch, a merged run stages batch n+1 on a helper
// connection while batch n merges on the run's own. These tests break each
// side on purpose and check that every record lands exactly once, in order.

let db: TestDatabase;
const opened: Destination[] = [];

beforeAll(async () => {
  db = await freshDatabase('pipeline');
});
afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await db?.drop();
});

const tenant = { kind: 'common' as const, object: 'crm_contacts', provider: 'pipedrive', customerId: 'acme' };
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function destination(schema: string, app: string, poolSize?: number): Promise<Destination> {
  const d = await openDestination(db.config({ schema, batch_size: 100, batch_retries: 3, application_name: app }), poolSize ? { poolSize } : {});
  opened.push(d);
  return d;
}

/** Lands version 1 of records 0..n-1: the next run of the tenant is merged, and so pipelined. */
async function seed(d: Destination, n: number): Promise<void> {
  const r = await d.load({ ...tenant, input: streamOf(range(n).map((i) => contact(i))) });
  expect(r.status).toBe('succeeded');
}

/** Every landed row's last name, by id. */
async function lastNames(schema: string): Promise<Map<string, string>> {
  const { rows } = await db.pool.query(`SELECT id, last_name FROM ${schema}.crm_contacts WHERE _pgland_customer_id = 'acme'`);
  return new Map(rows.map((r) => [r.id as string, r.last_name as string]));
}

function expectAllAt(names: Map<string, string>, n: number, version: number): void {
  expect(names.size).toBe(n);
  for (const i of range(n)) expect(names.get(contact(i).id)).toBe(`Last${i} v${version}`);
}

const backends = (app: string): Promise<{ run: number[]; helper: number[] }> => runBackends(db.pool, app);

/**
 * Version 2 of records 0..799, terminating the loader's run connection or its
 * helper just before the records numbered in `at`; `killed` holds the last
 * backends terminated.
 */
function killing(app: string, which: 'run' | 'helper', at: number[]): { input: AsyncGenerator<string>; killed: number[] } {
  const state = { killed: [] as number[] };
  async function* input(): AsyncGenerator<string> {
    for (const i of range(800)) {
      if (at.includes(i)) {
        state.killed = (await backends(app))[which];
        await terminateBackends(db.pool, state.killed); // the loader meets the loss at its next statement
      }
      yield JSON.stringify(contact(i, 2)) + '\n';
    }
  }
  return {
    input: input(),
    get killed() {
      return state.killed;
    },
  };
}

const pipeTables = (schema: string): Promise<string[]> => pipeTablesOf(db.pool, schema);

describe('pipelined batches (issue 8)', () => {
  it('lands a merged run exactly, in order, and leaves no staging table behind', async () => {
    const d = await destination('p_plain', 'pgland-p-plain');
    await seed(d, 1000);
    // Ids repeat across batches with ever newer versions: merges must run in input order.
    const records = [...range(1000).map((i) => contact(i, 2)), ...range(500).map((i) => contact(i, 3))];
    let seen = { run: [] as number[], helper: [] as number[] };
    async function* input(): AsyncGenerator<string> {
      for (const [i, record] of records.entries()) {
        if (i === 700) seen = await backends('pgland-p-plain');
        yield JSON.stringify(record) + '\n';
      }
    }
    const r = await d.load({ ...tenant, input: input() });
    expect(seen.run).toHaveLength(1);
    expect(seen.helper).toHaveLength(1);
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 1500, inserted: 0, updated: 1500, batches: 15 });
    const names = await lastNames('p_plain');
    for (const i of range(1000)) expect(names.get(contact(i).id)).toBe(`Last${i} v${i < 500 ? 3 : 2}`);
    expect(await pipeTables('p_plain')).toEqual([]);
  });

  it('a helper connection killed while it stages: the batch is staged again, every record lands once', async () => {
    const app = 'pgland-p-helper';
    const d = await destination('p_helper', app);
    await seed(d, 800);
    const kills = killing(app, 'helper', [450]); // batch 5 is being COPYed on the helper
    const r = await d.load({ ...tenant, input: kills.input });
    expect(kills.killed.length).toBeGreaterThan(0);
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 800, updated: 800, batches: 8 });
    expectAllAt(await lastNames('p_helper'), 800, 2);
  });

  it("the run's connection killed while the helper stages: it takes the lock again, replays the merge, every record lands once", async () => {
    const app = 'pgland-p-run';
    const d = await destination('p_run', app);
    await seed(d, 800);
    const kills = killing(app, 'run', [350, 650]);
    const r = await d.load({ ...tenant, input: kills.input });
    expect(kills.killed.length).toBe(1);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ rowsRead: 800, updated: 800, unchanged: 0, batches: 8 });
    expectAllAt(await lastNames('p_run'), 800, 2);
  });

  it('a staged batch that lost rows before its merge is COPYed again from its kept bytes', async () => {
    const app = 'pgland-p-lost';
    const d = await destination('p_lost', app);
    await seed(d, 500);
    const meddler = new pg.Client({ connectionString: db.url });
    await meddler.connect();
    let meddled: Promise<unknown> | undefined;
    async function* input(): AsyncGenerator<string> {
      for (const i of range(500)) {
        if (i === 295) {
          // Batch 3 (records 200..299) is being COPYed into the run's staging table _1: 10 of its rows go.
          const [, one] = await stagingTables('p_lost');
          meddled = (await loseStagedRows(meddler, db.pool, `p_lost.${one}`)).done;
        }
        yield JSON.stringify(contact(i, 2)) + '\n';
      }
    }
    try {
      const r = await d.load({ ...tenant, input: input() });
      await meddled;
      expect(r.error).toBeUndefined();
      expect(r.counts).toMatchObject({ rowsRead: 500, updated: 500, unchanged: 0, batches: 5 });
      expectAllAt(await lastNames('p_lost'), 500, 2);
    } finally {
      await meddler.end();
    }
  });

  it('an input that fails while the next batch is staged: the batch before it commits, nothing of the failing one', async () => {
    const d = await destination('p_input', 'pgland-p-input');
    await seed(d, 500);
    async function* input(): AsyncGenerator<string> {
      for (const i of range(500)) {
        if (i === 350) throw new Error('the socket closed');
        yield JSON.stringify(contact(i, 2)) + '\n';
      }
    }
    const r = await d.load({ ...tenant, input: input() });
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/the socket closed/);
    expect(r.counts).toMatchObject({ batches: 3, updated: 300 });
    const names = await lastNames('p_input');
    for (const i of range(500)) expect(names.get(contact(i).id)).toBe(`Last${i} v${i < 300 ? 2 : 1}`);
    expect(await pipeTables('p_input')).toEqual([]);
  });

  it('with no second connection to be had, the run goes on one batch at a time', async () => {
    const d = await destination('p_single', 'pgland-p-single', 1);
    await seed(d, 500);
    const r = await d.load({ ...tenant, input: streamOf(range(500).map((i) => contact(i, 2))) });
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 500, updated: 500, batches: 5 });
    expectAllAt(await lastNames('p_single'), 500, 2);
  });

  it("a killed run's staging tables are dropped by the next run of the schema", async () => {
    const d = await destination('p_orphan', 'pgland-p-orphan');
    await seed(d, 300);
    // What a run killed mid-pipeline leaves: its run row, running, and its two tables.
    const runId = '00000000-0000-4000-8000-00000000beef';
    await db.pool.query(
      `INSERT INTO p_orphan._pgland_runs (run_id, provider, customer_id, object, object_kind, table_name, mode, write_mode, status, pgland_version)
       VALUES ($1, 'pipedrive', 'acme', 'crm_contacts', 'common', 'crm_contacts', 'incremental', 'upsert', 'running', 'test')`,
      [runId],
    );
    for (const k of [0, 1]) await db.pool.query(`CREATE UNLOGGED TABLE p_orphan._pgland_pipe_0000000000004000800000000000beef_${k} (x int)`);
    const r = await d.load({ ...tenant, input: streamOf([contact(1, 2)]) });
    expect(r.status).toBe('succeeded');
    expect(await pipeTables('p_orphan')).toEqual([]);
  });
});

async function stagingTables(schema: string): Promise<string[]> {
  const names = await pipeTables(schema);
  expect(names).toHaveLength(2);
  return names;
}
