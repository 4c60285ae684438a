import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { backendsOf, freshDatabase, terminateBackends, type TestDatabase } from './support/db.js';
import { contact, streamOf } from './support/records.js';
import { until } from './support/until.js';

let db: TestDatabase;
const opened: Destination[] = [];

beforeAll(async () => {
  db = await freshDatabase('sync');
});
afterAll(async () => {
  for (const d of opened) await d.close();
  await db?.drop();
});

async function destination(schema: string, extra: Record<string, unknown> = {}): Promise<Destination> {
  const d = await openDestination(db.config({ schema, batch_size: 100, ...extra }));
  opened.push(d);
  return d;
}

const tenant = { kind: 'common' as const, object: 'crm_contacts', provider: 'hubspot', customerId: 'c1' };
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);

async function rows(schema: string): Promise<{ id: string; last_name: string; deleted: boolean; deleted_at: Date | null }[]> {
  const { rows } = await db.pool.query(
    `SELECT id, last_name, _pgland_is_deleted AS deleted, _pgland_deleted_at AS deleted_at
       FROM ${schema}.crm_contacts WHERE _pgland_provider = 'hubspot' AND _pgland_customer_id = 'c1' ORDER BY id`,
  );
  return rows;
}

/** Every column but the two that record when and by which run a row was written. */
async function content(schema: string): Promise<unknown[]> {
  const { rows } = await db.pool.query(`SELECT * FROM ${schema}.crm_contacts ORDER BY _pgland_customer_id, id`);
  return rows.map(({ _pgland_landed_at, _pgland_run_id, ...rest }) => rest);
}

describe('full refresh (issue 4)', () => {
  it('soft: a full sync missing 3 records marks exactly those deleted; an incremental bringing one back un-deletes it', async () => {
    const d = await destination('full_soft');
    let r = await d.load({ ...tenant, mode: 'full', input: streamOf(range(250).map((n) => contact(n))) });
    expect(r.counts).toMatchObject({ inserted: 250, deleted: 0 });
    const missing = [17, 120, 249];
    r = await d.load({
      ...tenant,
      mode: 'full',
      input: streamOf(
        range(250)
          .filter((n) => !missing.includes(n))
          .map((n) => contact(n)),
      ),
    });
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ rowsRead: 247, unchanged: 247, deleted: 3 });
    const after = await rows('full_soft');
    expect(after).toHaveLength(250);
    expect(after.filter((x) => x.deleted).map((x) => x.id)).toEqual(missing.map((n) => contact(n).id));
    expect(after.filter((x) => x.deleted).every((x) => x.deleted_at instanceof Date)).toBe(true);

    r = await d.load({ ...tenant, input: streamOf([contact(120, 2)]) });
    expect(r.counts).toMatchObject({ updated: 1, undeleted: 1 });
    const back = (await rows('full_soft')).find((x) => x.id === contact(120).id)!;
    expect(back).toMatchObject({ deleted: false, deleted_at: null });
  });

  it('hard: the 3 missing records are gone, and another tenant is untouched', async () => {
    const d = await destination('full_hard', { delete_mode: 'hard' });
    await d.load({ ...tenant, customerId: 'other', input: streamOf(range(10).map((n) => contact(n))) });
    await d.load({ ...tenant, mode: 'full', input: streamOf(range(250).map((n) => contact(n))) });
    const r = await d.load({ ...tenant, mode: 'full', input: streamOf(range(247).map((n) => contact(n))) });
    expect(r.counts.deleted).toBe(3);
    expect((await rows('full_hard')).map((x) => x.id)).toEqual(range(247).map((n) => contact(n).id));
    const other = await db.pool.query(`SELECT count(*)::int AS n FROM full_hard.crm_contacts WHERE _pgland_customer_id = 'other'`);
    expect(other.rows[0].n).toBe(10);
  });

  it('a full refresh that fails deletes nothing', async () => {
    const d = await destination('full_fail', { batch_retries: 0 });
    await d.load({ ...tenant, mode: 'full', input: streamOf(range(300).map((n) => contact(n))) });
    async function* brokenAfter200(): AsyncGenerator<string> {
      for (const n of range(200)) yield JSON.stringify(contact(n)) + '\n';
      throw new Error('source went away');
    }
    const r = await d.load({ ...tenant, mode: 'full', input: brokenAfter200() });
    expect(r.status).toBe('failed');
    expect((await rows('full_fail')).filter((x) => x.deleted)).toHaveLength(0);
    const seen = await db.pool.query(`SELECT count(*)::int AS n FROM full_fail._pgland_full_refresh_seen`);
    expect(seen.rows[0].n).toBe(0);
  });

  it('a reader polling during a full refresh never sees a deletion before the run completes', async () => {
    const d = await destination('full_reader', { batch_size: 50 });
    await d.load({ ...tenant, mode: 'full', input: streamOf(range(1000).map((n) => contact(n))) });
    const seen = new Set<number>();
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const { rows } = await db.pool.query(`SELECT count(*) FILTER (WHERE NOT _pgland_is_deleted)::int AS live FROM full_reader.crm_contacts`);
        seen.add(rows[0].live);
      }
    })();
    async function* slowly(): AsyncGenerator<string> {
      for (const n of range(990)) {
        if (n % 50 === 0) await new Promise((r) => setTimeout(r, 15));
        yield JSON.stringify(contact(n, 2)) + '\n';
      }
    }
    const r = await d.load({ ...tenant, mode: 'full', input: slowly() });
    stop = true;
    await reader;
    expect(r.counts).toMatchObject({ updated: 990, deleted: 10, batches: 20 });
    // Only the two documented states: all 1000 live during the run, 990 after it.
    expect([...seen].sort()).toEqual([1000, 990].filter((v) => seen.has(v)).sort());
    expect(seen.has(1000)).toBe(true);
  });
});

describe('incremental runs (issue 4)', () => {
  it('applies deletes, and a redelivery of the same run is a no-op', async () => {
    const d = await destination('incr');
    await d.load({ ...tenant, input: streamOf(range(100).map((n) => contact(n))) });
    const run = range(20).map((n) => (n % 4 === 0 ? { ...contact(n, 3), is_deleted: true } : contact(n, 3)));
    const first = await d.load({ ...tenant, input: streamOf(run) });
    expect(first.counts).toMatchObject({ updated: 15, deleted: 5 });
    const before = await db.pool.query(`SELECT * FROM incr.crm_contacts ORDER BY id`);
    const again = await d.load({ ...tenant, input: streamOf(run) });
    expect(again.counts).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: 20 });
    const after = await db.pool.query(`SELECT * FROM incr.crm_contacts ORDER BY id`);
    expect(after.rows).toEqual(before.rows);
  });

  it('keeps the newest version when batches arrive out of order', async () => {
    const d = await destination('out_of_order', { batch_size: 10 });
    // Versions 5, 3, 4 of the same 10 records, in three batches.
    const batches = [5, 3, 4].flatMap((v) => range(10).map((n) => contact(n, v)));
    await d.load({ ...tenant, input: streamOf(batches) });
    expect((await rows('out_of_order')).every((x) => x.last_name.endsWith(' v5'))).toBe(true);
    // And across runs: an older run delivered late changes nothing.
    const late = await d.load({ ...tenant, input: streamOf(range(10).map((n) => contact(n, 2))) });
    expect(late.counts).toMatchObject({ updated: 0, unchanged: 10 });
  });

  it('keeps a watermark per tenant and object, and loses nothing on timestamp ties', async () => {
    const d = await destination('wm');
    expect(await d.watermark({ provider: 'hubspot', customerId: 'c1', object: 'crm_contacts' })).toBeUndefined();
    // Run 1 lands A at T; the source later adds B with the same timestamp T.
    const a = contact(1, 7);
    const b = contact(2, 7);
    const r1 = await d.load({ ...tenant, input: streamOf([a]) });
    const wm1 = await d.watermark({ provider: 'hubspot', customerId: 'c1', object: 'crm_contacts' });
    expect(wm1).toMatchObject({ runId: r1.runId });
    expect(wm1!.highWaterMark.toISOString()).toBe(new Date(a.last_modified_at).toISOString());
    // Run 2 starts at >= the watermark: A again and B. B lands; A is not doubled.
    const r2 = await d.load({ ...tenant, input: streamOf([a, b]) });
    expect(r2.counts).toMatchObject({ inserted: 1, unchanged: 1 });
    expect((await rows('wm')).map((x) => x.id)).toEqual([a.id, b.id]);
    const wm2 = await d.watermark({ provider: 'hubspot', customerId: 'c1', object: 'crm_contacts' });
    expect(wm2!.runId).toBe(r2.runId);
    // An older run does not move the watermark back.
    await d.load({ ...tenant, input: streamOf([contact(3, 2)]) });
    const wm3 = await d.watermark({ provider: 'hubspot', customerId: 'c1', object: 'crm_contacts' });
    expect(wm3!.highWaterMark.toISOString()).toBe(wm2!.highWaterMark.toISOString());
  });

  it('a failed run does not move the watermark', async () => {
    const d = await destination('wm_fail', { batch_retries: 0 });
    await d.load({ ...tenant, input: streamOf([contact(1, 2)]) });
    async function* broken(): AsyncGenerator<string> {
      yield JSON.stringify(contact(2, 20)) + '\n';
      throw new Error('boom');
    }
    const r = await d.load({ ...tenant, input: broken() });
    expect(r.status).toBe('failed');
    const wm = await d.watermark({ provider: 'hubspot', customerId: 'c1', object: 'crm_contacts' });
    expect(wm!.highWaterMark.toISOString()).toBe(new Date(contact(1, 2).last_modified_at).toISOString());
  });
});

describe('write modes (issue 4)', () => {
  async function seeded(schema: string, extra: Record<string, unknown> = {}): Promise<Destination> {
    const d = await destination(schema, extra);
    await d.load({ ...tenant, input: streamOf(range(10).map((n) => contact(n))) });
    return d;
  }
  const mixed = [...range(5, 5).map((n) => contact(n, 2)), ...range(5, 10).map((n) => contact(n, 2))]; // 5 existing, 5 new

  it('insert: appends new ids; an existing id is a per-record problem, not a crash', async () => {
    const d = await seeded('w_insert');
    const r = await d.load({ ...tenant, write: 'insert', input: streamOf(mixed) });
    expect(r.status).toBe('partial');
    expect(r.counts).toMatchObject({ inserted: 5, updated: 0, skipped: 5, problems: 5 });
    const p = await db.pool.query(`SELECT record_id, reason FROM w_insert._pgland_problems WHERE run_id = $1 ORDER BY record_id`, [r.runId]);
    expect(p.rows.map((x) => x.record_id)).toEqual(range(5, 5).map((n) => contact(n).id));
    expect(p.rows[0].reason).toMatch(/duplicate key/);
    expect((await rows('w_insert')).filter((x) => x.last_name.endsWith(' v1'))).toHaveLength(10);
  });

  it('update: changes only rows that exist; the others are counted as skipped', async () => {
    const d = await seeded('w_update');
    const r = await d.load({ ...tenant, write: 'update', input: streamOf(mixed) });
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ inserted: 0, updated: 5, skipped: 5 });
    expect(await rows('w_update')).toHaveLength(10);
  });

  it('update by another matching column', async () => {
    const d = await seeded('w_match');
    const renamed = { ...contact(999, 3), data: { ...contact(3, 3).data, first_name: 'First3', last_name: 'matched by name' } };
    const r = await d.load({ ...tenant, write: 'update', matchColumn: 'first_name', input: streamOf([renamed]) });
    expect(r.counts).toMatchObject({ updated: 1, skipped: 0 });
    const row = (await rows('w_match')).find((x) => x.id === contact(3).id)!;
    expect(row.last_name).toBe('matched by name');
  });

  it('delete: removes (soft) the rows the records name; unknown ids are skipped', async () => {
    const d = await seeded('w_delete');
    const r = await d.load({ ...tenant, write: 'delete', input: streamOf([contact(1, 2), contact(2, 2), contact(77, 2)]) });
    expect(r.counts).toMatchObject({ deleted: 2, skipped: 1 });
    expect((await rows('w_delete')).filter((x) => x.deleted).map((x) => x.id)).toEqual([contact(1).id, contact(2).id]);
  });

  it('delete, hard: the rows are gone', async () => {
    const d = await seeded('w_delete_hard', { delete_mode: 'hard' });
    const r = await d.load({ ...tenant, write: 'delete', input: streamOf([contact(1, 2), contact(2, 2)]) });
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ deleted: 2 });
    expect(await rows('w_delete_hard')).toHaveLength(8);
  });

  it("Grouparoo's Sync, Additive and Enrich map onto upsert, upsert ignoring deletes, and update", async () => {
    const input = [...range(5, 5).map((n) => contact(n, 2)), { ...contact(0, 2), is_deleted: true }, contact(42, 2)];
    // Sync: add, update and remove.
    const sync = await seeded('g_sync');
    const s = await sync.load({ ...tenant, write: 'upsert', input: streamOf(input) });
    expect(s.counts).toMatchObject({ inserted: 1, updated: 5, deleted: 1 });
    // Additive: add and update, never remove.
    const add = await seeded('g_additive');
    const a = await add.load({ ...tenant, write: 'upsert', ignoreDeletes: true, input: streamOf(input) });
    expect(a.counts).toMatchObject({ inserted: 1, updated: 5, deleted: 0, skipped: 1 });
    expect((await rows('g_additive')).some((x) => x.deleted)).toBe(false);
    // Enrich: only update what exists.
    const enrich = await seeded('g_enrich');
    const e = await enrich.load({
      ...tenant,
      write: 'update',
      ignoreDeletes: true,
      input: streamOf([...input, { ...contact(43, 2), is_deleted: true }]),
    });
    // #42 matches nothing, the deletions of #0 and #43 are ignored: each counted once.
    expect(e.counts).toMatchObject({ inserted: 0, updated: 5, skipped: 3, unchanged: 0 });
    expect(await rows('g_enrich')).toHaveLength(10);
  });

  it('update and enrich change live rows only: a soft-deleted row is not brought back (issue 16)', async () => {
    const d = await seeded('w_no_undelete');
    await d.load({ ...tenant, input: streamOf([{ ...contact(3, 2), is_deleted: true }]) });
    const live = { ...contact(3, 3), is_deleted: false };
    // Enrich: update what exists, add nothing; a deleted row is not there to update.
    const e = await d.load({ ...tenant, write: 'update', ignoreDeletes: true, input: streamOf([live, contact(4, 3)]) });
    expect(e.counts).toMatchObject({ updated: 1, undeleted: 0, skipped: 1 });
    // Plain update: the same for a live version; a deletion still applies.
    const u = await d.load({ ...tenant, write: 'update', input: streamOf([{ ...live, last_modified_at: contact(3, 4).last_modified_at }]) });
    expect(u.counts).toMatchObject({ updated: 0, undeleted: 0, skipped: 1 });
    const row = (await rows('w_no_undelete')).find((x) => x.id === contact(3).id)!;
    expect(row).toMatchObject({ deleted: true, last_name: 'Last3 v2' }); // the deletion's version
    // upsert is the way back.
    const s = await d.load({ ...tenant, input: streamOf([{ ...contact(3, 5) }]) });
    expect(s.counts).toMatchObject({ updated: 1, undeleted: 1 });
  });

  it('every line is accounted for: read = inserted + updated + deleted + unchanged + superseded + skipped + rejected', async () => {
    const d = await seeded('w_sum');
    const input: unknown[] = [contact(1, 2), contact(1, 3), { ...contact(2, 2), is_deleted: true }, contact(3), contact(50), 'not json'];
    const r = await d.load({ ...tenant, input: streamOf(input) });
    const c = r.counts;
    expect(c.rowsRead).toBe(6);
    expect(c.inserted + c.updated + c.deleted + c.unchanged + c.superseded + c.skipped + c.rejected).toBe(c.rowsRead);
  });
});

describe('concurrency and recovery (issue 4)', () => {
  it('two concurrent loads of one object serialise, and the result equals the serial result', async () => {
    const runA = range(300).map((n) => contact(n, n % 2 ? 4 : 6));
    const runB = range(300, 150).map((n) => contact(n, n % 2 ? 5 : 3));
    const serial = await destination('serial');
    await serial.load({ ...tenant, input: streamOf(runA) });
    await serial.load({ ...tenant, input: streamOf(runB) });

    const conc = await destination('concurrent', { batch_size: 20 });
    const slow = (recs: unknown[]) =>
      (async function* () {
        for (const r of recs) {
          yield JSON.stringify(r) + '\n';
          await new Promise((res) => setImmediate(res));
        }
      })();
    const [ra, rb] = await Promise.all([conc.load({ ...tenant, input: slow(runA) }), conc.load({ ...tenant, input: slow(runB) })]);
    expect([ra.status, rb.status]).toEqual(['succeeded', 'succeeded']);
    // They did not interleave: one started after the other finished.
    const { rows: runs } = await db.pool.query(`SELECT started_at, finished_at FROM concurrent._pgland_runs ORDER BY started_at`);
    expect(runs[1].started_at.getTime()).toBeGreaterThanOrEqual(runs[0].finished_at.getTime());
    expect(await content('concurrent')).toEqual(await content('serial'));
  });

  it('the second run waits up to lock_timeout_ms, then fails with a clear message', async () => {
    const d = await destination('locked', { lock_timeout_ms: 300 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const holder = d.load({
      ...tenant,
      input: (async function* () {
        yield JSON.stringify(contact(1)) + '\n';
        await gate;
      })(),
    });
    // The first run holds the object's lease (a row, src/load/lease.ts) before the second asks for it.
    await until('the first run holding the object lease', async () => {
      const { rowCount } = await db.pool.query(`SELECT 1 FROM locked._pgland_leases`).catch(() => ({ rowCount: 0 }));
      return rowCount! > 0;
    });
    await expect(d.load({ ...tenant, input: streamOf([contact(2)]) })).rejects.toMatchObject({ code: 'object_locked' });
    release();
    expect((await holder).status).toBe('succeeded');
  });

  it('different objects load in parallel through loadMany', async () => {
    const d = await destination('many');
    const results = await d.loadMany([
      { ...tenant, input: streamOf(range(50).map((n) => contact(n))) },
      { ...tenant, object: 'crm_accounts', input: streamOf([{ id: 'a1', last_modified_at: '2026-01-01T00:00:00Z', data: { name: 'A' } }]) },
    ]);
    expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('replays a batch whose connection was terminated, and lands it exactly once', async () => {
    const d = await destination('replay', { batch_size: 100, application_name: 'pgland-replay-test', batch_retries: 3 });
    let killed = false;
    async function* input(): AsyncGenerator<string> {
      for (const n of range(500)) {
        if (n === 250 && !killed) {
          // Mid-batch: the COPY of batch 3 is open on the server.
          await terminateBackends(db.pool, await backendsOf(db.pool, 'pgland-replay-test'));
          killed = true;
        }
        yield JSON.stringify(contact(n)) + '\n';
      }
    }
    const r = await d.load({ ...tenant, input: input() });
    expect(r.error).toBeUndefined();
    expect(killed).toBe(true);
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ rowsRead: 500, inserted: 500, batches: 5 });
    expect(await rows('replay')).toHaveLength(500);
  });

  it('cancelling rolls back the current batch and records the run as cancelled', async () => {
    const d = await destination('cancel', { batch_size: 100 });
    const ac = new AbortController();
    // A first load COPYs its next batch while the one before commits
    // (pipeline.ts): a batch still committing when the signal comes rolls
    // back too. The signal is given once batch 2 has landed, while batch 3
    // is being read, so that exactly batches 1 and 2 stay.
    async function* input(): AsyncGenerator<string> {
      for (const n of range(1000)) {
        if (n === 250) {
          for (let i = 0; i < 200 && (await rows('cancel').catch(() => [])).length < 200; i++) await new Promise((r) => setTimeout(r, 25));
          ac.abort();
        }
        yield JSON.stringify(contact(n)) + '\n';
      }
    }
    const r = await d.load({ ...tenant, input: input(), signal: ac.signal });
    expect(r.status).toBe('cancelled');
    expect(await rows('cancel')).toHaveLength(200);
    const run = await db.pool.query(`SELECT status FROM cancel._pgland_runs WHERE run_id = $1`, [r.runId]);
    expect(run.rows[0].status).toBe('cancelled');
  });

  it('marks runs left running by a dead loader as abandoned', async () => {
    const d = await destination('abandon');
    await d.load({ ...tenant, input: streamOf([contact(1)]) });
    await db.pool.query(`UPDATE abandon._pgland_runs SET status = 'running', finished_at = NULL`);
    const r = await d.load({ ...tenant, input: streamOf([contact(2)]) });
    const { rows: runs } = await db.pool.query(`SELECT run_id, status FROM abandon._pgland_runs ORDER BY started_at`);
    expect(runs.map((x) => x.status)).toEqual(['abandoned', 'succeeded']);
    expect(runs[1].run_id).toBe(r.runId);
  });
});
