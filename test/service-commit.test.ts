import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, startTestService } from './support/service.js';

let db: TestDatabase;
let svc: Service;
/** A service that never holds a run: every batch is staged (what a process that is not a run's holder does). */
let staged: Service;
let destId: string;

const NDJSON = { 'content-type': 'application/x-ndjson' };
const tenant = { provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' };

beforeAll(async () => {
  db = await freshDatabase('service_commit');
  svc = await startTestService(db);
  staged = await startTestService(db, { holdRuns: false });
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  expect(created.status).toBe(201);
  destId = created.body.id;
});
afterAll(async () => {
  await staged?.stop();
  await svc?.stop();
  await db?.drop();
});

async function openRun(mode: 'full' | 'incremental'): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, mode } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

async function landedIds(): Promise<string[]> {
  const { rows } = await db.pool.query(`SELECT id FROM landing.crm_contacts WHERE NOT _pgland_is_deleted ORDER BY id`);
  return rows.map((r) => r.id as string);
}

const ids = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => contact(from + i).id);

describe('commits that cannot lose data (issue 15)', () => {
  it('refuses a commit naming batches that were not staged, changing nothing; the corrected upload lands exactly', async () => {
    // 300 records landed by a first full refresh.
    const first = await openRun('full');
    for (const [n, from] of [
      [1, 0],
      [2, 100],
      [3, 200],
    ] as const) {
      const b = await call(svc, 'PUT', `/runs/${first}/batches/${n}`, {
        body: ndjson(Array.from({ length: 100 }, (_, i) => contact(from + i))),
        headers: NDJSON,
      });
      expect(b.status, JSON.stringify(b.body)).toBe(200);
    }
    const c1 = await call(svc, 'POST', `/runs/${first}/commit`, { json: { batches: 3 } });
    expect(c1.body.status, JSON.stringify(c1.body)).toBe('succeeded');
    expect(await landedIds()).toEqual(ids(0, 300));

    // The next full refresh: batch 2 never arrived (sent with the wrong verb, or refused).
    const run = await openRun('full');
    await call(svc, 'PUT', `/runs/${run}/batches/1`, { body: ndjson(Array.from({ length: 100 }, (_, i) => contact(i, 2))), headers: NDJSON });
    await call(svc, 'PUT', `/runs/${run}/batches/3`, { body: ndjson(Array.from({ length: 100 }, (_, i) => contact(200 + i, 2))), headers: NDJSON });
    const refused = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: 3 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error.code).toBe('batches_differ');
    expect(refused.body.error.message).toContain('batch 2 named by the commit was not staged');
    expect(refused.body.error.hint).not.toMatch(/--/);
    // Nothing landed, nothing was deleted, the run is still open.
    expect(await landedIds()).toEqual(ids(0, 300));
    const { rows: v2 } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE last_name LIKE '% v2'`);
    expect(v2[0].n).toBe(0);
    expect((await call(svc, 'GET', `/runs/${run}`)).body.status).toBe('open');
    // Their numbers, too: one staged batch that the commit does not name is refused.
    const extra = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: [1] } });
    expect(extra.status).toBe(409);
    expect(extra.body.error.message).toContain('batch 3 staged but not named by the commit');

    // The corrected upload: batch 2 sent, then the same commit lands exactly.
    await call(svc, 'PUT', `/runs/${run}/batches/2`, { body: ndjson(Array.from({ length: 50 }, (_, i) => contact(100 + i, 2))), headers: NDJSON });
    const done = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: [1, 2, 3] } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.status).toBe('succeeded');
    expect(done.body.counts).toMatchObject({ batches: 3, updated: 250, deleted: 50 });
    expect(await landedIds()).toEqual([...ids(0, 150), ...ids(200, 300)]);
  });

  it('keeps the first content of a batch number sent again after later batches, and ties go to the later line (issue 15)', async () => {
    const other = { ...tenant, customer_id: 'resend' };
    const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...other, mode: 'incremental' } });
    const run = r.body.id as string;
    const put = (n: number, records: unknown[]) => call(svc, 'PUT', `/runs/${run}/batches/${n}`, { body: ndjson(records), headers: NDJSON });
    expect((await put(1, [contact(1, 4), contact(2, 4)])).status).toBe(200);
    // Batch 2 holds id 1 again with the same timestamp: a later line, it wins.
    expect((await put(2, [contact(1, 4, { first_name: 'later line' }), contact(3, 4)])).status).toBe(200);
    // Batch 1 sent again with other content: nothing is read, the first content stays.
    const again = await put(1, [contact(1, 9), contact(2, 9)]);
    expect(again.body).toMatchObject({ batch_no: 1, records: 2, already_staged: true });
    const done = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: 2 } });
    // Held, batch 2 is merged on its own: id 1 of batch 1 is updated by its later line.
    expect(done.body, JSON.stringify(done.body)).toMatchObject({ status: 'succeeded', counts: { inserted: 3, updated: 1 } });
    const { rows } = await db.pool.query(`SELECT id, first_name, last_name FROM landing.crm_contacts WHERE _pgland_customer_id = 'resend' ORDER BY id`);
    expect(rows).toEqual([
      { id: contact(1).id, first_name: 'later line', last_name: 'Last1 v4' },
      { id: contact(2).id, first_name: 'First2', last_name: 'Last2 v4' },
      { id: contact(3).id, first_name: 'First3', last_name: 'Last3 v4' },
    ]);
  });

  it('decides a first load at commit: a record written through meanwhile is not overwritten by an older staged one (issue 15; staged path)', async () => {
    const other = { ...tenant, customer_id: 'meanwhile' };
    const r = await call(staged, 'POST', '/runs', { json: { destination_id: destId, ...other, mode: 'full' } });
    const run = r.body.id as string;
    await call(staged, 'PUT', `/runs/${run}/batches/1`, { body: ndjson([contact(1, 3), contact(2, 3)]), headers: NDJSON });
    // The tenant had nothing landed when the batch came; a newer version lands before the commit.
    const wt = await call(staged, 'POST', `/destinations/${destId}/records`, { json: { ...other, records: [contact(1, 5)] } });
    expect(wt.body).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
    const done = await call(staged, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(done.body, JSON.stringify(done.body)).toMatchObject({ status: 'succeeded', counts: { inserted: 1, unchanged: 1, deleted: 0 } });
    const { rows } = await db.pool.query(
      `SELECT id, last_name, _pgland_is_deleted AS deleted FROM landing.crm_contacts WHERE _pgland_customer_id = 'meanwhile' ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: contact(1).id, last_name: 'Last1 v5', deleted: false },
      { id: contact(2).id, last_name: 'Last2 v3', deleted: false },
    ]);
  });

  it('refuses a malformed batches value with the allowed forms', async () => {
    const run = await openRun('incremental');
    const bad = await call(svc, 'POST', `/runs/${run}/commit`, { json: { batches: 'two' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect((await call(svc, 'GET', `/runs/${run}`)).body.status).toBe('open');
    // No body at all: the commit does not check (as before).
    const plain = await call(svc, 'POST', `/runs/${run}/commit`);
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
  });
});
