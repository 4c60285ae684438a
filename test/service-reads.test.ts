import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, startTestService } from './support/service.js';

/**
 * The read endpoints the web console uses (issue 19): a run's rejects,
 * problems and webhooks, a destination's tables, plan and least-privilege
 * SQL, a cron's next times, the runs' tenant filter; and the console's files.
 */
let db: TestDatabase;
let svc: Service;
let destId: string;
const NDJSON = { 'content-type': 'application/x-ndjson' };

beforeAll(async () => {
  db = await freshDatabase('service_reads');
  svc = await startTestService(db);
  const d = await call(svc, 'POST', '/destinations', { json: { name: 'reads', config: db.config({ schema: 'landing' }) } });
  expect(d.status, JSON.stringify(d.body)).toBe(201);
  destId = d.body.id;
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

async function pushRun(open: Record<string, unknown>, lines: unknown[]): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...open } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const b = await call(svc, 'POST', `/runs/${r.body.id}/batches`, { body: ndjson(lines), headers: NDJSON });
  expect(b.status, JSON.stringify(b.body)).toBe(200);
  const c = await call(svc, 'POST', `/runs/${r.body.id}/commit`, { json: {} });
  expect(['succeeded', 'partial'], JSON.stringify(c.body)).toContain(c.body.status);
  return r.body.id;
}

describe("a run's rejects and problems, paged (issue 19)", () => {
  it('pages the rejects in input order, with their reasons and lines', async () => {
    const lines: unknown[] = [];
    for (let i = 1; i <= 30; i++) lines.push(i % 3 === 0 ? `broken line ${i}` : contact(i));
    const id = await pushRun({ provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' }, lines);
    const first = await call(svc, 'GET', `/runs/${id}/rejects?limit=4`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ total: 10, offset: 0, limit: 4 });
    expect(first.body.items.map((r: { line_number: number }) => r.line_number)).toEqual([3, 6, 9, 12]);
    expect(first.body.items[0]).toMatchObject({ raw_text: 'broken line 3', reason: expect.stringContaining('invalid JSON') });
    const last = await call(svc, 'GET', `/runs/${id}/rejects?offset=8&limit=4`);
    expect(last.body.items.map((r: { line_number: number }) => r.line_number)).toEqual([27, 30]);
    const none = await call(svc, 'GET', `/runs/${id}/problems`);
    expect(none.body).toMatchObject({ total: 0, items: [] });
  });

  it("lists a declared object's problems: values that did not fit, the record landed", async () => {
    const declared = { type: 'object', properties: { Id: { type: 'string' }, Employees: { type: 'integer' } } };
    const rec = (n: number, employees: unknown) => ({ id: `A${n}`, last_modified_at: '2026-01-15T10:30:00Z', raw_data: { Id: `A${n}`, Employees: employees } });
    const id = await pushRun({ provider: 'salesforce', customer_id: 'acme', object: 'Account', kind: 'standard', declared }, [
      rec(1, 250),
      rec(2, 'about 40'),
      rec(3, 12),
    ]);
    const p = await call(svc, 'GET', `/runs/${id}/problems`);
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    expect(p.body.total).toBe(1);
    expect(p.body.items[0]).toMatchObject({ line_number: 2, record_id: 'A2', field: 'Employees', column_name: 'employees', value_excerpt: 'about 40' });
  });

  it('refuses bad paging and unknown runs', async () => {
    const id = (await call(svc, 'GET', '/runs?limit=1')).body.runs[0].id;
    expect((await call(svc, 'GET', `/runs/${id}/rejects?limit=0`)).status).toBe(400);
    expect((await call(svc, 'GET', `/runs/${id}/rejects?limit=501`)).status).toBe(400);
    expect((await call(svc, 'GET', `/runs/${id}/rejects?offset=-1`)).status).toBe(400);
    expect((await call(svc, 'GET', `/runs/${id}/rejects?sort=x`)).status).toBe(400);
    const missing = await call(svc, 'GET', '/runs/00000000-0000-4000-8000-000000000000/problems');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect((await call(svc, 'GET', `/runs/${id}/rejects`, { token: null })).status).toBe(401);
  });

  it('an open run has nothing to page yet', async () => {
    const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, provider: 'hubspot', customer_id: 'open', object: 'crm_contacts' } });
    const page = await call(svc, 'GET', `/runs/${r.body.id}/rejects`);
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(0);
    await call(svc, 'POST', `/runs/${r.body.id}/abort`);
  });
});

describe('runs by tenant (issue 19)', () => {
  it('filters the runs list by provider and customer', async () => {
    await pushRun({ provider: 'hubspot', customer_id: 'globex', object: 'crm_contacts' }, [contact(1)]);
    const globex = await call(svc, 'GET', '/runs?customer_id=globex');
    expect(globex.body.runs.length).toBe(1);
    expect(globex.body.runs[0]).toMatchObject({ provider: 'hubspot', customer_id: 'globex' });
    const acme = await call(svc, 'GET', '/runs?provider=salesforce&customer_id=acme');
    expect(acme.body.runs.length).toBe(2);
    expect((await call(svc, 'GET', '/runs?provider=nobody')).body.runs).toEqual([]);
  });
});

describe("a run's webhooks (issue 19)", () => {
  it('lists what a run sent, with the evolution report and the deliveries', async () => {
    const ep = await call(svc, 'POST', '/webhooks/endpoints', {
      json: { url: 'https://hooks.example/pgland', secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64') },
    });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    try {
      const id = await pushRun({ provider: 'pipedrive', customer_id: 'initech', object: 'crm_accounts' }, [
        { id: 'X1', last_modified_at: '2026-01-01T00:00:00Z', data: { name: 'Initech' } },
      ]);
      const hooks = await call(svc, 'GET', `/runs/${id}/webhooks`);
      expect(hooks.status).toBe(200);
      const types = hooks.body.webhooks.map((w: { event_type: string }) => w.event_type).sort();
      expect(types).toEqual(['schema.evolved', 'sync.complete']);
      const evolved = hooks.body.webhooks.find((w: { event_type: string }) => w.event_type === 'schema.evolved');
      expect(evolved.data).toMatchObject({ run_id: id, change: 'table_created', table: 'crm_accounts' });
      expect(evolved.deliveries).toEqual([expect.objectContaining({ endpoint_id: ep.body.id, status: expect.any(String) })]);
      const other = await call(svc, 'GET', `/runs/${(await call(svc, 'GET', '/runs?customer_id=globex')).body.runs[0].id}/webhooks`);
      expect(other.body.webhooks).toEqual([]);
    } finally {
      await call(svc, 'DELETE', `/webhooks/endpoints/${ep.body.id}`);
    }
  });
});

describe("a run's evolution report, kept with the run (issue 19)", () => {
  it('answers it in GET /runs/{id} and the list with no webhook endpoint; null when nothing changed', async () => {
    expect((await call(svc, 'GET', '/webhooks/endpoints')).body.endpoints).toEqual([]);
    const lead = (n: number, extra: Record<string, unknown> = {}) => ({
      id: `L${n}`,
      last_modified_at: '2026-02-01T00:00:00Z',
      data: { first_name: `Lead ${n}`, ...extra },
    });
    const created = await pushRun({ provider: 'close', customer_id: 'evo', object: 'crm_leads' }, [lead(1)]);
    const run = await call(svc, 'GET', `/runs/${created}`);
    expect(run.status).toBe(200);
    expect(run.body.evolution).toEqual({
      table: 'crm_leads',
      schema: 'landing',
      change: 'table_created',
      reasons: [expect.any(String)],
      not_restored: [],
      problems: 0,
      full_refresh_required: null,
    });
    // No endpoint listened: the outbox kept nothing, the run keeps the report.
    expect((await call(svc, 'GET', `/runs/${created}/webhooks`)).body.webhooks).toEqual([]);
    const again = await pushRun({ provider: 'close', customer_id: 'evo', object: 'crm_leads' }, [lead(2)]);
    expect((await call(svc, 'GET', `/runs/${again}`)).body.evolution).toBeNull();
    const list = await call(svc, 'GET', '/runs?customer_id=evo');
    expect(new Map(list.body.runs.map((r: { id: string; evolution: unknown }) => [r.id, r.evolution]))).toEqual(
      new Map([
        [created, run.body.evolution],
        [again, null],
      ]),
    );
  });

  it("answers a write-through's evolution report", async () => {
    const body = (object: string) => ({
      provider: 'close',
      customer_id: 'evo',
      object,
      records: [{ id: 'U1', last_modified_at: '2026-02-01T00:00:00Z', data: { name: 'U' } }],
    });
    const first = await call(svc, 'POST', `/destinations/${destId}/records`, { json: body('crm_users') });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.evolution).toMatchObject({ table: 'crm_users', schema: 'landing', change: 'table_created', problems: 0 });
    const second = await call(svc, 'POST', `/destinations/${destId}/records`, { json: body('crm_users') });
    expect(second.body.evolution).toBeNull();
  });
});

describe("a destination's tables, plan and grants (issue 19)", () => {
  it('lists the landed tables with exact row counts', async () => {
    const t = await call(svc, 'GET', `/destinations/${destId}/tables`);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    expect(t.body.schema).toBe('landing');
    const byName = new Map(t.body.tables.map((x: { table: string }) => [x.table, x]));
    const landed = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts`);
    expect(byName.get('crm_contacts')).toMatchObject({
      object: 'crm_contacts',
      kind: 'common',
      rows: landed.rows[0].n,
      rows_exact: true,
      needs_full_refresh: false,
    });
    expect(byName.get('salesforce_account')).toMatchObject({ rows: 3, kind: 'standard' });
  });

  it("shows the next run's plan without changing anything", async () => {
    await db.pool.query('ALTER TABLE landing.crm_contacts DROP COLUMN first_name');
    const p = await call(svc, 'GET', `/destinations/${destId}/plan`);
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    const contacts = p.body.plans.find((x: { table: string }) => x.table === 'crm_contacts');
    expect(contacts.action).not.toBe('none');
    expect(contacts.statements.join('\n')).toContain('first_name');
    const still = await db.pool.query(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = 'landing' AND table_name = 'crm_contacts' AND column_name = 'first_name'`,
    );
    expect(still.rowCount).toBe(0);
  });

  it('gives the least-privilege SQL with the names quoted and no password', async () => {
    const hostile = await call(svc, 'POST', '/destinations', {
      json: {
        name: 'hostile',
        config: {
          host: '127.0.0.1',
          port: 5,
          database: 'app"; DROP DATABASE x; --',
          user: 'o\'neil "pg"',
          password: 'never-shown-1234',
          schema: 'land ing',
          sslmode: 'disable',
        },
      },
    });
    expect(hostile.status, JSON.stringify(hostile.body)).toBe(201);
    const g = await call(svc, 'GET', `/destinations/${hostile.body.id}/grants`);
    expect(g.status).toBe(200);
    expect(g.body.pgland_creates_schema).toContain('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "app""; DROP DATABASE x; --" TO "o\'neil ""pg""";');
    expect(g.body.schema_precreated).toContain('GRANT ALL ON SCHEMA "land ing" TO "o\'neil ""pg""";');
    expect(g.body.verify).toContain(`has_database_privilege('o''neil "pg"', 'app"; DROP DATABASE x; --', 'CONNECT')`);
    expect(JSON.stringify(g.body)).not.toContain('never-shown-1234');
    // The statements run as written on a real server.
    const role = `console_${Date.now()}`;
    const own = await call(svc, 'POST', '/destinations', { json: { name: 'own', config: db.config({ user: role, schema: 'mine' }) } });
    const sql = (await call(svc, 'GET', `/destinations/${own.body.id}/grants`)).body.schema_precreated.replace(
      "'<a long random password>'",
      "'x-long-random-password'",
    );
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql);
      const held = await client.query((await call(svc, 'GET', `/destinations/${own.body.id}/grants`)).body.verify);
      expect(held.rows[0]).toEqual({ connect: true, create: false, temporary: true, schema_all: true });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe("a cron's next times (issue 19)", () => {
  it('lists the next times in the timezone, and names what is wrong with a bad cron', async () => {
    const r = await call(svc, 'GET', '/schedules/next-runs?cron=30%209%20*%20*%201-5&timezone=America/New_York&count=4');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.next_runs).toHaveLength(4);
    const times = r.body.next_runs.map((t: string) => new Date(t).getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    for (const t of r.body.next_runs) {
      const local = new Intl.DateTimeFormat('en-US', {
        timeZone: 'America/New_York',
        hour: '2-digit',
        minute: '2-digit',
        weekday: 'short',
        hour12: false,
      }).format(new Date(t));
      expect(local).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 09:30$/);
    }
    const bad = await call(svc, 'GET', '/schedules/next-runs?cron=every%20day');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'config_invalid', hint: expect.stringContaining('five fields') });
    expect((await call(svc, 'GET', '/schedules/next-runs?cron=*%20*%20*%20*%20*&count=51')).status).toBe(400);
    expect((await call(svc, 'GET', '/schedules/next-runs?cron=*%20*%20*%20*%20*&timezone=Mars/Olympus')).status).toBe(400);
  });
});

describe("the console's files (issue 19)", () => {
  it('serves the page and its bundle without a token, with a strict CSP, and nothing else', async () => {
    const page = await fetch(svc.url + '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    for (const file of ['app.js', 'app.css', 'favicon.svg']) expect((await fetch(`${svc.url}/console/${file}`)).status).toBe(200);
    for (const file of ['index.html', '..%2F..%2Fpackage.json', 'app.js.map', '%2Fetc%2Fpasswd']) {
      const r = await fetch(`${svc.url}/console/${file}`);
      expect(r.status, file).toBe(404);
    }
    // The API still needs the token.
    expect((await fetch(svc.url + '/destinations')).status).toBe(401);
    // Not part of the API's description.
    const doc = (await call(svc, 'GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths)).not.toContain('/');
  });

  it('is not served by a worker', async () => {
    const worker = await startTestService(db, { api: false, jobs: false });
    try {
      const r = await call(worker, 'GET', '/');
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    } finally {
      await worker.stop();
    }
  });
});

describe('a schedule read back whole (issue 19)', () => {
  it("gives match column, ignore deletes and the declaration, so that GET, change, PUT keeps them (the console's Pause)", async () => {
    const declared = { type: 'object', properties: { Id: { type: 'string' }, Employees: { type: 'integer' } } };
    const created = await call(svc, 'POST', '/schedules', {
      json: {
        destination_id: destId,
        provider: 'salesforce',
        customer_id: 'paused',
        object: 'Account',
        kind: 'standard',
        declared,
        match_column: 'id',
        ignore_deletes: true,
        mode: 'incremental',
        write: 'upsert',
        cron: '0 6 * * 1',
        source: { type: 'url', url: 'https://platform.example/export', headers: { authorization: 'Bearer kept-secret' } },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const read = (await call(svc, 'GET', `/schedules/${created.body.id}`)).body;
    expect(read).toMatchObject({ ignore_deletes: true, match_column: 'id', declared, source: { headers: { authorization: '[set]' } } });
    const keys = [
      'destination_id',
      'provider',
      'customer_id',
      'object',
      'kind',
      'mode',
      'write',
      'match_column',
      'ignore_deletes',
      'declared',
      'cron',
      'timezone',
      'timeout_seconds',
      'enabled',
      'source',
    ];
    const body = Object.fromEntries(keys.map((k) => [k, k === 'enabled' ? false : read[k]]));
    const paused = await call(svc, 'PUT', `/schedules/${created.body.id}`, { json: body });
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    expect(paused.body).toMatchObject({ enabled: false, ignore_deletes: true, declared, next_run_at: null });
    const { rows } = await db.pool.query(`SELECT options FROM pgland_control.schedules WHERE id = $1`, [created.body.id]);
    expect(rows[0].options).toMatchObject({ ignore_deletes: true, declared });
    await call(svc, 'DELETE', `/schedules/${created.body.id}`);
  });
});
