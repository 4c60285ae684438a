import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, startTestService } from './support/service.js';

// Issue 17: query actions over the API, per destination. Off unless the
// operator enables them; bound by the destination role's privileges;
// audited in the control database; the CLI's limits and errors.

let db: TestDatabase;
let on: Service;
let off: Service;
let destId: string;

beforeAll(async () => {
  db = await freshDatabase('service_query');
  await db.pool.query(`
    CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, status text NOT NULL DEFAULT 'active');
    INSERT INTO people (name) SELECT 'p' || g FROM generate_series(1, 20) g;
    CREATE TABLE secret_stuff (x int);`);
  on = await startTestService(db, { jobs: false, allowQueryActions: true });
  off = await startTestService(db, { jobs: false });
  const d = await call(on, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  expect(d.status, JSON.stringify(d.body)).toBe(201);
  destId = d.body.id;
});
afterAll(async () => {
  await on?.stop();
  await off?.stop();
  await db?.drop();
});

const audit = async () =>
  (
    await db.pool.query(
      `SELECT action, caller, statement_sha256, params, row_count, duration_ms, outcome, started_at FROM pgland_control.query_actions ORDER BY started_at`,
    )
  ).rows;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('query actions over the API (issue 17)', () => {
  it('are off unless the operator enables them', async () => {
    for (const action of ['query', 'exec']) {
      const r = await call(off, 'POST', `/destinations/${destId}/${action}`, { json: { sql: 'DELETE FROM people' } });
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ code: 'query_actions_disabled', hint: expect.stringMatching(/PGLAND_ALLOW_QUERY_ACTIONS=1/) });
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM people')).rows[0].n).toBe(20);
    // Without the token, nothing at all.
    expect((await call(on, 'POST', `/destinations/${destId}/query`, { json: { sql: 'SELECT 1' }, token: null })).status).toBe(401);
  });

  it('run with parameters as data, and are audited: who, when, the statement hash, rows, duration, outcome', async () => {
    const before = (await audit()).length;
    const sql = 'SELECT id, name FROM people WHERE status = $1 AND name <> $2 ORDER BY id LIMIT 3';
    const q = await call(on, 'POST', `/destinations/${destId}/query`, { json: { sql, params: ['active', "x' OR '1'='1"] } });
    expect(q.status, JSON.stringify(q.body)).toBe(200);
    expect(q.body).toMatchObject({
      rowCount: 3,
      rows: [{ id: 1, name: 'p1' }, { id: 2 }, { id: 3 }],
      fields: [
        { name: 'id', type: 'integer' },
        { name: 'name', type: 'text' },
      ],
    });
    // An injection string as a parameter is a value: it matches nothing and changes nothing.
    const inj = await call(on, 'POST', `/destinations/${destId}/query`, {
      json: { sql: 'SELECT count(*)::int AS n FROM people WHERE name = $1', params: ["p1'; DROP TABLE people; --"] },
    });
    expect(inj.body.rows).toEqual([{ n: 0 }]);
    const ins = await call(on, 'POST', `/destinations/${destId}/exec`, {
      json: { sql: 'INSERT INTO people (name) VALUES ($1) RETURNING id', params: ['"quoted" \\ new'] },
    });
    expect(ins.status, JSON.stringify(ins.body)).toBe(200);
    expect(ins.body).toMatchObject({ rowCount: 1, command: 'INSERT', insertedId: 21 });
    expect((await db.pool.query('SELECT name FROM people WHERE id = 21')).rows[0].name).toBe('"quoted" \\ new');
    const rows = (await audit()).slice(before);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({ action: 'query', caller: 'token', statement_sha256: sha(sql), params: 2, row_count: 3, outcome: 'ok' });
    expect(rows[2]).toMatchObject({ action: 'exec', params: 1, row_count: 1, outcome: 'ok' });
    expect(rows[0].duration_ms).toBeGreaterThanOrEqual(0);
    expect(rows[0].started_at).toBeInstanceOf(Date);
    // The audit keeps no statement text and no value.
    expect(JSON.stringify(rows)).not.toContain('DROP TABLE');
  });

  it("answer with the CLI's errors, and audit the failures too", async () => {
    const before = (await audit()).length;
    const cases = [
      ['query', { sql: 'UPDATE people SET status = $1', params: ['gone'] }, 400, 'read_only_query'],
      ['query', { sql: 'SELEC 1' }, 400, 'syntax_error'],
      ['query', { sql: 'SELECT pg_sleep(5)', timeout_ms: 300 }, 502, 'query_timeout'],
      ['query', { sql: "SELECT repeat('x', 1000) FROM generate_series(1, 100000)", max_bytes: 100_000 }, 400, 'result_too_large'],
      ['query', { sql: 'SELECT $1::int', params: [] }, 400, 'parameter_mismatch'],
      ['exec', { sql: 'SELECT * FROM nowhere' }, 400, 'undefined_table'],
    ] as const;
    for (const [action, json, status, code] of cases) {
      const r = await call(on, 'POST', `/destinations/${destId}/${action}`, { json });
      expect(r.status, `${json.sql}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.hint).toBeTruthy();
    }
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM people WHERE status = 'gone'`)).rows[0].n).toBe(0);
    expect((await audit()).slice(before).map((a) => a.outcome)).toEqual(cases.map((c) => c[3]));
    const tooLong = await call(on, 'POST', `/destinations/${destId}/query`, { json: { sql: 'SELECT 1', timeout_ms: 600_000 } });
    expect(tooLong.status).toBe(400);
  });

  it("are bound by the destination role's own privileges", async () => {
    const role = `qa_${Date.now()}`;
    const password = 'qa-pw-' + Date.now();
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await db.pool.query(`GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON people TO ${role}`);
    await db.pool.query(`DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO ${role}', current_database()); END $$`);
    try {
      const cfg = { ...db.config({ schema: `landing_${role}` }), user: role, password };
      const d = await call(on, 'POST', '/destinations', { json: { name: role, config: cfg } });
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      const read = await call(on, 'POST', `/destinations/${d.body.id}/query`, { json: { sql: 'SELECT count(*)::int AS n FROM people' } });
      expect(read.status, JSON.stringify(read.body)).toBe(200);
      const denied = await call(on, 'POST', `/destinations/${d.body.id}/exec`, { json: { sql: 'DELETE FROM people' } });
      expect(denied.body.error).toMatchObject({ code: 'permission_denied', hint: expect.stringContaining('GRANT') });
      const other = await call(on, 'POST', `/destinations/${d.body.id}/query`, { json: { sql: 'SELECT * FROM secret_stuff' } });
      expect(other.body.error.code).toBe('permission_denied');
      expect((await db.pool.query('SELECT count(*)::int AS n FROM people')).rows[0].n).toBe(21);
      await call(on, 'DELETE', `/destinations/${d.body.id}`);
    } finally {
      await db.pool.query(`REVOKE ALL ON people FROM ${role}; REVOKE ALL ON SCHEMA public FROM ${role}`);
      await db.pool.query(`DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM ${role}', current_database()); END $$`);
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});
