import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, startTestService, TEST_SECRET_KEY, until } from './support/service.js';

let db: TestDatabase;
let api: Service;
let destId: string;
let dir: string;
const workers: { child: ChildProcess; done: Promise<unknown>; stderr: () => string }[] = [];

/** A source command: prints `count` records of `object`, one every `delay` ms, and logs when it starts and ends. */
const SOURCE = `
const [object, count, delay, log, fail] = process.argv.slice(1);
const fs = require('fs');
const note = (ev) => fs.appendFileSync(log, JSON.stringify({ ev, object, ppid: process.ppid, t: Date.now() }) + '\\n');
note('start');
let i = 0;
(function next() {
  if (fail === 'fail') { process.stderr.write('the tap broke'); process.exit(3); }
  if (i >= Number(count)) { note('end'); return; }
  const n = i++;
  process.stdout.write(JSON.stringify({ id: object + '-' + n, last_modified_at: '2026-03-01T00:00:00Z', raw_data: { n, object } }) + '\\n');
  setTimeout(next, Number(delay));
})();
`;

const JOB_SETTINGS = { pollingIntervalSeconds: 0.5, maintenanceIntervalSeconds: 1, retryDelaySeconds: 1, retryLimit: 1, allowCommands: true };

function startWorker(extraEnv: Record<string, string> = {}): Promise<void> {
  const w = spawnCli(['serve', '--worker', '--port', '0'], {
    env: {
      ...extraEnv,
      PGLAND_CONTROL_URL: db.url,
      PGLAND_SECRET_KEY: TEST_SECRET_KEY,
      PGLAND_ALLOW_COMMAND_SOURCES: '1',
      PGLAND_JOBS_POLL_INTERVAL_S: '0.5',
      PGLAND_JOBS_MAINTENANCE_INTERVAL_S: '1',
      PGLAND_JOBS_RETRY_DELAY_S: '1',
      PGLAND_JOBS_RETRY_LIMIT: '1',
      PGLAND_LOG_LEVEL: 'warn',
    },
  });
  let stderr = '';
  w.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  workers.push({ ...w, stderr: () => stderr });
  return until('the worker to start', () => stderr.includes('taking jobs') || (w.child.exitCode !== null && fail(stderr)), 60_000).then(() => undefined);
}

function fail(text: string): never {
  throw new Error(`the worker exited: ${text}`);
}

interface Note {
  ev: 'start' | 'end';
  object: string;
  ppid: number;
  t: number;
}

function notes(): Note[] {
  return readFileSync(join(dir, 'sources.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Note);
}

async function schedule(object: string, count: number, delay: number, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(api, 'POST', '/schedules', {
    json: {
      destination_id: destId,
      provider: 'tap',
      customer_id: 'acme',
      object,
      kind: 'custom',
      cron: '0 0 1 1 *', // once a year: only the jobs this test asks for run
      source: { type: 'command', command: [process.execPath, '-e', SOURCE, object, String(count), String(delay), join(dir, 'sources.log'), extra.fail ?? ''] },
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'fail')),
    },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

async function finishedRuns(object?: string): Promise<{ object: string; status: string }[]> {
  const { rows } = await db.pool.query(
    `SELECT object, status FROM pgland_control.runs WHERE origin = 'schedule' AND status <> 'running' AND ($1::text IS NULL OR object = $1)`,
    [object ?? null],
  );
  return rows;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgland-jobs-'));
  writeFileSync(join(dir, 'sources.log'), '');
  db = await freshDatabase('service_jobs');
  // The API alone: only the two worker processes take jobs.
  api = await startTestService(db, { jobs: false, scheduler: JOB_SETTINGS });
  const d = await call(api, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing', batch_size: 50 }) } });
  destId = d.body.id;
});
afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.done));
  await api?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('schedules on pg-boss (issue 7)', () => {
  it('fires each due cron slot once, coalescing missed ones', async () => {
    const id = await schedule('ticked', 1, 0);
    await db.pool.query(`UPDATE pgland_control.schedules SET cron = '*/5 * * * *', last_fired_at = '2026-01-01T00:00:00Z' WHERE id = $1`, [id]);
    const scheduler = api.context.scheduler;
    // The schedules of the other tests fire once a year: only this one is due.
    expect(await scheduler.dispatchDue(new Date('2026-01-01T00:17:00Z'))).toBe(1);
    expect(await scheduler.dispatchDue(new Date('2026-01-01T00:19:59Z'))).toBe(0);
    const jobs = async (): Promise<{ data: { slot: string }; singleton_key: string }[]> =>
      (await db.pool.query(`SELECT data, singleton_key FROM pgland_jobs.job WHERE name = 'pgland-sync' ORDER BY created_on`)).rows;
    expect((await jobs()).map((j) => j.data.slot)).toEqual(['2026-01-01T00:15:00.000Z']);
    expect((await jobs())[0]!.singleton_key).toBe(JSON.stringify([destId, 'tap', 'acme', 'ticked']));
    // The 00:20 slot comes while the 00:15 run is still queued: skipped, not queued behind it.
    expect(await scheduler.dispatchDue(new Date('2026-01-01T00:20:00Z'))).toBe(0);
    const { rows } = await db.pool.query(`SELECT last_fired_at FROM pgland_control.schedules WHERE id = $1`, [id]);
    expect(rows[0].last_fired_at.toISOString()).toBe('2026-01-01T00:20:00.000Z');
    await db.pool.query(`DELETE FROM pgland_jobs.job WHERE name = 'pgland-sync'`);
    expect(await scheduler.dispatchDue(new Date('2026-01-01T00:26:00Z'))).toBe(1);
    expect((await jobs()).map((j) => j.data.slot)).toEqual(['2026-01-01T00:25:00.000Z']);
    await db.pool.query(`DELETE FROM pgland_jobs.job WHERE name = 'pgland-sync'`);
    await call(api, 'DELETE', `/schedules/${id}`);
  });

  it('refuses bad schedules', async () => {
    const base = {
      destination_id: destId,
      provider: 'tap',
      customer_id: 'acme',
      object: 'x',
      kind: 'custom',
      cron: '* * * * *',
      source: { type: 'url', url: 'https://example.invalid/x.ndjson' },
    };
    for (const [json, status, message] of [
      [{ ...base, cron: 'every minute' }, 400, /cron "every minute"/],
      [{ ...base, timezone: 'Mars/Olympus' }, 400, /timezone Mars\/Olympus/],
      [{ ...base, source: { type: 'url', url: 'file:///etc/passwd' } }, 400, /must be http/],
      [{ ...base, source: { type: 'shell', command: 'rm -rf /' } }, 400, /source/],
      [{ ...base, destination_id: '00000000-0000-4000-8000-000000000000' }, 404, /no destination/],
      [{ ...base, mode: 'full', write: 'delete' }, 400, /full refresh cannot use write mode delete/],
      [{ ...base, kind: 'common' }, 400, /not a common object/],
    ] as const) {
      const r = await call(api, 'POST', '/schedules', { json });
      expect(r.status, JSON.stringify(json) + JSON.stringify(r.body)).toBe(status);
      expect(r.body.error.message).toMatch(message);
    }
    const ok = await call(api, 'POST', '/schedules', { json: { ...base, source: { ...base.source, headers: { authorization: 'Bearer s3cr3t-header' } } } });
    expect(ok.status).toBe(201);
    expect(ok.body.source.headers).toEqual({ authorization: '[set]' });
    expect(JSON.stringify((await call(api, 'GET', `/schedules/${ok.body.id}`)).body)).not.toContain('s3cr3t-header');
    expect(ok.body.next_run_at).toBeTruthy();
    expect((await call(api, 'POST', '/schedules', { json: base })).status).toBe(409);
    // A PUT of what GET gave keeps the header's stored value.
    const { id: _id, next_run_at: _n, created_at: _c, updated_at: _u, ...again } = ok.body;
    const put = await call(api, 'PUT', `/schedules/${ok.body.id}`, { json: { ...again, cron: '*/10 * * * *' } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const stored = await api.context.scheduler.schedules.get(ok.body.id);
    expect(api.context.scheduler.schedules.source(stored)).toMatchObject({ headers: { authorization: 'Bearer s3cr3t-header' } });
    const unknownMark = await call(api, 'PUT', `/schedules/${ok.body.id}`, {
      json: { ...again, source: { ...again.source, headers: { 'x-other': '[set]' } } },
    });
    expect(unknownMark.status).toBe(400);
    expect((await call(api, 'DELETE', `/schedules/${ok.body.id}`)).status).toBe(204);
  });

  it('runs 20 jobs across 4 objects on two workers, never two of one object at once', async () => {
    const objects = ['alpha', 'beta', 'gamma', 'delta'];
    const ids = [];
    for (const o of objects) ids.push(await schedule(o, 60, 5));
    await Promise.all([startWorker(), startWorker()]);
    // Each object's five jobs queued one after the other: the next one is
    // due while the first runs, so only the queue can keep them apart.
    for (const id of ids) {
      for (let round = 0; round < 5; round++) {
        const r = await call(api, 'POST', `/schedules/${id}/run`);
        expect(r.status).toBe(202);
        expect(r.body.queued).toBe(true);
      }
    }
    await until('20 scheduled runs', async () => (await finishedRuns()).length >= 20, 110_000);
    const runs = await finishedRuns();
    expect(runs).toHaveLength(20);
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    // Each object's first run created its table: that run alone keeps an evolution report.
    const listed = (await call(api, 'GET', '/runs?limit=1000')).body.runs.filter((r: { origin: string }) => r.origin === 'schedule');
    for (const o of objects) {
      const reports = listed.filter((r: { object: string }) => r.object === o).map((r: { evolution: unknown }) => r.evolution);
      expect(reports).toHaveLength(5);
      expect(reports.filter((e: unknown) => e !== null)).toEqual([
        expect.objectContaining({ table: 'custom_' + o, schema: 'landing', change: 'table_created' }),
      ]);
    }

    const log = notes();
    for (const o of objects) {
      const mine = log.filter((n) => n.object === o);
      expect(mine.filter((n) => n.ev === 'start')).toHaveLength(5);
      // Start, end, start, end…: a run of an object never began while another was going.
      expect(mine.map((n) => n.ev).join(',')).toBe(Array(5).fill('start,end').join(','));
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT raw_data_n)::int AS d FROM (
        SELECT (_pgland_raw_data->>'n')::int AS raw_data_n FROM landing.${'custom_' + o}) t`);
      expect(rows[0]).toEqual({ n: 60, d: 60 });
    }
    // Both workers took jobs.
    expect(new Set(log.map((n) => n.ppid)).size).toBe(2);
  });

  it('retries on the other worker a job whose worker was killed mid-run, and the table is exact', async () => {
    const id = await schedule('killed', 150, 25, { timeout_seconds: 10 });
    const before = notes().length;
    await call(api, 'POST', `/schedules/${id}/run`);
    // Wait until the run has committed some batches.
    const started = await until('the run to start', () =>
      notes()
        .slice(before)
        .find((n) => n.ev === 'start'),
    );
    await until('some committed batches', async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM landing._pgland_run_batches b JOIN landing._pgland_runs r USING (run_id) WHERE r.object = 'killed'`,
      );
      return rows[0].n >= 2;
    });
    const victim = workers.find((w) => w.child.pid === started.ppid);
    expect(victim, 'the worker that runs the job').toBeDefined();
    victim!.child.kill('SIGKILL');
    await victim!.done;

    // pg-boss fails the job when its expiration (the schedule's timeout) passes, then retries it.
    const runs = await until(
      'the retried run',
      async () => {
        const r = await finishedRuns('killed');
        return r.some((x) => x.status === 'succeeded') && r;
      },
      90_000,
    );
    expect(runs.filter((r) => r.status === 'succeeded')).toHaveLength(1);
    const starts = notes()
      .slice(before)
      .filter((n) => n.ev === 'start');
    expect(starts).toHaveLength(2);
    expect(starts[1]!.ppid).not.toBe(starts[0]!.ppid);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT _pgland_raw_data->>'n')::int AS d,
      bool_and(_pgland_raw_data->>'object' = 'killed') AS ok FROM landing.custom_killed`);
    expect(rows[0]).toEqual({ n: 150, d: 150, ok: true });
    const { rows: dest } = await db.pool.query(`SELECT status FROM landing._pgland_runs WHERE object = 'killed' ORDER BY started_at`);
    expect(dest.map((r) => r.status)).toEqual(['abandoned', 'succeeded']);
  });

  it('moves a run that keeps failing to the dead-letter queue', async () => {
    const id = await schedule('broken', 1, 0, { fail: 'fail' });
    await call(api, 'POST', `/schedules/${id}/run`);
    const deadLetter = () =>
      until(
        'a dead letter',
        async () => {
          const r = await call(api, 'GET', '/jobs/dead-letters');
          return r.body.jobs.find((j: { schedule_id: string }) => j.schedule_id === id);
        },
        60_000,
      );
    const dead = await deadLetter();
    expect(dead).toMatchObject({ reason: 'manual', schedule_id: id, object: 'broken', customer_id: 'acme', attempts: 2 });
    expect(dead.last_error).toMatch(/exited with 3: the tap broke/);
    expect(dead.last_error).not.toMatch(/\n\s+at /); // no stack
    // The last attempt is logged as dead-lettered, the first as retried.
    const logs = workers.map((w) => w.stderr()).join('');
    expect(logs).toMatch(/sync job failed: it will be retried/);
    expect(logs).toMatch(/sync job failed for good: dead-lettered/);
    const runs = await finishedRuns('broken');
    expect(runs.map((r) => r.status)).toEqual(['failed', 'failed']);
    const { rows } = await db.pool.query(`SELECT error FROM pgland_control.runs WHERE object = 'broken' LIMIT 1`);
    expect(rows[0].error).toMatch(/exited with 3: the tap broke/);

    // Retried: the letter goes, the run is queued again (and, still broken, fails its attempts again).
    const retried = await call(api, 'POST', `/jobs/dead-letters/${dead.id}/retry`);
    expect(retried.status, JSON.stringify(retried.body)).toBe(202);
    expect((await call(api, 'POST', `/jobs/dead-letters/${dead.id}/retry`)).status).toBe(404);
    const again = await deadLetter();
    expect(again.id).not.toBe(dead.id);
    expect((await finishedRuns('broken')).map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    // Dropped: gone for good.
    expect((await call(api, 'DELETE', `/jobs/dead-letters/${again.id}`)).status).toBe(204);
    expect((await call(api, 'DELETE', `/jobs/dead-letters/${again.id}`)).status).toBe(404);
    const left = await call(api, 'GET', '/jobs/dead-letters');
    expect(left.body.jobs.filter((j: { schedule_id: string }) => j.schedule_id === id)).toHaveLength(0);
  });

  it('stops gracefully on SIGTERM: the running batch rolls back, the job is retried after a restart', async () => {
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    for (const w of alive) {
      w.child.kill('SIGKILL');
      await w.done;
    }
    await startWorker({ PGLAND_SHUTDOWN_TIMEOUT_MS: '2000' });
    const worker = workers[workers.length - 1]!;
    const id = await schedule('stopped', 120, 25, { timeout_seconds: 60 });
    const before = notes().length;
    await call(api, 'POST', `/schedules/${id}/run`);
    await until('the run to start', () =>
      notes()
        .slice(before)
        .find((n) => n.ev === 'start'),
    );
    await until('a committed batch', async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM landing._pgland_run_batches b JOIN landing._pgland_runs r USING (run_id) WHERE r.object = 'stopped'`,
      );
      return rows[0].n >= 1;
    });
    worker.child.kill('SIGTERM');
    const result = (await worker.done) as { code: number | null };
    expect(result.code, worker.stderr()).toBe(0);
    const { rows: dest } = await db.pool.query(`SELECT status, rows_read::int AS n FROM landing._pgland_runs WHERE object = 'stopped'`);
    expect(dest).toHaveLength(1);
    expect(dest[0].status).toBe('cancelled');
    // Whole batches only (batch_size 50): the one in flight rolled back.
    const landed = await db.pool.query(`SELECT count(*)::int AS n FROM landing.custom_stopped`);
    expect(landed.rows[0].n % 50).toBe(0);
    expect((await finishedRuns('stopped')).map((r) => r.status)).toEqual(['cancelled']);

    await startWorker();
    await until('the retried run', async () => (await finishedRuns('stopped')).some((r) => r.status === 'succeeded'), 60_000);
    const after = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT _pgland_raw_data->>'n')::int AS d FROM landing.custom_stopped`);
    expect(after.rows[0]).toEqual({ n: 120, d: 120 });
  });
});
