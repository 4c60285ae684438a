import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, LOOPBACK_NETWORKS, startTestService, TEST_SECRET_KEY, until } from './support/service.js';

// Issue 17: a schedule whose source is a PostgreSQL table (a data model: a
// connection, a table, a key, a cursor). A real `pgland serve --worker`
// moves 100,000 rows, then only the 1,000 that changed; the bookmark moves
// only after a run commits.

let db: TestDatabase;
let src: TestDatabase;
let api: Service;
let destId: string;
let worker: { child: ChildProcess; done: Promise<unknown> } | undefined;
let stderr = '';

const SECRET = 's3cr3t-import-pw';

beforeAll(async () => {
  db = await freshDatabase('pg_import');
  src = await freshDatabase('pg_import_src');
  await src.pool.query(`
    CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, score numeric(8, 2), updated_at timestamptz NOT NULL, active boolean NOT NULL);
    INSERT INTO contacts
    SELECT g, 'c' || g || '@example.com', g / 100.0, '2026-01-01'::timestamptz + (g % 5000) * interval '1 second', g % 3 <> 0
      FROM generate_series(1, 100000) g;
    CREATE INDEX ON contacts (updated_at, id);`);
  api = await startTestService(db, {
    jobs: false,
    allowNetworks: LOOPBACK_NETWORKS,
    scheduler: { pollingIntervalSeconds: 0.5, maintenanceIntervalSeconds: 1, retryDelaySeconds: 1, retryLimit: 0 },
  });
  const d = await call(api, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  destId = d.body.id;
  const w = spawnCli(['serve', '--worker', '--port', '0'], {
    env: {
      PGLAND_CONTROL_URL: db.url,
      PGLAND_SECRET_KEY: TEST_SECRET_KEY,
      PGLAND_ALLOW_NETWORKS: LOOPBACK_NETWORKS.join(','),
      PGLAND_JOBS_POLL_INTERVAL_S: '0.5',
      PGLAND_JOBS_RETRY_LIMIT: '0',
      PGLAND_LOG_LEVEL: 'warn',
    },
  });
  w.child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  worker = w;
  await until('the worker to start', () => stderr.includes('taking jobs') || (w.child.exitCode !== null && Promise.reject(new Error(stderr))), 60_000);
});
afterAll(async () => {
  if (worker && worker.child.exitCode === null) worker.child.kill('SIGTERM');
  await worker?.done;
  await api?.stop();
  await src?.drop();
  await db?.drop();
});

const sourceOf = (extra: Record<string, unknown> = {}) => ({
  type: 'postgres',
  // The server's own password when it has one (embedded); any other (a trust server) is only there to be hidden.
  connection: { ...src.config(), password: decodeURIComponent(new URL(src.url).password) || SECRET },
  table: 'public.contacts',
  key: 'id',
  cursor: 'updated_at',
  filters: [{ column: 'email', op: 'like', value: '%@example.com' }],
  ...extra,
});

async function runOnce(scheduleId: string, before: number): Promise<{ status: string; counts: Record<string, number>; error: string | null }> {
  const r = await call(api, 'POST', `/schedules/${scheduleId}/run`);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return until(
    'the run to finish',
    async () => {
      const { rows } = await db.pool.query(
        `SELECT status, counts, error FROM pgland_control.runs WHERE schedule_id = $1 AND status <> 'running' ORDER BY created_at`,
        [scheduleId],
      );
      return rows.length > before ? rows[before] : undefined;
    },
    180_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; the worker said: ${stderr.slice(-2000)}`);
  });
}

describe('scheduled PostgreSQL imports (issue 17)', { timeout: 300_000 }, () => {
  it('moves 100,000 rows, then only the 1,000 changed ones; the connection secret is sealed and never shown', async () => {
    const r = await call(api, 'POST', '/schedules', {
      json: { destination_id: destId, provider: 'crm', customer_id: 'acme', object: 'contacts', kind: 'custom', cron: '0 0 1 1 *', source: sourceOf() },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.id as string;
    expect(r.body.source).toMatchObject({ type: 'postgres', table: 'public.contacts', key: 'id', cursor: 'updated_at', connection: { password: '[set]' } });
    const shown = JSON.stringify((await call(api, 'GET', `/schedules/${id}`)).body);
    const password = sourceOf().connection.password;
    expect(shown).not.toContain(password);
    const stored = (await db.pool.query('SELECT source FROM pgland_control.schedules WHERE id = $1', [id])).rows[0].source as string;
    expect(stored).not.toContain(password);
    expect(stored).toMatch(/^v1\./);

    const first = await runOnce(id, 0);
    expect(first.error ?? '').toBe('');
    expect(first).toMatchObject({ status: 'succeeded', counts: { rows_read: 100_000 } });
    const landed = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n, sum((_pgland_raw_data->>'score')::numeric) AS s FROM landing.custom_contacts`)).rows[0];
    expect(await landed()).toEqual({ n: 100_000, s: (await src.pool.query('SELECT sum(score) AS s FROM contacts')).rows[0].s });
    const state1 = (await db.pool.query('SELECT state FROM pgland_control.import_states WHERE schedule_id = $1', [id])).rows[0].state;
    expect(state1.bookmarks.import).toMatchObject({ replication_key: 'updated_at', key_property: 'id' });

    // 1,000 rows change: the next run reads those and nothing else.
    await src.pool.query(`UPDATE contacts SET score = score + 1000, updated_at = now() WHERE id % 100 = 7`);
    const second = await runOnce(id, 1);
    expect(second).toMatchObject({ status: 'succeeded', counts: { rows_read: 1000 } });
    expect((await landed()).s).toBe((await src.pool.query('SELECT sum(score) AS s FROM contacts')).rows[0].s);

    // Nothing changed: nothing read.
    const third = await runOnce(id, 2);
    expect(third).toMatchObject({ status: 'succeeded', counts: { rows_read: 0 } });
    expect(JSON.stringify(await db.pool.query('SELECT * FROM pgland_control.runs'))).not.toContain(password);
  });

  it('a run that fails leaves the bookmark where it was', async () => {
    const r = await call(api, 'POST', '/schedules', {
      json: {
        destination_id: destId,
        provider: 'crm',
        customer_id: 'acme',
        object: 'broken',
        kind: 'custom',
        cron: '0 0 1 1 *',
        source: sourceOf({ table: 'public.contacts', cursor: 'updated_at' }),
      },
    });
    const id = r.body.id as string;
    // The source's role loses the table half-way through the schedule's life: the run fails.
    await src.pool.query('ALTER TABLE contacts RENAME TO contacts_moved');
    try {
      const failed = await runOnce(id, 0);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/contacts/);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM pgland_control.import_states WHERE schedule_id = $1', [id])).rows[0].n).toBe(0);
    } finally {
      await src.pool.query('ALTER TABLE contacts_moved RENAME TO contacts');
    }
    const ok = await runOnce(id, 1);
    expect(ok).toMatchObject({ status: 'succeeded', counts: { rows_read: 100_000 } });
  });

  it('refuses a connection to a network the operator did not allow, a path of the server, and a bad data model', async () => {
    const base = { destination_id: destId, provider: 'crm', customer_id: 'acme', object: 'refused', kind: 'custom', cron: '0 0 1 1 *' };
    for (const [source, message] of [
      [sourceOf({ connection: { host: '10.1.2.3', database: 'x', user: 'u', password: SECRET } }), /10\.1\.2\.3 is not a public address/],
      [sourceOf({ connection: { ...src.config(), sslmode: 'require', sslrootcert: '/etc/passwd' } }), /a path on the pgland server is not accepted/],
      [sourceOf({ table: undefined }), /give either table or query/],
      [sourceOf({ query: 'SELECT 1' }), /give either table or query/],
      [sourceOf({ filters: [{ column: 'email', op: 'drop table', value: 'x' }] }), /op|operator/],
    ] as const) {
      const res = await call(api, 'POST', '/schedules', { json: { ...base, source } });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.message).toMatch(message);
      expect(JSON.stringify(res.body)).not.toContain(SECRET);
    }
  });
});
