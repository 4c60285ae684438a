import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDestination } from '../src/config/resolve.js';
import { judgeVersion, runCheck, type CheckReport, type StepResult } from '../src/connection/check.js';
import { explain } from '../src/connection/diagnose.js';
import { HBA_TLS_ONLY, startTestServer, tlsFile, type TestServer } from './fixtures/tls/server.js';
import { runCli } from './support/cli.js';

// Issue 6: pgland check, step by step, against a TLS-only server (scram, hostssl),
// with the least-privilege setup script and with each grant missing in turn.

const SETUP_SQL = fileURLToPath(new URL('../sql/setup/least-privilege.sql', import.meta.url));
const PW = 'Loader: p@ss/w#rd "1"';
const ORDER = ['reach', 'tls', 'auth', 'database', 'version', 'pooler', 'schema', 'temporary', 'write'];

let server: TestServer;
let dir: string;
const hasPsql = spawnSync('psql', ['--version']).status === 0;

beforeAll(async () => {
  server = await startTestServer({ tls: true, hba: HBA_TLS_ONLY });
  dir = mkdtempSync(join(tmpdir(), 'pgland-check-'));
  const lit = PW.replace(/'/g, "''");
  for (const db of ['app', 'app2', 'notemp']) await server.sql(`CREATE DATABASE ${db}`);
  await server.sql(
    `CREATE ROLE loader LOGIN PASSWORD '${lit}'; CREATE ROLE nocreate LOGIN PASSWORD '${lit}'; CREATE ROLE nolimit LOGIN PASSWORD '${lit}' CONNECTION LIMIT 0`,
  );
  await server.sql(`GRANT CONNECT, CREATE, TEMPORARY ON DATABASE app TO loader`);
  // app: a schema made by someone else, a schema with a foreign table, both without grants to loader.
  await server.sql(`CREATE SCHEMA locked; CREATE SCHEMA shared; GRANT ALL ON SCHEMA shared TO loader; CREATE TABLE shared.crm_contacts (id text)`, 'app');
  await server.sql(
    `REVOKE CREATE ON DATABASE app FROM PUBLIC; REVOKE TEMPORARY ON DATABASE notemp FROM PUBLIC; GRANT CONNECT, CREATE ON DATABASE notemp TO loader`,
  );
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    host: '127.0.0.1',
    port: server.port,
    database: 'app',
    user: 'loader',
    password: PW,
    sslmode: 'verify-full',
    sslrootcert: tlsFile('ca.crt'),
    schema: 'pgland',
    connect_timeout_ms: 3000,
    ...extra,
  };
}

async function check(extra: Record<string, unknown> = {}): Promise<CheckReport> {
  return runCheck(resolveDestination(config(extra), {}));
}

function stepOf(r: CheckReport, name: string): StepResult {
  const s = r.steps.find((x) => x.step === name);
  if (!s) throw new Error(`no step ${name}`);
  return s;
}

function statuses(r: CheckReport): Record<string, string> {
  return Object.fromEntries(r.steps.map((s) => [s.step, s.status]));
}

function writeConfig(name: string, extra: Record<string, unknown> = {}): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(config(extra)));
  return f;
}

describe('pgland check, all good (issue 6)', () => {
  it('passes every step in order, each timed, and exits 0; nothing is left behind', async () => {
    const r = await runCli(['check', '--config', writeConfig('ok.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^pgland check: loader@127\.0\.0\.1:\d+\/app, schema pgland, sslmode verify-full$/);
    const titles = [
      'DNS and TCP reach',
      'TLS',
      'authentication',
      'database exists',
      'server version',
      'connection pooler',
      'schema exists or can be created',
      'TEMPORARY privilege',
      'write probe',
    ];
    titles.forEach((t, i) => expect(lines[i + 1]).toMatch(new RegExp(`^  PASS  ${t}\\s+\\d+ ms  `)));
    expect(lines[2]).toMatch(/TLSv1\.[23] .*certificate verified for 127\.0\.0\.1/);
    expect(lines.at(-1)).toBe('all checks passed.');
    expect(r.stdout).not.toContain(PW);
    const left = await server.sql(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgland'`, 'app');
    expect(left.rows[0].n).toBe(0); // the probe's schema was rolled back with it
  });

  it('--json gives the same steps', async () => {
    const r = await runCli(['check', '--config', writeConfig('ok2.json'), '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as CheckReport;
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => s.step)).toEqual(ORDER);
    for (const s of report.steps) {
      expect(s.status).toBe('pass');
      expect(s.ms).toBeGreaterThanOrEqual(0);
    }
    expect(report.target).toMatchObject({ user: 'loader', database: 'app', sslmode: 'verify-full' });
  });

  it('sslmode=require passes with a warning that the certificate is not verified', async () => {
    const r = await check({ sslmode: 'require', sslrootcert: undefined });
    expect(r.ok).toBe(true);
    expect(stepOf(r, 'tls')).toMatchObject({ status: 'warn', detail: expect.stringContaining('not verified') });
  });

  it.skipIf(!hasPsql)('the least-privilege script (both options) gives a role that passes every step [needs psql]', async () => {
    const conn = (db: string) => `host=127.0.0.1 port=${server.port} user=postgres dbname=${db} sslmode=require`;
    const env = { ...process.env, PGPASSWORD: server.password };
    execFileSync('psql', [conn('app'), '-q', '-v', 'role=setup_a', '-v', `password=${PW}`, '-v', 'schema=landing_a', '-f', SETUP_SQL], { env });
    execFileSync('psql', [conn('app2'), '-q', '-v', 'role=setup_b', '-v', `password=${PW}`, '-v', 'schema=landing_b', '-v', 'precreate=1', '-f', SETUP_SQL], {
      env,
    });
    const a = await check({ user: 'setup_a', schema: 'landing_a' });
    expect(statuses(a)).toEqual(Object.fromEntries(ORDER.map((s) => [s, 'pass'])));
    expect(stepOf(a, 'schema').detail).toMatch(/does not exist yet; setup_a may create it/);
    const b = await check({ user: 'setup_b', schema: 'landing_b', database: 'app2' });
    expect(statuses(b)).toEqual(Object.fromEntries(ORDER.map((s) => [s, 'pass'])));
    expect(stepOf(b, 'schema').detail).toMatch(/schema landing_b exists/);
    // Option B grants no CREATE on the database.
    const grants = await server.sql(`SELECT has_database_privilege('setup_b', 'app2', 'CREATE') AS c`, 'app2');
    expect(grants.rows[0].c).toBe(false);
  });
});

describe('pgland check names the missing grant and prints the statement that fixes it (issue 6)', () => {
  /** Runs the printed fix as the superuser (in the database checked), then checks again. */
  async function applyFix(step: StepResult, db: string): Promise<void> {
    expect(step.fix).toBeTruthy();
    await server.sql(step.fix!, db);
  }

  it('no CREATE on the database and no schema', async () => {
    const r = await check({ user: 'nocreate' });
    const s = stepOf(r, 'schema');
    expect(s).toMatchObject({ status: 'fail', code: 'schema_create_denied', fix: expect.stringContaining('GRANT CREATE ON DATABASE "app" TO "nocreate";') });
    expect(stepOf(r, 'temporary').status).toBe('skip');
    expect(stepOf(r, 'write').status).toBe('skip');
    await applyFix(s, 'app');
    expect((await check({ user: 'nocreate' })).ok).toBe(true);
  });

  it('a pre-created schema without grants', async () => {
    const r = await check({ schema: 'locked' });
    const s = stepOf(r, 'schema');
    expect(s).toMatchObject({
      status: 'fail',
      code: 'permission_denied',
      detail: expect.stringMatching(/lacks USAGE and CREATE on schema locked/),
      fix: 'GRANT ALL ON SCHEMA "locked" TO "loader";',
    });
    await applyFix(s, 'app');
    expect((await check({ schema: 'locked' })).ok).toBe(true);
  });

  it('a table in the schema that the role may not write', async () => {
    const r = await check({ schema: 'shared' });
    const s = stepOf(r, 'schema');
    expect(s).toMatchObject({
      status: 'fail',
      code: 'permission_denied',
      detail: expect.stringContaining('permission denied for table "shared"."crm_contacts"'),
    });
    expect(s.fix).toBe('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "shared" TO "loader";');
    await applyFix(s, 'app');
    const again = await check({ schema: 'shared' });
    expect(again.ok).toBe(true);
    expect(stepOf(again, 'schema')).toMatchObject({ status: 'warn', detail: expect.stringContaining('not owned by loader') });
  });

  it('no TEMPORARY privilege', async () => {
    const r = await check({ database: 'notemp' });
    const s = stepOf(r, 'temporary');
    expect(s).toMatchObject({ status: 'fail', code: 'temp_denied', fix: 'GRANT TEMPORARY ON DATABASE "notemp" TO "loader";' });
    expect(stepOf(r, 'write').status).toBe('skip');
    await applyFix(s, 'notemp');
    expect((await check({ database: 'notemp' })).ok).toBe(true);
  });
});

describe('pgland check maps each failure to a cause and a fix (issue 6)', () => {
  it('wrong password: authentication fails, the rest is skipped, exit 1, the password never printed', async () => {
    const r = await runCli(['check', '--config', writeConfig('badpw.json', { password: 'not-the-password-42' })]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}authentication .*password authentication failed for user "loader"/);
    expect(r.stdout).toMatch(/cause: auth_failed/);
    expect(r.stdout).toMatch(/fix: {3}check the user and the password/);
    expect(r.stdout).toMatch(/SKIP {2}database exists\s+not run: authentication failed/);
    expect(r.stdout.trim()).toMatch(/1 check failed\.$/);
    expect(r.stdout + r.stderr).not.toContain('not-the-password-42');
  });

  it('unknown database: authentication passes, the database step fails', async () => {
    const r = await check({ database: 'nope' });
    expect(stepOf(r, 'auth').status).toBe('pass');
    expect(stepOf(r, 'database')).toMatchObject({ status: 'fail', code: 'unknown_database', fix: expect.stringContaining('CREATE DATABASE "nope";') });
  });

  it('connection refused', async () => {
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((res) => srv.close(() => res()));
    const r = await check({ port });
    expect(stepOf(r, 'reach')).toMatchObject({ status: 'fail', code: 'connection_refused', fix: expect.stringContaining('listen_addresses') });
    expect(stepOf(r, 'tls').status).toBe('skip');
  });

  it('DNS failure', async () => {
    const r = await check({ host: 'no-such-host.invalid' });
    expect(stepOf(r, 'reach')).toMatchObject({ status: 'fail', code: 'dns_failure', detail: expect.stringContaining('no-such-host.invalid does not resolve') });
  });

  it('TLS required by the server, sslmode=disable', async () => {
    const r = await check({ sslmode: 'disable' });
    expect(stepOf(r, 'tls').status).toBe('warn');
    expect(stepOf(r, 'auth')).toMatchObject({ status: 'fail', code: 'ssl_required', fix: expect.stringContaining('"sslmode": "verify-full"') });
  });

  it('an untrusted certificate and a host name the certificate does not carry', async () => {
    const r = await check({ sslrootcert: tlsFile('other-ca.crt') });
    expect(stepOf(r, 'tls')).toMatchObject({ status: 'fail', code: 'tls_untrusted', fix: expect.stringContaining('sslrootcert') });
    const m = await check({ sslservername: 'db.example.com' });
    expect(stepOf(m, 'tls')).toMatchObject({ status: 'fail', code: 'tls_hostname_mismatch', fix: expect.stringContaining('sslservername') });
  });

  it('TLS not supported by the server, sslmode=require', async () => {
    const plain = await startTestServer({ tls: false, hba: 'host all all 127.0.0.0/8 scram-sha-256\n' });
    try {
      const r = await runCheck(resolveDestination({ host: '127.0.0.1', port: plain.port, user: 'postgres', password: plain.password, sslmode: 'require' }, {}));
      expect(stepOf(r, 'tls')).toMatchObject({ status: 'fail', code: 'ssl_unsupported' });
      const prefer = await runCheck(
        resolveDestination({ host: '127.0.0.1', port: plain.port, user: 'postgres', password: plain.password, sslmode: 'prefer' }, {}),
      );
      expect(prefer.ok).toBe(true);
      expect(stepOf(prefer, 'tls')).toMatchObject({ status: 'warn', detail: expect.stringContaining('does not offer TLS') });
    } finally {
      await plain.stop();
    }
  });

  it('too many connections', async () => {
    const r = await check({ user: 'nolimit' });
    expect(stepOf(r, 'auth')).toMatchObject({ status: 'fail', code: 'too_many_connections', fix: expect.stringContaining('pg_stat_activity') });
  });

  it('query timeout (a real statement_timeout cancellation)', async () => {
    const c = new pg.Client(server.admin());
    await c.connect();
    const err = await c.query(`SET statement_timeout = 50; SELECT pg_sleep(2)`).then(
      () => null,
      (e: unknown) => e,
    );
    await c.end();
    const e = explain(err, { host: 'h', port: 5432, database: 'd', user: 'u', sslmode: 'require', connect_timeout_ms: 1, statement_timeout_ms: 50 });
    expect(e).toMatchObject({ code: 'query_timeout', hint: expect.stringContaining('statement_timeout_ms') });
  });

  it('server versions: 13+ supported, 12 best-effort, older refused', () => {
    expect(judgeVersion(170010, '17.10').status).toBe('pass');
    expect(judgeVersion(130000, '13.0').status).toBe('pass');
    expect(judgeVersion(120019, '12.19')).toMatchObject({ status: 'warn', detail: expect.stringContaining('best-effort') });
    expect(judgeVersion(110022, '11.22')).toMatchObject({ status: 'fail', detail: expect.stringContaining('needs 13 or later') });
    expect(judgeVersion(90624, '9.6.24').status).toBe('fail');
  });

  it('a config error exits 2, naming the field (human and --json)', async () => {
    const f = writeConfig('bad.json', { sslmode: 'sometimes' });
    const r = await runCli(['check', '--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"sslmode"/);
    const j = await runCli(['check', '--config', f, '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, error: { code: 'config_invalid' } });
  });
});
