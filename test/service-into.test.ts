import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, startTestService } from './support/service.js';

let db: TestDatabase;
let svc: Service;
let destId: string;

beforeAll(async () => {
  db = await freshDatabase('service_into');
  // The customer's own table: an identity key, a default, a CHECK, a unique email.
  await db.pool.query(`
    CREATE TABLE public.customers (
      customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email       text NOT NULL UNIQUE,
      name        text,
      plan        text NOT NULL DEFAULT 'free' CONSTRAINT customers_plan_known CHECK (plan IN ('free', 'pro')),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz
    )`);
  svc = await startTestService(db);
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'own', config: db.config({ schema: 'landing' }) } });
  expect(created.status).toBe(201);
  destId = created.body.id;
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

const into = (body: Record<string, unknown>) => call(svc, 'POST', `/destinations/${destId}/into`, { json: { target: 'public.customers', ...body } });

const upsertMap = { email: 'lower(trim(data.email))', name: 'data.name', plan: 'data.plan', updated_at: 'last_modified_at' };
const upsert = (records: unknown[]) => into({ write: 'upsert', match: 'email', map: upsertMap, records });
const rec = (id: string, day: number, data: Record<string, unknown>) => ({ id, last_modified_at: `2026-03-0${day}T10:00:00Z`, data });

async function customers(): Promise<{ email: string; name: string | null; plan: string }[]> {
  return (await db.pool.query(`SELECT email, name, plan FROM public.customers ORDER BY email`)).rows;
}

describe('POST /destinations/{id}/into (issue 18)', () => {
  it('upserts on a unique email through the mapping: new rows inserted, existing ones updated', async () => {
    const first = await upsert([
      rec('c1', 1, { email: ' Ada@Example.com ', name: 'Ada', plan: 'free' }),
      rec('c2', 1, { email: 'grace@example.com', name: 'Grace', plan: 'pro' }),
    ]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ status: 'succeeded', table: '"public"."customers"', counts: { rows_read: 2, inserted: 2 }, rejects: [] });

    const second = await upsert([
      rec('c1', 2, { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro' }),
      rec('c3', 2, { email: 'lin@example.com', name: 'Lin', plan: 'free' }),
    ]);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.counts).toMatchObject({ inserted: 1, updated: 1 });
    expect(await customers()).toEqual([
      { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro' },
      { email: 'grace@example.com', name: 'Grace', plan: 'pro' },
      { email: 'lin@example.com', name: 'Lin', plan: 'free' },
    ]);
    // The run is pgland's: recorded in its schema, naming the target table.
    const { rows } = await db.pool.query(`SELECT object, status FROM landing._pgland_runs WHERE run_id = $1`, [second.body.run_id]);
    expect(rows).toEqual([{ object: '"public"."customers"', status: 'succeeded' }]);
  });

  it('answers a record the table refuses as a reject naming the constraint, and lands the rest', async () => {
    const r = await upsert([
      rec('c4', 3, { email: 'ok@example.com', name: 'Ok', plan: 'free' }),
      rec('c5', 3, { email: 'gold@example.com', name: 'Gold', plan: 'gold' }),
    ]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ status: 'partial', counts: { inserted: 1, rejected: 1 } });
    expect(r.body.rejects).toHaveLength(1);
    expect(r.body.rejects[0]).toMatchObject({ line: 2, record_id: 'c5' });
    expect(r.body.rejects[0].reason).toContain('"customers_plan_known"');
    expect((await customers()).map((c) => c.email)).toContain('ok@example.com');
    expect((await customers()).map((c) => c.email)).not.toContain('gold@example.com');
  });

  it('refuses a bad request with 400 and the fix before any write', async () => {
    const before = await customers();
    const runs = async () => Number((await db.pool.query(`SELECT count(*) FROM landing._pgland_runs`)).rows[0].count);
    const runsBefore = await runs();
    const records = [rec('c9', 4, { email: 'new@example.com', name: 'New' })];

    const unknownColumn = await into({ write: 'insert', map: { email: 'data.email', nmae: 'data.name' }, records });
    expect(unknownColumn.status, JSON.stringify(unknownColumn.body)).toBe(400);
    expect(unknownColumn.body.error.code).toBe('mapping_invalid');
    expect(unknownColumn.body.error.message).toContain('"nmae"');

    const noUnique = await into({ write: 'upsert', match: 'name', map: { email: 'data.email', name: 'data.name' }, records });
    expect(noUnique.status, JSON.stringify(noUnique.body)).toBe(400);
    expect(noUnique.body.error.hint).toBe('CREATE UNIQUE INDEX ON "public"."customers" ("name");');

    const missingTable = await into({ target: 'public.nope', write: 'insert', map: { email: 'data.email' }, records });
    expect(missingTable.status).toBe(400);
    expect(missingTable.body.error.code).toBe('target_invalid');

    // A mapping path cannot reach outside the record.
    const outside = await into({ write: 'insert', map: { email: 'process.env.PGLAND_SECRET_KEY' }, records });
    expect(outside.status).toBe(400);
    expect(outside.body.error.code).toBe('mapping_invalid');

    const unknownKey = await into({ write: 'insert', map: { email: 'data.email' }, mapping: {}, records });
    expect(unknownKey.status).toBe(400);
    expect(unknownKey.body.error.message).toContain('unknown key "mapping"');

    const tooMany = await into({
      write: 'insert',
      map: { email: 'data.email' },
      records: Array.from({ length: 1001 }, (_, i) => rec(`m${i}`, 4, { email: `m${i}@example.com` })),
    });
    expect(tooMany.status).toBe(413);

    expect(await customers()).toEqual(before);
    expect(await runs()).toBe(runsBefore);
  });

  it('answers the generated key of a single insert as inserted_id', async () => {
    const r = await into({
      write: 'insert',
      map: { email: 'data.email', name: 'data.name' },
      records: [rec('c10', 5, { email: 'single@example.com', name: 'Single' })],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.counts).toMatchObject({ inserted: 1 });
    const { rows } = await db.pool.query(`SELECT customer_id::int AS id FROM public.customers WHERE email = 'single@example.com'`);
    expect(r.body.inserted_id).toBe(rows[0].id);
    expect(typeof r.body.inserted_id).toBe('number');
  });
  it("writes as the destination's own role: a grant it lacks is refused with the GRANT to run, and no secret", async () => {
    const role = `into_reader_${process.pid}`;
    const password = `pw-${process.pid}-secret`;
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}';
      GRANT CREATE, CONNECT ON DATABASE ${new URL(db.url).pathname.slice(1)} TO ${role};
      GRANT USAGE ON SCHEMA public TO ${role};
      GRANT SELECT ON public.customers TO ${role};`);
    const u = new URL(db.url);
    u.username = role;
    u.password = password;
    const created = await call(svc, 'POST', '/destinations', {
      json: { name: 'reader', config: { url: u.toString(), sslmode: 'disable', schema: 'pgland_reader' } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    try {
      const before = await customers();
      const r = await call(svc, 'POST', `/destinations/${created.body.id}/into`, {
        json: { target: 'public.customers', write: 'insert', map: { email: 'data.email' }, records: [rec('r1', 6, { email: 'reader@example.com' })] },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(502);
      expect(r.body.error.code).toBe('grant_missing');
      expect(r.body.error.hint).toContain(`GRANT INSERT ON TABLE "public"."customers" TO "${role}";`);
      expect(JSON.stringify(r.body)).not.toContain(password);
      expect(await customers()).toEqual(before);
    } finally {
      await call(svc, 'DELETE', `/destinations/${created.body.id}`);
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
  it('keeps a groups table: a record moving from [a, b] to [b, c] under sync has exactly [b, c]', async () => {
    await db.pool.query(`
      CREATE TABLE public.members (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);
      CREATE TABLE public.member_groups (member_id int NOT NULL REFERENCES public.members (id), group_name text NOT NULL, PRIMARY KEY (member_id, group_name));`);
    const sync = (day: number, groups: string[]) =>
      into({
        target: 'public.members',
        write: 'sync',
        match: 'email',
        map: { email: 'data.email' },
        groups: { table: 'public.member_groups', key_column: 'member_id', name_column: 'group_name', from: 'data.groups' },
        records: [rec('m1', day, { email: 'ada@example.com', groups })],
      });
    const first = await sync(1, ['a', 'b']);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.groups).toEqual({ added: 2, removed: 0 });
    const second = await sync(2, ['b', 'c']);
    expect(second.body.groups).toEqual({ added: 1, removed: 1 });
    const { rows } = await db.pool.query(`SELECT group_name FROM public.member_groups ORDER BY 1`);
    expect(rows.map((r) => r.group_name)).toEqual(['b', 'c']);
  });
});
