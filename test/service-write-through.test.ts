import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../src/service/options.js';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, startTestService } from './support/service.js';

let db: TestDatabase;
let svc: Service;
let destId: string;

const tenant = { provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' };

beforeAll(async () => {
  db = await freshDatabase('service_write_through');
  svc = await startTestService(db);
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'wt', config: db.config({ schema: 'landing' }) } });
  expect(created.status).toBe(201);
  destId = created.body.id;
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

async function row(id: string): Promise<{ last_name: string; lm: string } | undefined> {
  const { rows } = await db.pool.query(`SELECT last_name, _pgland_last_modified_at::text AS lm FROM landing.crm_contacts WHERE id = $1`, [id]);
  return rows[0];
}

const write = (records: unknown[], extra: Record<string, unknown> = {}) =>
  call(svc, 'POST', `/destinations/${destId}/records`, { json: { ...tenant, ...extra, records } });

describe('write-through (issue 15)', () => {
  it('lands a newer record at once; an older one changes nothing', async () => {
    const v5 = contact(1, 5);
    const first = await write([v5, contact(2, 5)]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ status: 'succeeded', table: 'crm_contacts', counts: { inserted: 2, rows_read: 2 } });
    expect(await row(v5.id)).toMatchObject({ last_name: 'Last1 v5' });

    const older = await write([contact(1, 3)]);
    expect(older.status).toBe(200);
    expect(older.body.counts).toMatchObject({ inserted: 0, updated: 0 });
    expect(await row(v5.id)).toMatchObject({ last_name: 'Last1 v5' });

    const newer = await write([contact(1, 7)]);
    expect(newer.body.counts).toMatchObject({ updated: 1 });
    expect(await row(v5.id)).toMatchObject({ last_name: 'Last1 v7' });

    // Not a sync: the watermark does not move.
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing._pgland_watermarks`);
    expect(rows[0].n).toBe(0);
  });

  it('keeps a bad record as a reject, naming its place, and lands the others', async () => {
    const r = await write([contact(10), { id: 'x' }, 'not a record']);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ status: 'partial', counts: { inserted: 1, rejected: 2 } });
    const { rows } = await db.pool.query(`SELECT line_number::int AS line, reason FROM landing._pgland_rejects WHERE run_id = $1 ORDER BY 1`, [r.body.run_id]);
    expect(rows.map((x) => x.line)).toEqual([2, 3]);
  });

  it('takes and releases the lease in its own transaction; waits for a run that holds it, then lands (issue 15)', async () => {
    const leases = `landing._pgland_leases`;
    const held = { ...tenant, customer_id: 'leased' };
    // A run holds the object's lease (a live one: not expired, no holder backend recorded).
    await db.pool.query(
      `INSERT INTO ${leases} (provider, customer_id, object, token, expires_at) VALUES ($1, $2, $3, gen_random_uuid(), now() + interval '1 hour')`,
      [held.provider, held.customer_id, held.object],
    );
    const pending = call(svc, 'POST', `/destinations/${destId}/records`, { json: { ...held, records: [contact(30, 2)] } });
    await new Promise((r) => setTimeout(r, 500));
    // Nothing landed while the run holds it.
    const before = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = 'leased'`);
    expect(before.rows[0].n).toBe(0);
    await db.pool.query(`DELETE FROM ${leases} WHERE customer_id = 'leased'`);
    const r = await pending;
    expect(r.body, JSON.stringify(r.body)).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
    // Every write-through leaves the lease table as it found it.
    await write([contact(31, 2)]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${leases}`);
    expect(rows[0].n).toBe(0);
  });

  it('refuses more than 1,000 records or 1 MiB with 413, landing nothing', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => contact(100_000 + i));
    const r = await write(many);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('body_too_large');
    expect(r.body.error.message).toBe("a write-through takes at most 1000 records (the server's PGLAND_WRITE_THROUGH_MAX_RECORDS); this one has 1001");
    expect(r.body.error.hint).toMatch(/^send larger sets as a run: POST \/runs/);
    const big = await write([{ ...contact(200_000), data: { first_name: 'x'.repeat(1_100_000) } }]);
    expect(big.status).toBe(413);
    expect(big.body.error.message).toMatch(
      /^a write-through takes a body of at most 1048576 bytes \(the server's PGLAND_WRITE_THROUGH_MAX_BYTES\); this one has 11\d{5}$/,
    );
    expect(big.body.error.hint).toMatch(/^send larger sets as a run: POST \/runs/);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE id >= '003C00100000'`);
    expect(rows[0].n).toBe(0);
  });

  it('past a limit the server was given, names that limit and a run; the run the answer points to lands the records', async () => {
    // A server started with PGLAND_WRITE_THROUGH_MAX_RECORDS=3 and PGLAND_WRITE_THROUGH_MAX_BYTES=4096.
    const small = await startTestService(db, { writeThrough: { maxRecords: 3, maxBytes: 4096 } });
    try {
      const bounded = { ...tenant, customer_id: 'bounded' };
      const records = [1, 2, 3, 4].map((n) => contact(300 + n, 2));
      const landed = async (): Promise<number> =>
        (await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = 'bounded'`)).rows[0].n;

      const four = await call(small, 'POST', `/destinations/${destId}/records`, { json: { ...bounded, records } });
      expect(four.status).toBe(413);
      expect(four.body.error).toEqual({
        code: 'body_too_large',
        message: "a write-through takes at most 3 records (the server's PGLAND_WRITE_THROUGH_MAX_RECORDS); this one has 4",
        hint: 'send larger sets as a run: POST /runs, PUT /runs/{id}/batches/1 (NDJSON, as many batches as needed), then POST /runs/{id}/commit',
      });
      // Two records in a body past 4,096 bytes: the bytes' limit, named, with its size.
      const wide = [contact(305, 2, { title: 'x'.repeat(2500) }), contact(306, 2, { title: 'y'.repeat(2500) })];
      const json = JSON.stringify({ ...bounded, records: wide });
      const big = await call(small, 'POST', `/destinations/${destId}/records`, { body: json, headers: { 'content-type': 'application/json' } });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('body_too_large');
      expect(big.body.error.message).toBe(
        `a write-through takes a body of at most 4096 bytes (the server's PGLAND_WRITE_THROUGH_MAX_BYTES); this one has ${Buffer.byteLength(json)}`,
      );
      expect(big.body.error.hint).toMatch(/^send larger sets as a run: POST \/runs/);
      expect(await landed()).toBe(0);
      // The default server takes what this one refuses: the limit is the server's setting, not the route's.
      expect((await write(wide.map((r) => ({ ...r, id: `${r.id}d` })))).status).toBe(200);

      // Within both limits it lands.
      const three = await call(small, 'POST', `/destinations/${destId}/records`, { json: { ...bounded, records: records.slice(0, 3) } });
      expect(three.status, JSON.stringify(three.body)).toBe(200);
      expect(three.body.counts).toMatchObject({ inserted: 3 });

      // What the answer says to do: a run of the four, on the same server.
      const run = await call(small, 'POST', '/runs', { json: { destination_id: destId, ...bounded } });
      expect(run.status, JSON.stringify(run.body)).toBe(201);
      const batch = await call(small, 'PUT', `/runs/${run.body.id}/batches/1`, { body: ndjson(records), headers: { 'content-type': 'application/x-ndjson' } });
      expect(batch.status, JSON.stringify(batch.body)).toBe(200);
      const done = await call(small, 'POST', `/runs/${run.body.id}/commit`, { json: { batches: 1 } });
      expect(done.body, JSON.stringify(done.body)).toMatchObject({ status: 'succeeded', counts: { inserted: 1 } });
      expect(await landed()).toBe(4);
    } finally {
      await small.stop();
    }
  });

  it('takes its limits from the server settings, up to a hard ceiling', () => {
    expect(resolveServeOptions({}, {}).options.writeThrough).toEqual({ maxRecords: 1000, maxBytes: 1048576 });
    const raised = { PGLAND_WRITE_THROUGH_MAX_RECORDS: '10000', PGLAND_WRITE_THROUGH_MAX_BYTES: String(8 * 1024 * 1024) };
    expect(resolveServeOptions({}, raised).options.writeThrough).toEqual({ maxRecords: 10000, maxBytes: 8388608 });
    expect(() => resolveServeOptions({}, { PGLAND_WRITE_THROUGH_MAX_RECORDS: '10001' })).toThrow(/PGLAND_WRITE_THROUGH_MAX_RECORDS: .*10000/);
    expect(() => resolveServeOptions({}, { PGLAND_WRITE_THROUGH_MAX_BYTES: String(8 * 1024 * 1024 + 1) })).toThrow(/PGLAND_WRITE_THROUGH_MAX_BYTES: .*8388608/);
    expect(() => resolveServeOptions({}, { PGLAND_WRITE_THROUGH_MAX_RECORDS: '0' })).toThrow(/PGLAND_WRITE_THROUGH_MAX_RECORDS/);
  });

  it('refuses an unknown setting with the allowed values, and a misspelt key with the one it resembles', async () => {
    const r = await write([contact(1, 9)], { write: 'replace' });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toBe('body.write must be one of: upsert, insert, update, delete, sync, additive, enrich');
    const typo = await write([contact(1, 9)], { custmer_id: 'acme' });
    expect(typo.body.error.message).toBe('unknown key "custmer_id" in body; did you mean "customer_id"?');
    expect(await row(contact(1).id)).toMatchObject({ last_name: 'Last1 v7' });
  });

  it('names an unknown key of a destination config and the key it resembles, never its value', async () => {
    const config = { ...db.config({ schema: 'landing' }), databse: 'secret-looking-value' };
    const r = await call(svc, 'POST', '/destinations', { json: { name: 'typo', config } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^unknown key "databse" in body\.config; did you mean "database"\?/);
    expect(JSON.stringify(r.body)).not.toContain('secret-looking-value');
    const odd = await call(svc, 'GET', '/runs?colour=red');
    expect(odd.body.error.message).toMatch(/^unknown key "colour" in querystring; known keys: destination_id, status, object, provider, customer_id, limit\b/);
  });
});
