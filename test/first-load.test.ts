import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { backendsOf, freshDatabase, terminateBackends, type TestDatabase } from './support/db.js';
import { contact, streamOf, type TestRecord } from './support/records.js';
import { LatestTimestamp } from '../src/load/latest.js';

// Issue 8: a first load (the tenant has no row in the table yet) is COPYed
// straight into the landed table, with no staging table and no merge. These
// tests check that what lands, and what the run reports, is what the merge
// would have made of the same input.

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('first_load');
  dest = await openDestination(db.config({ schema: 'fl', batch_size: 1000 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

const object = { kind: 'common' as const, object: 'crm_contacts', provider: 'hubspot' };

/** What the merge lands for an input: per id, the newest version, and on a tie the later line. */
function expectedState(input: readonly TestRecord[]): Map<string, TestRecord> {
  const out = new Map<string, { r: TestRecord; at: number }>();
  for (const r of input) {
    const at = Date.parse(r.last_modified_at.toUpperCase());
    const old = out.get(r.id);
    if (!old || at >= old.at) out.set(r.id, { r, at });
  }
  return new Map([...out].map(([id, v]) => [id, v.r]));
}

async function landed(customer: string): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await db.pool.query(
    `SELECT id, last_name, _pgland_raw_data, _pgland_is_deleted, _pgland_deleted_at, _pgland_landed_at,
            _pgland_last_modified_at, _pgland_run_id::text AS run_id
       FROM fl.crm_contacts WHERE _pgland_provider = 'hubspot' AND _pgland_customer_id = $1`,
    [customer],
  );
  return new Map(rows.map((r) => [r.id as string, r]));
}

function expectLandedAsMerged(rows: Map<string, Record<string, unknown>>, input: readonly TestRecord[]): void {
  const expected = expectedState(input);
  expect(rows.size).toBe(expected.size);
  for (const [id, r] of expected) {
    const row = rows.get(id)!;
    expect(row.last_name).toBe(r.data!.last_name);
    expect(row._pgland_raw_data).toEqual(r.raw_data);
    expect((row._pgland_last_modified_at as Date).getTime()).toBe(Date.parse(r.last_modified_at.toUpperCase()));
    expect(row._pgland_is_deleted).toBe(r.is_deleted === true);
    // The merge sets the deletion time from the server's clock, as now().
    if (r.is_deleted) expect(row._pgland_deleted_at).toEqual(row._pgland_landed_at);
    else expect(row._pgland_deleted_at).toBeNull();
  }
}

describe('first load straight into the landed table (issue 8)', () => {
  it('lands every record of a new tenant without a merge, deletions and the watermark included', async () => {
    // Timestamps in several forms: the newest is written with an offset, so
    // that the watermark must come from the server's comparison, not the text.
    const input = Array.from({ length: 2500 }, (_, i) => {
      const r: TestRecord = { ...contact(i), is_deleted: i % 100 === 7 };
      if (i % 3 === 1) r.last_modified_at = '2026-02-02T12:00:00.123456Z';
      if (i === 1234) r.last_modified_at = '2026-03-01T01:30:00+02:00'; // 2026-02-28T23:30Z, the newest
      if (i === 1500) r.last_modified_at = '2026-02-28t23:00:00z';
      return r;
    });
    const r = await dest.load({ ...object, customerId: 'new-tenant', input: streamOf(input) });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('succeeded');
    expect(r.batchesCopiedDirect).toBe(3);
    expect(r.counts).toMatchObject({ rowsRead: 2500, inserted: 2500, updated: 0, unchanged: 0, superseded: 0, batches: 3 });
    const rows = await landed('new-tenant');
    expectLandedAsMerged(rows, input);
    expect(new Set([...rows.values()].map((row) => row.run_id))).toEqual(new Set([r.runId]));
    const w = await db.pool.query(`SELECT high_water_mark FROM fl._pgland_watermarks WHERE provider = 'hubspot' AND customer_id = 'new-tenant'`);
    expect((w.rows[0].high_water_mark as Date).toISOString()).toBe('2026-02-28T23:30:00.000Z');
  });

  it('replays a batch that repeats an id through the merge: the newest version wins, counts as merged', async () => {
    // batch_size 1000: ids 0..999, then 1000..1999 with 50 of batch 1's ids
    // again (25 newer, 25 older), then one id twice within batch 3.
    const first = Array.from({ length: 1000 }, (_, i) => contact(i, 2));
    const second = Array.from({ length: 1000 }, (_, i) => (i < 50 ? contact(i, i < 25 ? 3 : 1) : contact(1000 + i, 1)));
    const third = [contact(5000, 1), contact(5000, 4), contact(5001, 1)];
    const input = [...first, ...second, ...third];
    const r = await dest.load({ ...object, customerId: 'repeats', input: streamOf(input) });
    expect(r.status).toBe('succeeded');
    expect(r.batchesCopiedDirect).toBe(1);
    expect(r.counts).toMatchObject({ rowsRead: 2003, inserted: 1952, updated: 25, unchanged: 25, superseded: 1, batches: 3 });
    expectLandedAsMerged(await landed('repeats'), input);
  });

  it('merges the rest of the run after three batches met ids already landed', async () => {
    const input: TestRecord[] = [];
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 1000; i++) input.push(contact(b * 1000 + i));
      if (b > 0) input[input.length - 1] = contact(0, 2 + b); // each later batch repeats id 0, newer
    }
    const r = await dest.load({ ...object, customerId: 'many-repeats', input: streamOf(input) });
    expect(r.status).toBe('succeeded');
    expect(r.batchesCopiedDirect).toBe(1);
    expect(r.counts).toMatchObject({ rowsRead: 6000, inserted: 5995, updated: 5, batches: 6 });
    expectLandedAsMerged(await landed('many-repeats'), input);
  });

  it('insert mode: an id repeated within a first-load batch lands its newest version once', async () => {
    const input = [contact(1), contact(2), contact(1, 2)];
    const r = await dest.load({ ...object, customerId: 'insert-repeat', write: 'insert', input: streamOf(input) });
    expect(r.status).toBe('succeeded');
    expect(r.batchesCopiedDirect).toBe(0);
    expect(r.counts).toMatchObject({ inserted: 2, problems: 0, superseded: 1 });
    // Within one batch the newest version is the one inserted.
    const rows = await landed('insert-repeat');
    expect(rows.get(contact(1).id)!.last_name).toBe('Last1 v2');
  });

  it('insert mode: an id repeated in a later batch is kept as a problem with its line number', async () => {
    const input = [...Array.from({ length: 1000 }, (_, i) => contact(i)), contact(20000), contact(7, 5)];
    const r = await dest.load({ ...object, customerId: 'insert-later', write: 'insert', input: streamOf(input) });
    expect(r.status).toBe('partial');
    expect(r.batchesCopiedDirect).toBe(1);
    expect(r.counts).toMatchObject({ inserted: 1001, problems: 1, skipped: 1 });
    const p = await db.pool.query(`SELECT line_number, record_id, reason FROM fl._pgland_problems WHERE run_id = $1`, [r.runId]);
    expect(p.rows).toEqual([{ line_number: '1002', record_id: contact(7).id, reason: expect.stringMatching(/^duplicate key/) }]);
    expect((await landed('insert-later')).get(contact(7).id)!.last_name).toBe('Last7 v1');
  });

  it('a full refresh of a tenant with nothing landed lands everything and deletes nothing, other tenants untouched', async () => {
    await dest.load({ ...object, customerId: 'other', input: streamOf([contact(1), contact(2)]) });
    const input = Array.from({ length: 1500 }, (_, i) => contact(i));
    const r = await dest.load({ ...object, customerId: 'full-new', mode: 'full', input: streamOf(input) });
    expect(r.status).toBe('succeeded');
    expect(r.batchesCopiedDirect).toBe(2);
    expect(r.counts).toMatchObject({ inserted: 1500, deleted: 0 });
    expectLandedAsMerged(await landed('full-new'), input);
    const other = await landed('other');
    expect([...other.values()].every((row) => row._pgland_is_deleted === false)).toBe(true);
    expect(other.size).toBe(2);
    // The next full refresh of that tenant has rows to compare with: merged, and the missing one deleted.
    const again = await dest.load({ ...object, customerId: 'full-new', mode: 'full', input: streamOf(input.slice(1)) });
    expect(again.batchesCopiedDirect).toBe(0);
    expect(again.counts).toMatchObject({ inserted: 0, unchanged: 1499, deleted: 1 });
  });

  it('a tenant with rows, even only deleted ones, is merged', async () => {
    await dest.load({ ...object, customerId: 'has-deleted', input: streamOf([{ ...contact(1), is_deleted: true }]) });
    const r = await dest.load({ ...object, customerId: 'has-deleted', input: streamOf([contact(1, 2), contact(2)]) });
    expect(r.batchesCopiedDirect).toBe(0);
    expect(r.counts).toMatchObject({ inserted: 1, undeleted: 1 });
  });

  it('hard deletes and ignored deletions are merged: a deleted record is not a new row there', async () => {
    const hard = await openDestination(db.config({ schema: 'fl', delete_mode: 'hard' }));
    try {
      const r = await hard.load({ ...object, customerId: 'hard-new', input: streamOf([contact(1), { ...contact(2), is_deleted: true }]) });
      expect(r.batchesCopiedDirect).toBe(0);
      expect([...(await landed('hard-new')).keys()]).toEqual([contact(1).id]);
    } finally {
      await hard.close();
    }
  });

  for (const format of ['landed', 'stage'] as const) {
    it(`a connection killed between two chunks of a batch loses no row (${format} rows, issue 8 regression)`, async () => {
      // Records of about 1.5 kB, 2,000 to a batch: a batch is sent in about a
      // dozen chunks, and the kill lands between two of them.
      const app = `pgland-chunk-kill-${format}`;
      const d = await openDestination(db.config({ schema: 'fl', batch_size: 2000, batch_retries: 3, application_name: app }));
      const customerId = `chunk-kill-${format}`;
      const pad = 'x'.repeat(1200);
      try {
        if (format === 'stage') await d.load({ ...object, customerId, input: streamOf([contact(999_999)]) });
        let killed = false;
        async function* input(): AsyncGenerator<string> {
          for (let n = 0; n < 5000; n++) {
            if (n === 2600) {
              const pids = await backendsOf(db.pool, app);
              killed = pids.length > 0;
              await terminateBackends(db.pool, pids); // the loader meets the loss at its next send
            }
            yield JSON.stringify(contact(n, 1, { lifecycle_stage: pad })) + '\n';
          }
        }
        const r = await d.load({ ...object, customerId, input: input() });
        expect(killed).toBe(true);
        expect(r.error).toBeUndefined();
        expect(r.batchesCopiedDirect).toBe(format === 'landed' ? 3 : 0);
        expect(r.counts).toMatchObject({ rowsRead: 5000, inserted: 5000, batches: 3 });
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n, count(*) FILTER (WHERE lifecycle_stage = $2)::int AS padded
             FROM fl.crm_contacts WHERE _pgland_customer_id = $1 AND id <> $3`,
          [customerId, pad, contact(999_999).id],
        );
        expect(rows[0]).toEqual({ n: 5000, padded: 5000 });
      } finally {
        await d.close();
      }
    });
  }
});

describe('the newest version of a first-load batch (issue 8)', () => {
  it('compares the common form as text, fraction digit by digit, and leaves the other forms to the server', () => {
    const latest = new LatestTimestamp();
    for (const t of ['2026-02-02T10:00:00Z', '2026-02-02T10:00:00.5Z', '2026-02-02T10:00:00.123456Z', '2025-12-31T23:59:59.999Z']) latest.observe(t);
    expect(latest.candidates()).toEqual(['2026-02-02T10:00:00.5Z']);
    latest.observe('2026-02-02T10:00:00.50001Z');
    latest.observe('2026-02-02 11:00:00+01:00');
    latest.observe('2026-02-02 11:00:00+01:00');
    latest.observe('2026-02-03');
    expect(latest.candidates()).toEqual(['2026-02-02T10:00:00.50001Z', '2026-02-02 11:00:00+01:00', '2026-02-03']);
  });

  it('keeps one candidate per zone text, whatever the number of values (a reader\'s "+00" form)', () => {
    const latest = new LatestTimestamp();
    for (let i = 0; i < 5000; i++) latest.observe(`2025-12-${String(1 + (i % 28)).padStart(2, '0')} 23:${String(i % 60).padStart(2, '0')}:00.${i}+00`);
    latest.observe('2025-12-28 23:59:00.9+00');
    latest.observe('2025-12-28 23:59:00.10001+00');
    latest.observe('2025-12-29 01:00:00-05');
    latest.observe('2025-12-29 00:30:00-05');
    expect(latest.candidates()).toEqual(['2025-12-28 23:59:00.9+00', '2025-12-29 01:00:00-05']);
  });
});
