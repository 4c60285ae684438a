import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, streamOf, type TestRecord } from './support/records.js';
import { call, startTestService } from './support/service.js';
import { until } from './support/until.js';

// Issue 15: a run held in one open transaction by the serve process its
// batches reach (src/load/held-run.ts), and what happens when batches and
// the commit reach another process, or the holder goes away.

let db: TestDatabase;
/** Two serve processes sharing one control database, as behind a load balancer. */
let a: Service;
let b: Service;
/** A third, whose held runs overlap every batch's merge (the default leaves bodies up to 1 MiB to merge before their answers) and stage in 5 tables at most. */
let o: Service;
let destId: string;
/** `pgland load`, into another schema of the same database: the reference. */
let reference: Destination;

const NDJSON = { 'content-type': 'application/x-ndjson' };
const object = { provider: 'salesforce', object: 'crm_contacts' };

beforeAll(async () => {
  db = await freshDatabase('service_held_runs');
  a = await startTestService(db);
  b = await startTestService(db);
  o = await startTestService(db, { heldOverlap: { smallBatchBytes: 0, maxTables: 5 } });
  const created = await call(a, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  expect(created.status).toBe(201);
  destId = created.body.id;
  reference = await openDestination(db.config({ schema: 'reference' }));
});
afterAll(async () => {
  await o?.stop();
  await b?.stop();
  await a?.stop();
  await reference?.close();
  await db?.drop();
});

async function openRun(customer: string, mode: 'full' | 'incremental' = 'incremental', svc = a): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...object, customer_id: customer, mode } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

function put(svc: Service, run: string, n: number, records: readonly unknown[]): ReturnType<typeof call> {
  return call(svc, 'PUT', `/runs/${run}/batches/${n}`, { body: ndjson(records), headers: NDJSON });
}

/** A tenant's rows, every column but those a run sets for itself (its id, when it landed). */
async function rowsOf(schema: string, customer: string): Promise<unknown[]> {
  const { rows } = await db.pool.query(
    `SELECT to_jsonb(t) - '_pgland_run_id' - '_pgland_landed_at' - '_pgland_deleted_at' AS r,
            (_pgland_deleted_at IS NOT NULL) AS has_deleted_at
       FROM ${schema}.crm_contacts t WHERE _pgland_customer_id = $1 ORDER BY id`,
    [customer],
  );
  return rows;
}

/** The lease of the tenant's object, and the backend that holds it. */
async function held(customer: string): Promise<{ pid: number } | undefined> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT holder_pid AS pid FROM landing._pgland_leases WHERE provider = $1 AND customer_id = $2 AND object = $3`,
    [object.provider, customer, object.object],
  );
  return rows[0];
}

async function countOf(customer: string): Promise<number> {
  const exists = await db.pool.query(`SELECT to_regclass('landing.crm_contacts') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return 0;
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = $1`, [customer]);
  return rows[0].n as number;
}

/** 3,000 contacts; the third batch repeats 100 ids of the first, newer, and deletes 10. */
function firstRun(): TestRecord[][] {
  const all = Array.from({ length: 3000 }, (_, i) => contact(i));
  const repeats = Array.from({ length: 100 }, (_, i) => ({ ...contact(i, 2), ...(i < 10 ? { is_deleted: true } : {}) }));
  return [all.slice(0, 1000), all.slice(1000, 2000), [...all.slice(2000), ...repeats]];
}

/** A 10% increment of it: 200 updated, 100 new. */
function increment(): TestRecord[][] {
  const updated = Array.from({ length: 200 }, (_, i) => contact(500 + i, 3));
  const added = Array.from({ length: 100 }, (_, i) => contact(5000 + i, 3));
  return [updated, added];
}

describe('held runs (issue 15)', () => {
  it('a held first load and a held increment land exactly what `pgland load` lands; nothing is visible before commit', async () => {
    const customer = 'exact';
    for (const [mode, batches] of [
      ['full', firstRun()],
      ['incremental', increment()],
    ] as const) {
      const run = await openRun(customer, mode);
      for (const [i, records] of batches.entries()) {
        const r = await put(a, run, i + 1, records);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        // Held: the object's lease is taken, by a live backend of this process.
        expect(await held(customer)).toBeDefined();
      }
      expect(await heldTables(run)).toEqual([]); // small batches: merged before their answers
      const before = await countOf(customer);
      expect(before).toBe(mode === 'full' ? 0 : 3000); // nothing of this run, to another connection
      const done = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: batches.length } });
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      expect(done.body.status).toBe('succeeded');
      const loaded = await reference.load({ kind: 'common', ...object, customerId: customer, mode, input: streamOf(batches.flat()) });
      expect(loaded.status).toBe('succeeded');
      expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
      expect(await held(customer)).toBeUndefined(); // the lease ended with the commit
    }
    const { rows } = await db.pool.query(`SELECT relname FROM pg_class WHERE relnamespace = 'landing'::regnamespace AND relname LIKE '\\_pgland\\_stage\\_%'`);
    expect(rows).toEqual([]);
  });

  it('refuses a commit naming 3 batches when 2 were sent, keeps the run held, and lands the corrected upload exactly', async () => {
    const customer = 'corrected';
    const batches = firstRun();
    const run = await openRun(customer, 'full');
    await put(a, run, 1, batches[0]!);
    await put(a, run, 3, batches[2]!);
    const refused = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error.code).toBe('batches_differ');
    expect(refused.body.error.message).toContain('batch 2 named by the commit was not staged');
    expect(await countOf(customer)).toBe(0);
    expect((await call(a, 'GET', `/runs/${run}`)).body.status).toBe('open');
    expect(await held(customer)).toBeDefined();
    await put(a, run, 2, batches[1]!);
    const done = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    await reference.load({ kind: 'common', ...object, customerId: customer, mode: 'full', input: streamOf([...batches[0]!, ...batches[2]!, ...batches[1]!]) });
    expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
  });

  it('an aborted held run leaves nothing, and lets the object go', async () => {
    const customer = 'aborted';
    const run = await openRun(customer, 'full');
    await put(a, run, 1, firstRun()[0]!);
    expect(await held(customer)).toBeDefined();
    const aborted = await call(a, 'POST', `/runs/${run}/abort`);
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(200);
    expect(aborted.body.status).toBe('cancelled');
    expect(await countOf(customer)).toBe(0);
    expect(await held(customer)).toBeUndefined();
    const { rows } = await db.pool.query(`SELECT status FROM landing._pgland_runs WHERE run_id = $1`, [run]);
    expect(rows).toEqual([{ status: 'cancelled' }]);
  });

  it('an abort that reaches another process lets the holder go at once', async () => {
    const customer = 'aborted-elsewhere';
    const run = await openRun(customer, 'full');
    await put(a, run, 1, firstRun()[0]!);
    expect(await held(customer)).toBeDefined();
    const aborted = await call(b, 'POST', `/runs/${run}/abort`);
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(200);
    expect(aborted.body.status).toBe('cancelled');
    // Not at the idle timeout (10 minutes here): the object is free again at once.
    await until('the holder to let the run go', async () => (await held(customer)) === undefined, 10_000);
    expect(await countOf(customer)).toBe(0);
  });

  it('batches and the commit on two processes land exactly: a commit that reaches another process is carried to the holder', async () => {
    const customer = 'two-processes';
    const batches = firstRun();
    const run = await openRun(customer, 'full', b);
    expect((await put(a, run, 1, batches[0]!)).status).toBe(200); // a holds the run
    expect((await put(b, run, 2, batches[1]!)).status).toBe(200); // staged by b
    expect((await put(a, run, 3, batches[2]!)).status).toBe(200);
    // The batch list is checked by the holder; its refusal is b's answer, and the run stays held.
    const short = await call(b, 'POST', `/runs/${run}/commit`, { json: { batches: 4 } });
    expect(short.status, JSON.stringify(short.body)).toBe(409);
    expect(short.body.error).toMatchObject({ code: 'batches_differ', message: expect.stringContaining('batch 4 named by the commit was not staged') });
    expect((await call(b, 'GET', `/runs/${run}`)).body.status).toBe('open');
    expect(await countOf(customer)).toBe(0);
    const done = await call(b, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ status: 'succeeded', counts: { batches: 3, rows_read: 3100 } });
    await reference.load({ kind: 'common', ...object, customerId: customer, mode: 'full', input: streamOf(batches.flat()) });
    expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
    // Committed again, anywhere: the same outcome.
    const again = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(again.body).toMatchObject({ status: 'succeeded', counts: done.body.counts });
  });

  it('answers 503 run_held_elsewhere when the live holder does not answer in time, changing nothing', async () => {
    // A process that holds nothing itself: every batch it gets is staged.
    const c = await startTestService(db, { holdRuns: false, heldCommitWaitMs: 200 });
    const holder = await db.pool.connect();
    try {
      const customer = 'silent-holder';
      const run = await openRun(customer, 'incremental', c);
      await put(c, run, 1, [contact(1)]); // staged
      // A holder that lives but does not listen: a batch in the ledger held by a session that keeps the holder's lock.
      const token = '00000000-0000-4000-8000-000000000001';
      await holder.query(`SELECT pg_advisory_lock(hashtextextended('pgland.held.' || $1::text, 0))`, [token]);
      const ledger = `landing._pgland_stage_${run.replace(/-/g, '')}_batches`;
      await db.pool.query(
        `INSERT INTO ${ledger} (batch_no, first_line, lines, rows_read, records, rejected, problems, nul_stripped, held_by) VALUES (2, 1, 1, 1, 1, 0, 0, 0, $1)`,
        [token],
      );
      const refused = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
      expect(refused.status, JSON.stringify(refused.body)).toBe(503);
      expect(refused.body.error.code).toBe('run_held_elsewhere');
      expect(refused.headers.get('retry-after')).toBe('1');
      expect((await call(c, 'GET', `/runs/${run}`)).body.status).toBe('open');
      expect(await countOf(customer)).toBe(0);
      // That holder goes: its batch is named lost.
      await holder.query(`SELECT pg_advisory_unlock_all()`);
      const lost = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
      expect(lost.status, JSON.stringify(lost.body)).toBe(409);
      expect(lost.body.error).toMatchObject({ code: 'batches_lost', message: expect.stringContaining('batch 2 was held') });
      await put(c, run, 2, [contact(2)]);
      const done = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
      expect(done.body).toMatchObject({ status: 'succeeded', counts: { inserted: 2 } });
    } finally {
      holder.release();
      await c.stop();
    }
  });

  it('a holder whose connection dies: the commit elsewhere names the lost batches; sent again, they land exactly', async () => {
    const customer = 'holder-died';
    const batches = firstRun();
    const run = await openRun(customer, 'full');
    await put(a, run, 1, batches[0]!);
    await put(b, run, 2, batches[1]!);
    await put(a, run, 3, batches[2]!);
    const holder = await held(customer);
    expect(holder?.pid).toBeGreaterThan(0);
    await db.pool.query('SELECT pg_terminate_backend($1)', [holder!.pid]);
    await until('the holder backend to end', async () => (await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [holder!.pid])).rowCount === 0);
    const refused = await call(b, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error.code).toBe('batches_lost');
    expect(refused.body.error.message).toContain('batches 1, 3 were held by a serve process that stopped');
    // Without a batch list, too: nothing is committed silently short.
    expect((await call(b, 'POST', `/runs/${run}/commit`)).body.error.code).toBe('batches_lost');
    expect(await countOf(customer)).toBe(0);
    // Sent again (to b, which may hold the run now: its lease went with the holder's connection).
    expect((await put(b, run, 1, batches[0]!)).body).toMatchObject({ batch_no: 1, already_staged: false });
    expect((await put(b, run, 3, batches[2]!)).body).toMatchObject({ batch_no: 3, already_staged: false });
    const done = await call(b, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    await reference.load({ kind: 'common', ...object, customerId: customer, mode: 'full', input: streamOf(batches.flat()) });
    expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
  });

  it('a stopped holder rolls its runs back: their batches are named lost', async () => {
    const c = await startTestService(db);
    const customer = 'holder-stopped';
    const run = await openRun(customer, 'incremental');
    await put(c, run, 1, [contact(1), contact(2)]);
    await c.stop();
    const refused = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'batches_lost', message: expect.stringContaining('batch 1 was held by a serve process') });
    await put(a, run, 1, [contact(1), contact(2)]);
    const done = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(done.body).toMatchObject({ status: 'succeeded', counts: { inserted: 2 } });
  });

  it('rolls a held run back after the idle timeout: its batches are lost, the object is free again', async () => {
    const c = await startTestService(db, { heldRunIdleMs: 300 });
    try {
      const customer = 'idle';
      const run = await openRun(customer, 'incremental', c);
      await put(c, run, 1, [contact(1)]);
      expect(await held(customer)).toBeDefined();
      await until('the idle timeout to let the run go', async () => (await held(customer)) === undefined);
      const refused = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
      expect(refused.status, JSON.stringify(refused.body)).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'batches_lost', message: expect.stringContaining('batch 1 was held') });
      await put(c, run, 1, [contact(1)]);
      const done = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
      expect(done.body).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
    } finally {
      await c.stop();
    }
  });

  /** A tenant with 3,000 contacts landed, and the batches of its increment: each record changes. */
  async function landedTenant(customer: string): Promise<TestRecord[][]> {
    const first = await openRun(customer, 'incremental');
    await put(a, first, 1, firstRun().flat());
    expect((await call(a, 'POST', `/runs/${first}/commit`, { json: { batches: 1 } })).body.status).toBe('succeeded');
    await reference.load({ kind: 'common', ...object, customerId: customer, mode: 'incremental', input: streamOf(firstRun().flat()) });
    return [0, 1, 2].map((b) => Array.from({ length: 100 }, (_, i) => contact(b * 1000 + i, 5)));
  }

  /** Commits the run on `svc`, naming its batches: it lands what `pgland load` lands of their records, and its batch tables are gone. */
  async function commitsExactly(
    svc: Service,
    run: string,
    customer: string,
    mode: 'full' | 'incremental',
    batches: TestRecord[][],
    counts: object,
  ): Promise<void> {
    const done = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: batches.length } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ status: 'succeeded', counts });
    await reference.load({ kind: 'common', ...object, customerId: customer, mode, input: streamOf(batches.flat()) });
    expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
    expect(await heldTables(run)).toEqual([]);
  }

  /** The held batch tables of a run (held-run.ts): a table per batch, until the run ends. */
  async function heldTables(run: string): Promise<string[]> {
    const { rows } = await db.pool.query<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE relnamespace = 'landing'::regnamespace AND relname LIKE $1 ORDER BY relname`,
      [`\\_pgland\\_stage\\_${run.replace(/-/g, '')}\\_h%`],
    );
    return rows.map((r) => r.relname);
  }

  /**
   * Opens an increment of a landed tenant whose first batch's merge waits: a
   * landed row it updates is locked in a transaction of its own (the
   * blocker, to roll back), and the batch is sent.
   */
  async function blockedIncrement(customer: string): Promise<{ run: string; batches: TestRecord[][]; blocker: import('pg').PoolClient }> {
    const batches = await landedTenant(customer);
    const run = await openRun(customer, 'incremental');
    const blocker = await db.pool.connect();
    await blocker.query('BEGIN');
    const { rowCount } = await blocker.query(`SELECT 1 FROM landing.crm_contacts WHERE _pgland_customer_id = $1 AND id = $2 FOR UPDATE`, [
      customer,
      batches[0]![0]!.id,
    ]);
    expect(rowCount).toBe(1);
    expect((await put(o, run, 1, batches[0]!)).status).toBe(200);
    await until('the merge of batch 1 to wait for the locked row', mergeWaits);
    return { run, batches, blocker };
  }

  /** Whether a backend waits for a row lock (the held merge behind blockedIncrement's blocker). */
  async function mergeWaits(): Promise<boolean> {
    const { rowCount } = await db.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%crm_contacts%'`,
    );
    return (rowCount ?? 0) > 0;
  }

  it('an increment batch is answered once staged: the next one is staged while it merges, and the commit waits for both merges', async () => {
    const customer = 'overlapped';
    const { run, batches, blocker } = await blockedIncrement(customer);
    try {
      // Batch 2 is staged and answered while batch 1's merge waits: the two overlap.
      const second = await put(o, run, 2, batches[1]!);
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(second.body).toMatchObject({ batch_no: 2, records: 100, already_staged: false });
      expect(await mergeWaits()).toBe(true);
      expect(await heldTables(run)).toHaveLength(2);
      const ledger = await db.pool.query(`SELECT batch_no, held_by IS NOT NULL AS held FROM landing._pgland_stage_${run.replace(/-/g, '')}_batches ORDER BY 1`);
      expect(ledger.rows).toEqual([
        { batch_no: 1, held: true },
        { batch_no: 2, held: true },
      ]);
      // The commit comes while both merges are outstanding: it waits for them.
      const committing = call(o, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
      expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer)); // nothing of the run is visible
      await blocker.query('ROLLBACK');
      const done = await committing;
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      expect(done.body).toMatchObject({ status: 'succeeded', counts: { batches: 2, rows_read: 200, updated: 200 } });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
    }
    await reference.load({ kind: 'common', ...object, customerId: customer, mode: 'incremental', input: streamOf([...batches[0]!, ...batches[1]!]) });
    expect(await rowsOf('landing', customer)).toEqual(await rowsOf('reference', customer));
    expect(await heldTables(run)).toEqual([]);
  });

  it('a full refresh of a landed tenant, its batches merged as they come: deletes what it did not deliver, at the commit only', async () => {
    const customer = 'full-overlapped';
    // Bodies of 1.2 MB: past the size up to which a batch is merged before its answer, by default.
    const batches = (await landedTenant(customer)).map((batch) =>
      batch.map((r) => ({ ...r, raw_data: { ...(r.raw_data as Record<string, unknown>), Pad: 'x'.repeat(12_000) } })),
    );
    const run = await openRun(customer, 'full');
    for (const [i, records] of batches.entries()) expect((await put(a, run, i + 1, records)).status).toBe(200);
    expect(await heldTables(run)).toHaveLength(3);
    expect(await countOf(customer)).toBe(3000);
    const { rows: before } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = $1 AND _pgland_is_deleted`, [
      customer,
    ]);
    await commitsExactly(a, run, customer, 'full', batches, { batches: 3, updated: 300 });
    const { rows: after } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = $1 AND _pgland_is_deleted`, [
      customer,
    ]);
    expect(after[0].n).toBeGreaterThan(before[0].n + 2000); // the records not delivered, soft-deleted
  });

  it('a batch whose merge fails after it was answered fails the commit, naming it; nothing of the run lands, a full refresh deletes nothing', async () => {
    const customer = 'merge-fails';
    const batches = await landedTenant(customer);
    const before = await rowsOf('landing', customer);
    // The destination refuses one version of one record: its batch stages, and its merge fails.
    const poisoned = batches[1]![7]!.id;
    await db.pool.query(
      `ALTER TABLE landing.crm_contacts ADD CONSTRAINT held_merge_fails CHECK (_pgland_customer_id <> '${customer}' OR id <> '${poisoned}' OR _pgland_last_modified_at < '2026-02-05') NOT VALID`,
    );
    try {
      const run = await openRun(customer, 'full');
      for (const [i, records] of batches.entries()) {
        const r = await put(o, run, i + 1, records);
        expect(r.status, JSON.stringify(r.body)).toBe(200); // staged: its merge comes after the answer
      }
      const failed = await call(o, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
      expect(failed.status, JSON.stringify(failed.body)).toBe(422);
      expect(failed.body.status).toBe('failed');
      expect(failed.body.error).toContain('batch 2 was staged but could not be merged');
      expect(failed.body.error).toContain('held_merge_fails');
      expect(await rowsOf('landing', customer)).toEqual(before);
      expect(await held(customer)).toBeUndefined();
      expect(await heldTables(run)).toEqual([]);
      const { rows } = await db.pool.query(`SELECT status FROM landing._pgland_runs WHERE run_id = $1`, [run]);
      expect(rows).toEqual([{ status: 'failed' }]);
    } finally {
      await db.pool.query('ALTER TABLE landing.crm_contacts DROP CONSTRAINT held_merge_fails');
    }
  });

  it('a holder that dies while merges are outstanding: the batches it answered are named lost; sent again, they land exactly', async () => {
    const customer = 'died-merging';
    const { run, batches, blocker } = await blockedIncrement(customer);
    try {
      expect((await put(o, run, 2, batches[1]!)).status).toBe(200);
      const holder = await held(customer);
      await db.pool.query('SELECT pg_terminate_backend($1)', [holder!.pid]);
      await until('the holder to let the run go', async () => (await held(customer)) === undefined);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    const refused = await call(b, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'batches_lost', message: expect.stringContaining('batches 1, 2 were held') });
    for (const [i, records] of batches.entries()) expect((await put(o, run, i + 1, records)).status).toBe(200);
    await commitsExactly(o, run, customer, 'incremental', batches, { batches: 3, updated: 300 });
  });

  it('past its most batch tables, a held increment merges its next batches before their answers, and lands exactly', async () => {
    const customer = 'many-batches';
    await landedTenant(customer);
    const batches = Array.from({ length: 8 }, (_, i) => [contact(i * 7, 6), contact(i * 7 + 1, 6)]);
    const run = await openRun(customer, 'incremental');
    for (const [i, records] of batches.entries()) expect((await put(o, run, i + 1, records)).status).toBe(200);
    expect(await heldTables(run)).toHaveLength(5);
    await commitsExactly(o, run, customer, 'incremental', batches, { batches: 8, updated: 16 });
  });

  it('a write-through of the object waits for a held run (and is refused after lock_timeout_ms)', async () => {
    const customer = 'write-through';
    // Before the run: a destination whose config changes gets a new pool, and the runs held on the old one are lost.
    const upd = await call(a, 'PUT', `/destinations/${destId}`, { json: { config: db.config({ schema: 'landing', lock_timeout_ms: 200 }) } });
    expect(upd.status).toBe(200);
    const run = await openRun(customer, 'incremental');
    await put(a, run, 1, [contact(1)]);
    expect(await held(customer)).toBeDefined();
    const wt = await call(a, 'POST', `/destinations/${destId}/records`, { json: { ...object, customer_id: customer, records: [contact(2)] } });
    expect(wt.status, JSON.stringify(wt.body)).toBe(409);
    expect(wt.body.error.code).toBe('object_locked');
    const done = await call(a, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(done.body).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
    const after = await call(a, 'POST', `/destinations/${destId}/records`, { json: { ...object, customer_id: customer, records: [contact(2)] } });
    expect(after.body).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
  });

  it('merges a batch with no id twice without sorting it by id; a batch with one keeps the newest version', async () => {
    const customer = 'unsorted';
    const first = await openRun(customer, 'full', o);
    expect((await put(o, first, 1, [contact(1)])).status).toBe(200);
    expect((await call(o, 'POST', `/runs/${first}/commit`, { json: { batches: 1 } })).body.status).toBe('succeeded');
    // What each statement that writes the landed table was, as the server ran it.
    await db.pool.query(`CREATE TABLE public.unsorted_log (q text);
      CREATE FUNCTION public.unsorted_log() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.unsorted_log VALUES (current_query()); RETURN NULL; END $$;
      CREATE TRIGGER unsorted_log AFTER INSERT ON landing.crm_contacts FOR EACH STATEMENT EXECUTE FUNCTION public.unsorted_log()`);
    try {
      const run = await openRun(customer, 'incremental', o);
      // More ids than a table of the smallest size tells apart (512).
      const distinct = Array.from({ length: 2000 }, (_, i) => contact(i + 1, 2));
      const repeated = [contact(3000, 2), contact(3001, 2), contact(3000, 3)];
      expect((await put(o, run, 1, distinct)).status).toBe(200);
      expect((await put(o, run, 2, repeated)).status).toBe(200);
      const done = await call(o, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
      expect(done.body).toMatchObject({ status: 'succeeded', counts: { inserted: 2001, updated: 1 } });
      const { rows } = await db.pool.query<{ sorted: boolean }>(
        `SELECT q LIKE '%DISTINCT ON%' AS sorted FROM public.unsorted_log WHERE q LIKE '%ON CONFLICT%'`,
      );
      expect(rows.map((r) => r.sorted)).toEqual([false, true]);
      const newest = await db.pool.query(`SELECT _pgland_raw_data->>'Version' AS v FROM landing.crm_contacts WHERE _pgland_customer_id = $1 AND id = $2`, [
        customer,
        contact(3000).id,
      ]);
      expect(newest.rows).toEqual([{ v: '3' }]);
    } finally {
      await db.pool.query('DROP TRIGGER unsorted_log ON landing.crm_contacts; DROP FUNCTION public.unsorted_log(); DROP TABLE public.unsorted_log');
    }
  });
});
