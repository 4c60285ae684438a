import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/service/outbound/redact-url.js';
import type { Service } from '../src/service/service.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, localServer, logLines, LOOPBACK_NETWORKS, startTestService, TEST_SECRET_KEY, TEST_TOKEN, until } from './support/service.js';

/**
 * docs/security.md, "Schedule sources: commands and URLs": what a schedule's
 * source can see of the service, and how its credentials are kept out of
 * every output. Runs go through real `pgland serve --worker` processes.
 */

let db: TestDatabase;
let api: Service;
let destId: string;
let dir: string;
let hooks: Awaited<ReturnType<typeof localServer>>;
const servers: Awaited<ReturnType<typeof localServer>>[] = [];
const workers: { child: ChildProcess; done: Promise<unknown>; stderr: () => string }[] = [];

/** Secrets each test hides somewhere; the last test looks for every one of them in every output. */
const QUERY_SECRET = 'qs_' + randomBytes(12).toString('hex');
const URL_PASSWORD = 'pw_' + randomBytes(12).toString('hex');
const HEADER_SECRET = 'hk_' + randomBytes(12).toString('hex');
const SERVICE_ONLY = 'svc_' + randomBytes(12).toString('hex');
const SECRETS = () => [QUERY_SECRET, URL_PASSWORD, HEADER_SECRET, SERVICE_ONLY, TEST_SECRET_KEY, TEST_TOKEN, db.url];

function startWorker(env: Record<string, string>): Promise<(typeof workers)[number]> {
  const w = spawnCli(['serve', '--worker', '--port', '0'], {
    env: {
      PGLAND_CONTROL_URL: db.url,
      PGLAND_SECRET_KEY: TEST_SECRET_KEY,
      PGLAND_API_TOKEN: TEST_TOKEN,
      SOME_SERVICE_SETTING: SERVICE_ONLY,
      PGLAND_JOBS_POLL_INTERVAL_S: '0.5',
      PGLAND_JOBS_RETRY_LIMIT: '0',
      PGLAND_LOG_LEVEL: 'debug',
      ...env,
    },
  });
  let stderr = '';
  w.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const worker = { ...w, stderr: () => stderr };
  workers.push(worker);
  return until('the worker to start', () => stderr.includes('taking jobs') || (w.child.exitCode !== null && Promise.reject(new Error(stderr))), 60_000).then(
    () => worker,
  );
}

async function schedule(object: string, source: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(api, 'POST', '/schedules', {
    json: { destination_id: destId, provider: 'tap', customer_id: 'acme', object, kind: 'custom', cron: '0 0 1 1 *', source, ...extra },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

/** Runs a schedule now and waits for the run it starts to finish; `meanwhile` runs once the job is queued. */
async function runNow(
  scheduleId: string,
  meanwhile = async (): Promise<void> => undefined,
): Promise<{ status: string; error: string | null; counts: Record<string, number> | null }> {
  const before = (await db.pool.query(`SELECT count(*)::int AS n FROM pgland_control.runs WHERE schedule_id = $1`, [scheduleId])).rows[0].n as number;
  expect((await call(api, 'POST', `/schedules/${scheduleId}/run`)).status).toBe(202);
  await meanwhile();
  return until('the run to finish', async () => {
    const { rows } = await db.pool.query(
      `SELECT status, error, counts FROM pgland_control.runs WHERE schedule_id = $1 AND status <> 'running' ORDER BY created_at`,
      [scheduleId],
    );
    return rows.length > before ? (rows[rows.length - 1] as Awaited<ReturnType<typeof runNow>>) : undefined;
  });
}

/** Whether a process exists (a zombie not yet reaped by its parent still does). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const record = (id: string, raw: unknown): string => JSON.stringify({ id, last_modified_at: '2026-03-01T00:00:00Z', raw_data: raw }) + '\n';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgland-sec-sources-'));
  db = await freshDatabase('security_sources');
  // The API allows command sources and loopback (the tests' sources listen there); workers run the jobs.
  api = await startTestService(db, { jobs: false, allowNetworks: LOOPBACK_NETWORKS, scheduler: { allowCommands: true, retryLimit: 0 } });
  destId = (await call(api, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } })).body.id;
  hooks = await localServer((_req, res) => res.end('ok'));
  expect(
    (await call(api, 'POST', '/webhooks/endpoints', { json: { url: `${hooks.url}/hook`, secret: 'whsec_' + randomBytes(32).toString('base64') } })).status,
  ).toBe(201);
  await startWorker({ PGLAND_ALLOW_COMMAND_SOURCES: '1', PGLAND_ALLOW_NETWORKS: '127.0.0.0/8' });
}, 120_000);

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.done));
  await Promise.all([hooks, ...servers].map((s) => s?.close()));
  await api?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('command sources', () => {
  it('get PATH, HOME, LANG and their own variables, nothing else of the service', async () => {
    const print = `process.stdout.write(${JSON.stringify(record('env', '__ENV__'))}.replace('"__ENV__"', JSON.stringify(process.env)))`;
    const id = await schedule('env_dump', { type: 'command', command: [process.execPath, '-e', print], env: { TAP_SETTING: 'given' } });
    expect(await runNow(id)).toMatchObject({ status: 'succeeded' });
    const { rows } = await db.pool.query(`SELECT _pgland_raw_data AS env FROM landing.custom_env_dump`);
    const env = rows[0].env as Record<string, string>;
    expect(env.TAP_SETTING).toBe('given');
    expect(Object.keys(env).filter((k) => !['PATH', 'HOME', 'LANG', 'TAP_SETTING'].includes(k))).toEqual([]);
    for (const s of SECRETS()) expect(JSON.stringify(env)).not.toContain(s);
  });

  it("land what a command printed before the loader read it (it waited for the object's lease)", async () => {
    // Node discards what an exited child left unread on its stdout: a run
    // whose loader started reading late "succeeded" with nothing, and a full
    // refresh then deleted the tenant's rows.
    const pidFile = join(dir, 'quick.pid');
    const quick = `process.stdout.write(${JSON.stringify(record('q1', { n: 1 }))}, () => require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)))`;
    const id = await schedule('quick', { type: 'command', command: [process.execPath, '-e', quick] }, { mode: 'full' });
    expect(await runNow(id)).toMatchObject({ status: 'succeeded' });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM landing.custom_quick WHERE NOT _pgland_is_deleted`)).rows[0].n).toBe(1);
    rmSync(pidFile);

    // Another run holds the object's lease (a row, src/load/lease.ts) until the command is done.
    const { rows: held } = await db.pool.query(
      `INSERT INTO landing._pgland_leases (provider, customer_id, object, token, expires_at)
       VALUES ('tap', 'acme', 'quick', gen_random_uuid(), now() + interval '10 minutes') RETURNING token`,
    );
    const run = await runNow(id, async () => {
      // The command prints its record and exits, and the worker reaps it (no such process) while its run waits for the lease.
      const pid = Number(await until('the command to print', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8')));
      await until('the command to be gone', () => !isAlive(pid));
      await db.pool.query(`DELETE FROM landing._pgland_leases WHERE token = $1`, [held[0].token]);
    });
    expect(run).toMatchObject({ status: 'succeeded', counts: { rows_read: 1, deleted: 0 } });
    const { rows } = await db.pool.query(`SELECT id, _pgland_is_deleted AS deleted FROM landing.custom_quick`);
    expect(rows).toEqual([{ id: 'q1', deleted: false }]);
  });

  it("keep a bounded excerpt of a failing command's stderr in the run", async () => {
    const shout = `process.stderr.write(JSON.stringify(process.env) + 'x'.repeat(100000) + '\\nlast words'); process.exit(4)`;
    const id = await schedule('shouting', { type: 'command', command: [process.execPath, '-e', shout] });
    const run = await runNow(id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/exited with 4: .*last words$/);
    expect(run.error!.length).toBeLessThan(700);
  });
});

describe('URL sources', () => {
  it('are shown through one redaction of credentials', () => {
    expect(
      redactUrl('https://u:p@h.example/x/{watermark}?access_token=a&Signature=b&X-Amz-Signature=c&client_secret=d&apikey=e&page=2&sort=asc#id_token=z'),
    ).toBe(
      'https://[set]:[set]@h.example/x/{watermark}?access_token=[set]&Signature=[set]&X-Amz-Signature=[set]&client_secret=[set]&apikey=[set]&page=2&sort=asc#id_token=[set]',
    );
    expect(redactUrl('not a url ?token=x')).toBe('(not a valid URL)');
  });

  it('refuse credentials in the URL when the schedule is saved', async () => {
    const source = { type: 'url', url: `http://scott:${URL_PASSWORD}@127.0.0.1:9/x.ndjson` };
    const r = await call(api, 'POST', '/schedules', {
      json: { destination_id: destId, provider: 'tap', customer_id: 'acme', object: 'userinfo', kind: 'custom', cron: '0 0 1 1 *', source },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/credentials in the URL/);
    expect(r.body.error.hint).toMatch(/headers/);
    expect(JSON.stringify(r.body)).not.toContain(URL_PASSWORD);
  });

  it('refuse credentials in a URL stored before, when it runs', async () => {
    const src = await localServer((_req, res) => res.end(record('1', {})));
    servers.push(src);
    const id = await schedule('stored_userinfo', { type: 'url', url: `${src.url}/ok.ndjson` });
    const sealed = api.context.box.seal(JSON.stringify({ type: 'url', url: `http://scott:${URL_PASSWORD}@127.0.0.1:${src.port}/ok.ndjson` }), `schedule:${id}`);
    await db.pool.query(`UPDATE pgland_control.schedules SET source = $2 WHERE id = $1`, [id, sealed]);
    const run = await runNow(id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/credentials in the URL \(user:password@\) are refused: http:\/\/\[set\]:\[set\]@127\.0\.0\.1/);
    expect(src.got).toEqual([]);
  });

  it('show secret query parameters as "[set]" everywhere, and keep them when sent back so', async () => {
    const src = await localServer((_req, res) => res.writeHead(500).end('down'));
    servers.push(src);
    const url = `${src.url}/export?since={watermark}&api_key=${QUERY_SECRET}&page=1`;
    const id = await schedule('query_secret', { type: 'url', url });
    const shown = (await call(api, 'GET', `/schedules/${id}`)).body.source.url as string;
    expect(shown).toBe(`${src.url}/export?since={watermark}&api_key=[set]&page=1`);
    const run = await runNow(id);
    expect(run).toMatchObject({ status: 'failed' });
    expect(run.error).toContain(`${src.url}/export?since=&api_key=[set]&page=1 answered HTTP 500`);
    // A PUT of what GET answered keeps the stored key.
    const current = (await call(api, 'GET', `/schedules/${id}`)).body;
    const put = await call(api, 'PUT', `/schedules/${id}`, {
      json: {
        destination_id: destId,
        provider: 'tap',
        customer_id: 'acme',
        object: 'query_secret',
        kind: 'custom',
        cron: current.cron,
        source: current.source,
      },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    await runNow(id);
    expect(src.got.map((g) => g.path)).toEqual([`/export?since=&api_key=${QUERY_SECRET}&page=1`, `/export?since=&api_key=${QUERY_SECRET}&page=1`]);
  });

  it("follow a redirect to another origin without the schedule's headers, and a same-origin one with them", async () => {
    const other = await localServer((_req, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(record('from-b', { n: 1 }))));
    const first = await localServer((req, res) => {
      if (req.url === '/start') return res.writeHead(302, { location: '/hop' }).end();
      if (req.url === '/hop' && req.headers['x-api-key'] === HEADER_SECRET) return res.writeHead(307, { location: `${other.url}/data` }).end();
      res.writeHead(401).end();
    });
    servers.push(other, first);
    const id = await schedule('redirected', { type: 'url', url: `${first.url}/start`, headers: { 'x-api-key': HEADER_SECRET } });
    expect(await runNow(id)).toMatchObject({ status: 'succeeded' });
    expect(first.got.map((g) => [g.path, g.headers['x-api-key']])).toEqual([
      ['/start', HEADER_SECRET],
      ['/hop', HEADER_SECRET],
    ]);
    expect(other.got).toHaveLength(1);
    expect(other.got[0]!.headers['x-api-key']).toBeUndefined();
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.custom_redirected`);
    expect(rows[0].n).toBe(1);
  });

  it('stop after 5 redirects', async () => {
    const loop = await localServer((req, res) => res.writeHead(302, { location: `/loop/${Number(req.url!.split('/')[2] ?? 0) + 1}` }).end());
    servers.push(loop);
    const id = await schedule('looping', { type: 'url', url: `${loop.url}/loop/0` });
    const run = await runNow(id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/more than 5 redirects/);
    expect(loop.got).toHaveLength(6);
  });
});

describe('the allow setting', () => {
  it('is checked when a stored command runs: a worker restarted without it refuses the command', async () => {
    const marker = join(dir, 'ran');
    const id = await schedule('stored_command', {
      type: 'command',
      command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`],
    });
    const first = workers[0]!;
    first.child.kill('SIGTERM');
    await first.done;
    await startWorker({ PGLAND_ALLOW_NETWORKS: '127.0.0.0/8' });
    const run = await runNow(id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/command sources are disabled on this server/);
    expect(existsSync(marker)).toBe(false);
  }, 90_000);
});

describe('no secret of these tests appears', () => {
  it('in answers, stored runs and jobs, webhook bodies or logs', async () => {
    await until('the webhooks', () => hooks.got.length >= 8);
    const outputs = [
      JSON.stringify((await call(api, 'GET', '/runs')).body),
      JSON.stringify((await call(api, 'GET', '/schedules')).body),
      JSON.stringify((await db.pool.query(`SELECT * FROM pgland_control.runs`)).rows),
      JSON.stringify((await db.pool.query(`SELECT * FROM pgland_control.webhook_messages`)).rows),
      JSON.stringify((await db.pool.query(`SELECT data, output FROM pgland_jobs.job UNION ALL SELECT data, output FROM pgland_jobs.archive`)).rows),
      ...hooks.got.map((g) => g.body),
      ...logLines,
      ...workers.map((w) => w.stderr()),
    ];
    expect(outputs.join('\n')).toMatch(/api_key=\[set\]/);
    for (const secret of SECRETS())
      expect(
        outputs.filter((o) => o.includes(secret)),
        secret,
      ).toEqual([]);
  });
});
