import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, streamOf } from './support/records.js';

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('load');
  dest = await openDestination(db.config({ schema: 'landing', batch_size: 1000 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

const tenant = { kind: 'common' as const, object: 'crm_contacts', provider: 'salesforce', customerId: 'cust-1' };

async function snapshot(): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(`SELECT * FROM landing.crm_contacts ORDER BY _pgland_provider, _pgland_customer_id, id`);
  return rows;
}

describe('the load path (issue 2)', () => {
  const base = Array.from({ length: 5000 }, (_, i) => contact(i));

  it('creates the schema and the table on a first load into an empty database', async () => {
    const before = await db.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'landing'`);
    expect(before.rowCount).toBe(1); // openDestination created it
    const result = await dest.load({ ...tenant, input: streamOf(base, 7777) });
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ rowsRead: 5000, inserted: 5000, updated: 0, unchanged: 0, batches: 5 });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts`);
    expect(rows[0].n).toBe(5000);
    const one = await db.pool.query(
      `SELECT first_name, last_name, email_addresses, _pgland_raw_data, _pgland_run_id::text
      FROM landing.crm_contacts WHERE id = $1`,
      [base[42]!.id],
    );
    expect(one.rows[0]).toEqual({
      first_name: 'First42',
      last_name: 'Last42 v1',
      email_addresses: [{ email_address: 'c42@example.com', email_address_type: 'primary' }],
      _pgland_raw_data: base[42]!.raw_data,
      _pgland_run_id: result.runId,
    });
  });

  it('changes nothing when the same file is loaded again', async () => {
    const before = await snapshot();
    const result = await dest.load({ ...tenant, input: streamOf(base) });
    expect(result.counts).toMatchObject({ rowsRead: 5000, inserted: 0, updated: 0, unchanged: 5000 });
    expect(await snapshot()).toEqual(before);
  });

  it('neither writes nor locks a landed row that an identical re-delivery meets (issue 8)', async () => {
    // ON CONFLICT DO UPDATE locks every row it meets, which writes the row's
    // xmax; the merge keeps unchanged records away from it.
    const versions = `SELECT id, ctid::text, xmin::text, xmax::text FROM landing.crm_contacts ORDER BY id`;
    const before = (await db.pool.query(versions)).rows;
    const result = await dest.load({ ...tenant, input: streamOf(base) });
    expect(result.counts).toMatchObject({ rowsRead: 5000, unchanged: 5000 });
    expect((await db.pool.query(versions)).rows).toEqual(before);
  });

  it('updates exactly the 10% of records that changed', async () => {
    const before = new Map((await snapshot()).map((r) => [r.id, r]));
    const changed = new Set(base.filter((_, i) => i % 10 === 3).map((r) => r.id));
    const input = base.map((r, i) => (i % 10 === 3 ? contact(i, 2) : r));
    const result = await dest.load({ ...tenant, input: streamOf(input) });
    expect(result.counts).toMatchObject({ inserted: 0, updated: 500, unchanged: 4500 });
    for (const row of await snapshot()) {
      const old = before.get(row.id)!;
      if (changed.has(row.id as string)) {
        expect(row.last_name).toMatch(/ v2$/);
        expect(row._pgland_run_id).toBe(result.runId);
      } else {
        expect(row).toEqual(old);
      }
    }
  });

  it('lands the later of two versions of one id within a batch', async () => {
    const older = contact(900001, 3);
    const newer = contact(900001, 4);
    // Same id twice: newest timestamp wins regardless of order...
    let r = await dest.load({ ...tenant, input: streamOf([newer, older]) });
    expect(r.counts).toMatchObject({ inserted: 1, superseded: 1 });
    let row = await db.pool.query(`SELECT last_name FROM landing.crm_contacts WHERE id = $1`, [older.id]);
    expect(row.rows[0].last_name).toBe('Last900001 v4');
    // ...and on equal timestamps the later line wins.
    const a = { ...contact(900002, 5), data: { ...contact(900002, 5).data, first_name: 'first line' } };
    const b = { ...contact(900002, 5), data: { ...contact(900002, 5).data, first_name: 'second line' } };
    r = await dest.load({ ...tenant, input: streamOf([a, b]) });
    row = await db.pool.query(`SELECT first_name FROM landing.crm_contacts WHERE id = $1`, [a.id]);
    expect(row.rows[0].first_name).toBe('second line');
  });

  it('two ids that land alike (lone surrogates become U+FFFD) are one record, newest wins (issue 8)', async () => {
    // A batch whose ids are all distinct skips the merge's one-version-per-id
    // sort; these two are distinct in the input, not once landed.
    const a = { ...contact(900004, 5), id: 'sur\uD800' };
    const b = { ...contact(900004, 6), id: 'sur\uDC00' };
    const r = await dest.load({ ...tenant, input: streamOf([contact(900005), a, b]) });
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ inserted: 2, superseded: 1 });
    const row = await db.pool.query(`SELECT last_name FROM landing.crm_contacts WHERE id = $1`, ['sur\uFFFD']);
    expect(row.rows).toEqual([{ last_name: 'Last900004 v6' }]);
  });

  it('never lets an older version overwrite a newer one', async () => {
    await dest.load({ ...tenant, input: streamOf([contact(900003, 10)]) });
    const r = await dest.load({ ...tenant, input: streamOf([contact(900003, 9)]) });
    expect(r.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 1 });
    const row = await db.pool.query(`SELECT last_name FROM landing.crm_contacts WHERE id = $1`, [contact(900003).id]);
    expect(row.rows[0].last_name).toBe('Last900003 v10');
  });

  it('issue 2 regression: a newer identical version advances the version, so an in-between one cannot overwrite it', async () => {
    const t1 = { ...contact(900010, 1), last_modified_at: '2026-03-01T00:00:00Z' };
    const t3 = { ...t1, last_modified_at: '2026-03-03T00:00:00Z' };
    const t2 = { ...contact(900010, 2), last_modified_at: '2026-03-02T00:00:00Z' };
    await dest.load({ ...tenant, input: streamOf([t1]) });
    const r = await dest.load({ ...tenant, input: streamOf([t3]) });
    expect(r.counts.updated).toBe(1);
    await dest.load({ ...tenant, input: streamOf([t2]) });
    const row = await db.pool.query(`SELECT last_name, _pgland_last_modified_at FROM landing.crm_contacts WHERE id = $1`, [t1.id]);
    expect(row.rows[0].last_name).toBe('Last900010 v1');
    expect(row.rows[0]._pgland_last_modified_at.toISOString()).toBe('2026-03-03T00:00:00.000Z');
  });

  it('keeps tenants apart: the same id under another customer is another row', async () => {
    const r = await dest.load({ ...tenant, customerId: 'cust-2', input: streamOf([contact(1)]) });
    expect(r.counts.inserted).toBe(1);
    const { rows } = await db.pool.query(`SELECT _pgland_customer_id FROM landing.crm_contacts WHERE id = $1 ORDER BY 1`, [contact(1).id]);
    expect(rows.map((x) => x._pgland_customer_id)).toEqual(['cust-1', 'cust-2']);
  });

  it('marks a record deleted at the source, and keeps it', async () => {
    const gone = { ...contact(7, 20), is_deleted: true };
    const r = await dest.load({ ...tenant, input: streamOf([gone]) });
    expect(r.counts).toMatchObject({ updated: 0, deleted: 1 });
    const { rows } = await db.pool.query(
      `SELECT _pgland_is_deleted, _pgland_deleted_at IS NOT NULL AS has_time FROM landing.crm_contacts
      WHERE id = $1 AND _pgland_customer_id = 'cust-1'`,
      [gone.id],
    );
    expect(rows[0]).toEqual({ _pgland_is_deleted: true, has_time: true });
  });

  it('records every run with its counts', async () => {
    const runs = await dest.runs({ object: 'crm_contacts' });
    expect(runs.length).toBeGreaterThanOrEqual(7);
    const first = runs[runs.length - 1]!;
    expect(first).toMatchObject({ status: 'succeeded', rows_read: '5000', rows_inserted: '5000', mode: 'incremental' });
    expect(first.finished_at).toBeInstanceOf(Date);
  });
});
