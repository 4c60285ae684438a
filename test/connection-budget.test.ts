import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, startTestService, TEST_SECRET_KEY, until } from './support/service.js';

/**
 * The per-destination connection budget (max_connections, issue 20): two
 * worker processes, two jobs at a time each, against a destination whose
 * role may open three connections, with a budget of two (one left for a
 * run's lease heartbeat, which the budget does not count). Every run must
 * succeed, none failing on "too many connections for role".
 */

let db: TestDatabase;
let api: Service;
const role = `pgland_budget_${randomBytes(4).toString('hex')}`;
const workers: { child: ChildProcess; done: Promise<unknown> }[] = [];

/** A source that prints `count` records of `object`, one every `delay` ms: long enough for runs to overlap. */
const SOURCE = `
const [object, count, delay] = process.argv.slice(1);
let i = 0;
(function next() {
  if (i >= Number(count)) return;
  const n = i++;
  process.stdout.write(JSON.stringify({ id: object + '-' + n, last_modified_at: '2026-03-01T00:00:00Z', raw_data: { n } }) + '\\n');
  setTimeout(next, Number(delay));
})();
`;

function startWorker(): Promise<void> {
  const w = spawnCli(['serve', '--worker', '--port', '0'], {
    env: {
      PGLAND_CONTROL_URL: db.url,
      PGLAND_SECRET_KEY: TEST_SECRET_KEY,
      PGLAND_ALLOW_COMMAND_SOURCES: '1',
      PGLAND_WORKER_CONCURRENCY: '2',
      PGLAND_JOBS_POLL_INTERVAL_S: '0.5',
      PGLAND_JOBS_MAINTENANCE_INTERVAL_S: '1',
      PGLAND_JOBS_RETRY_DELAY_S: '1',
      PGLAND_JOBS_RETRY_LIMIT: '0',
      PGLAND_LOG_LEVEL: 'warn',
    },
  });
  let stderr = '';
  w.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  workers.push(w);
  return until(
    'the worker to start',
    () => {
      if (w.child.exitCode !== null) throw new Error(`the worker exited: ${stderr}`);
      return stderr.includes('taking jobs');
    },
    60_000,
  ).then(() => undefined);
}

beforeAll(async () => {
  db = await freshDatabase('connection_budget');
  const database = new URL(db.url).pathname.slice(1);
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'budget-pw' CONNECTION LIMIT 3`);
  await db.pool.query(`GRANT CONNECT, CREATE ON DATABASE "${database}" TO ${role}`);
  api = await startTestService(db, {
    jobs: false,
    scheduler: { pollingIntervalSeconds: 0.5, maintenanceIntervalSeconds: 1, retryDelaySeconds: 1, retryLimit: 0, allowCommands: true },
  });
});

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.done));
  await api?.stop();
  await db?.drop();
  if (db) {
    const admin = await freshDatabase('connection_budget_cleanup');
    await admin.pool.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await admin.drop();
  }
});

describe('per-destination connection budget', () => {
  it('keeps two workers within a role limit: runs wait for a connection, none fails', async () => {
    const url = new URL(db.url);
    url.username = role;
    url.password = '';
    const d = await call(api, 'POST', '/destinations', {
      json: {
        name: 'limited',
        config: { url: url.toString(), password: 'budget-pw', sslmode: 'disable', schema: 'landing', batch_size: 20, max_connections: 2 },
      },
    });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const objects = ['alpha', 'beta', 'gamma', 'delta'];
    const ids: string[] = [];
    for (const object of objects) {
      const r = await call(api, 'POST', '/schedules', {
        json: {
          destination_id: d.body.id,
          provider: 'tap',
          customer_id: 'acme',
          object,
          kind: 'custom',
          cron: '0 0 1 1 *',
          source: { type: 'command', command: [process.execPath, '-e', SOURCE, object, '40', '5'] },
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      ids.push(r.body.id as string);
    }
    await Promise.all([startWorker(), startWorker()]);
    for (const id of ids) expect((await call(api, 'POST', `/schedules/${id}/run`)).status).toBe(202);

    // The role's connections, sampled while the runs go on: never more than the budget.
    let most = 0;
    const finished = async (): Promise<{ object: string; status: string; error: string | null }[]> =>
      (await db.pool.query(`SELECT object, status, error FROM pgland_control.runs WHERE origin = 'schedule' AND status <> 'running'`)).rows;
    await until(
      '4 scheduled runs',
      async () => {
        const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role]);
        most = Math.max(most, rows[0]!.n);
        return (await finished()).length >= 4;
      },
      120_000,
    );
    const runs = await finished();
    expect(
      runs.filter((r) => r.status !== 'succeeded'),
      JSON.stringify(runs),
    ).toEqual([]);
    expect(most).toBeLessThanOrEqual(3);
    for (const object of objects) {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.custom_${object}`);
      expect(rows[0]).toEqual({ n: 40 });
    }
  });

  it('refuses a max_connections that is not a positive whole number', async () => {
    const r = await call(api, 'POST', '/destinations', { json: { name: 'bad', config: { url: db.url, sslmode: 'disable', max_connections: 0 } } });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/max_connections/);
  });
});
