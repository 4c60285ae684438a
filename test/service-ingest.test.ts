import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, type TestRecord } from './support/records.js';
import { call, logLines, startTestService } from './support/service.js';

let db: TestDatabase;
let svc: Service;
/** A service that never holds a run: every batch is staged (what a process that is not a run's holder does). */
let staged: Service;
let destId: string;

const NDJSON = { 'content-type': 'application/x-ndjson' };
const tenant = { provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' };

beforeAll(async () => {
  db = await freshDatabase('service_ingest');
  svc = await startTestService(db, { maxBatchBytes: 16 * 1024 * 1024 });
  staged = await startTestService(db, { maxBatchBytes: 16 * 1024 * 1024, holdRuns: false });
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  expect(created.status).toBe(201);
  destId = created.body.id;
});
afterAll(async () => {
  await staged?.stop();
  await svc?.stop();
  await db?.drop();
});

async function openRun(extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, ...extra } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body.status).toBe('open');
  return r.body.id as string;
}

async function landed(): Promise<Map<string, Record<string, unknown>>> {
  const exists = await db.pool.query(`SELECT to_regclass('landing.crm_contacts') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return new Map();
  const { rows } = await db.pool.query(
    `SELECT id, first_name, last_name, email_addresses, _pgland_raw_data AS raw, _pgland_is_deleted AS deleted,
            _pgland_last_modified_at AS lm, _pgland_run_id::text AS run_id, _pgland_landed_at AS landed_at
       FROM landing.crm_contacts WHERE _pgland_provider = 'salesforce' AND _pgland_customer_id = 'acme'`,
  );
  return new Map(rows.map((r) => [r.id as string, r]));
}

/** Every column of every row, as one digest: equal digests, equal tables. */
async function digest(): Promise<string> {
  const { rows } = await db.pool.query(
    `SELECT md5(string_agg(t::text, '|' ORDER BY _pgland_provider, _pgland_customer_id, id)) AS d FROM landing.crm_contacts t`,
  );
  return rows[0].d as string;
}

async function watermark(): Promise<string | null> {
  const exists = await db.pool.query(`SELECT to_regclass('landing._pgland_watermarks') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return null;
  const { rows } = await db.pool.query(
    `SELECT high_water_mark::text AS w FROM landing._pgland_watermarks WHERE customer_id = 'acme' AND object = 'crm_contacts'`,
  );
  return rows[0]?.w ?? null;
}

async function stagingTables(): Promise<string[]> {
  const { rows } = await db.pool.query(`SELECT relname FROM pg_class WHERE relname LIKE '\\_pgland\\_stage\\_%' ORDER BY 1`);
  return rows.map((r) => r.relname as string);
}

describe('runs over HTTP (issue 7)', () => {
  it('lands a run of 100k records exactly, and nothing before commit', async () => {
    const total = 100_000;
    const records: TestRecord[] = Array.from({ length: total }, (_, i) => contact(i));
    // The last batch re-delivers 1,000 ids of the first with the same timestamp and other
    // content: across batches as within one, the later line must win.
    const redelivered = records.slice(0, 1000).map((r) => ({ ...r, data: { ...r.data, first_name: 'later line' } }));
    const id = await openRun();
    const parts = [records.slice(0, 30_000), records.slice(30_000, 60_000), records.slice(60_000)];
    const first = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(parts[0]!), headers: NDJSON });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ batch_no: 1, first_line: 1, last_line: 30_000, rows_read: 30_000, records: 30_000, rejected: 0 });
    // gzip is accepted, and streamed
    const second = await call(svc, 'POST', `/runs/${id}/batches`, {
      body: gzipSync(ndjson(parts[1]!)),
      headers: { ...NDJSON, 'content-encoding': 'gzip' },
    });
    expect(second.body).toMatchObject({ batch_no: 2, first_line: 30_001, last_line: 60_000, records: 30_000 });
    const third = await call(svc, 'PUT', `/runs/${id}/batches/3`, { body: ndjson([...parts[2]!, 'not json']), headers: NDJSON });
    expect(third.body).toMatchObject({ batch_no: 3, records: 40_000, rejected: 1 });
    const fourth = await call(svc, 'PUT', `/runs/${id}/batches/4`, { body: ndjson(redelivered), headers: NDJSON });
    expect(fourth.body).toMatchObject({ batch_no: 4, first_line: 100_002, records: 1000 });
    // A numbered batch sent again (its answer was lost) is not staged twice.
    const again = await call(svc, 'PUT', `/runs/${id}/batches/4`, { body: ndjson(redelivered), headers: NDJSON });
    expect(again.body).toMatchObject({ batch_no: 4, records: 1000, already_staged: true });

    expect((await landed()).size).toBe(0);
    expect(await watermark()).toBeNull();

    const committed = await call(svc, 'POST', `/runs/${id}/commit`);
    expect(committed.status, JSON.stringify(committed.body)).toBe(200);
    expect(committed.body.status).toBe('partial'); // the rejected line
    // Held (held-run.ts), each batch is merged as it comes, as `pgland load` merges its batches:
    // the re-delivered ids update what batch 1 landed.
    expect(committed.body.counts).toMatchObject({ batches: 4, rows_read: total + 1001, inserted: total, superseded: 0, rejected: 1, updated: 1000 });
    const rows = await landed();
    expect(rows.size).toBe(total);
    for (const r of records) {
      const row = rows.get(r.id)!;
      const n = Number(r.id.slice(4));
      expect(row.first_name).toBe(n < 1000 ? 'later line' : r.data!.first_name);
      expect(row.last_name).toBe(r.data!.last_name);
      expect(row.email_addresses).toEqual(r.data!.email_addresses);
      expect(row.raw).toEqual(r.raw_data);
      expect(row.run_id).toBe(id);
    }
    expect(await watermark()).not.toBeNull();
    expect(await stagingTables()).toEqual([]);
    const { rows: runRows } = await db.pool.query(`SELECT status, rows_read, rows_rejected FROM landing._pgland_runs WHERE run_id = $1`, [id]);
    expect(runRows[0]).toMatchObject({ status: 'partial', rows_read: String(total + 1001), rows_rejected: '1' });
    const rejects = await db.pool.query(`SELECT line_number FROM landing._pgland_rejects WHERE run_id = $1`, [id]);
    expect(rejects.rows).toEqual([{ line_number: '100001' }]);
    // Committing again answers the same outcome and changes nothing.
    const twice = await call(svc, 'POST', `/runs/${id}/commit`);
    expect(twice.body).toMatchObject({ status: 'partial', counts: committed.body.counts });
  });

  it('changes nothing when a run is aborted', async () => {
    const before = await digest();
    const mark = await watermark();
    const id = await openRun({ mode: 'full' });
    // A full refresh that would change 10 rows, delete all the others, and add 5.
    const changed = [...Array.from({ length: 10 }, (_, i) => contact(i, 7)), ...Array.from({ length: 5 }, (_, i) => contact(500_000 + i, 7))];
    const b = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(changed), headers: NDJSON });
    expect(b.body.records).toBe(15);
    const aborted = await call(svc, 'POST', `/runs/${id}/abort`);
    expect(aborted.status).toBe(200);
    expect(aborted.body).toMatchObject({ status: 'cancelled', counts: { rows_read: 15, inserted: 0 } });
    expect(await digest()).toBe(before);
    expect(await watermark()).toBe(mark);
    expect(await stagingTables()).toEqual([]);
    const seen = await db.pool.query(`SELECT count(*)::int AS n FROM landing._pgland_full_refresh_seen`);
    expect(seen.rows[0].n).toBe(0);
    const { rows } = await db.pool.query(`SELECT status FROM landing._pgland_runs WHERE run_id = $1`, [id]);
    expect(rows[0].status).toBe('cancelled');
    // An aborted run takes no more batches and cannot be committed.
    const late = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(changed), headers: NDJSON });
    expect(late.status).toBe(409);
    expect((await call(svc, 'POST', `/runs/${id}/commit`)).status).toBe(409);
    expect(await digest()).toBe(before);
  });

  it("applies a full refresh's deletions only at commit", async () => {
    const keep = Array.from({ length: 20 }, (_, i) => contact(i, 9));
    const id = await openRun({ mode: 'full' });
    await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(keep.slice(0, 10)), headers: NDJSON });
    await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(keep.slice(10)), headers: NDJSON });
    const live = async (): Promise<number> =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE NOT _pgland_is_deleted`)).rows[0].n as number;
    expect(await live()).toBe(100_000);
    const c = await call(svc, 'POST', `/runs/${id}/commit`);
    expect(c.body).toMatchObject({ status: 'succeeded', counts: { updated: 20, deleted: 100_000 - 20 } });
    expect(await live()).toBe(20);
  });

  it('refuses bad batches and keeps the run usable', async () => {
    const id = await openRun();
    const badGzip = await call(svc, 'POST', `/runs/${id}/batches`, {
      body: Buffer.from('not gzip at all'),
      headers: { ...NDJSON, 'content-encoding': 'gzip' },
    });
    expect(badGzip.status).toBe(400);
    expect(badGzip.body.error.code).toBe('input_failed');
    const br = await call(svc, 'POST', `/runs/${id}/batches`, { body: 'x', headers: { ...NDJSON, 'content-encoding': 'br' } });
    expect(br.status).toBe(415);
    const wrongType = await call(svc, 'POST', `/runs/${id}/batches`, { body: 'x', headers: { 'content-type': 'text/csv' } });
    expect(wrongType.status).toBe(415);
    const tooLarge = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson(Array.from({ length: 60_000 }, (_, i) => contact(i, 3))), headers: NDJSON });
    expect(tooLarge.status).toBe(413);
    // None of those staged anything: the next batch is number 1, from line 1.
    const ok = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(1, 12)]), headers: NDJSON });
    expect(ok.body).toMatchObject({ batch_no: 1, first_line: 1, records: 1 });
    const badOpen = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, mode: 'full', write: 'update' } });
    expect(badOpen.status).toBe(400);
    const unknownObject = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, object: 'crm_nothing' } });
    expect(unknownObject.body.error.code).toBe('unknown_object');
    const noDest = await call(svc, 'POST', '/runs', { json: { destination_id: '00000000-0000-4000-8000-000000000000', ...tenant } });
    expect(noDest.status).toBe(404);
    const extraKey = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, surprise: 1 } });
    expect(extraKey.status).toBe(400);
    expect((await call(svc, 'POST', `/runs/${id}/abort`)).status).toBe(200);
  });

  it('waits for, then refuses, a commit while another run holds the object (staged path)', async () => {
    const id = await openRun();
    await call(staged, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(2, 13)]), headers: NDJSON });
    const holder = await db.pool.connect();
    try {
      // The lease a loader holds for its whole run (src/load/lease.ts), held by this live backend.
      await holder.query(
        `INSERT INTO landing._pgland_leases (provider, customer_id, object, token, expires_at, holder_pid, holder_start)
         SELECT 'salesforce', 'acme', 'crm_contacts', gen_random_uuid(), now() + interval '1 hour', pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
      );
      const upd = await call(staged, 'PUT', `/destinations/${destId}`, { json: { config: db.config({ schema: 'landing', lock_timeout_ms: 200 }) } });
      expect(upd.status).toBe(200);
      const locked = await call(staged, 'POST', `/runs/${id}/commit`);
      expect(locked.status).toBe(409);
      expect(locked.body.error.code).toBe('object_locked');
      expect((await call(staged, 'GET', `/runs/${id}`)).body.status).toBe('open');
    } finally {
      await holder.query(`DELETE FROM landing._pgland_leases WHERE provider = 'salesforce' AND customer_id = 'acme'`);
      holder.release();
    }
    const c = await call(staged, 'POST', `/runs/${id}/commit`);
    expect(c.body).toMatchObject({ status: 'succeeded', counts: { updated: 1 } });
  });

  it('refuses to commit a run whose stage lost records (a server crash empties unlogged tables; staged path)', async () => {
    const before = await digest();
    const id = await openRun({ mode: 'full' });
    await call(staged, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(1, 20), contact(2, 20)]), headers: NDJSON });
    // What crash recovery does to an unlogged table.
    await db.pool.query(`TRUNCATE landing._pgland_stage_${id.replace(/-/g, '')}`);
    const c = await call(staged, 'POST', `/runs/${id}/commit`);
    expect(c.status).toBe(422);
    expect(c.body).toMatchObject({ status: 'failed' });
    expect(c.body.error).toMatch(/staged 2 records but 0 are left/);
    expect(await digest()).toBe(before); // a full refresh of nothing would have deleted every row
    expect(await stagingTables()).toEqual([]);
  });

  it('lists runs, and the logs hold no secret', async () => {
    const list = await call(svc, 'GET', `/runs?destination_id=${destId}&limit=3`);
    expect(list.body.runs).toHaveLength(3);
    expect(logLines.length).toBeGreaterThan(0);
    const password = decodeURIComponent(new URL(db.url).password);
    // Without a password (trust authentication) there is no secret to leak.
    if (password) expect(logLines.join('\n')).not.toContain(password);
    expect(logLines.join('\n')).not.toMatch(/postgres(ql)?:\/\/[^@\s]*:[^@\s]+@/);
  });
});
