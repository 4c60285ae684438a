// Issue 14, items 4, 7 and 9 (docs/security.md, "Credentials held by the
// service"): a stored secret never follows a destination to another target,
// no caller makes pgland read a file of the server, and no password goes out
// in cleartext over an unencrypted connection unless the config says so.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDestination } from '../src/config/resolve.js';
import { openPool } from '../src/connection/pool.js';
import { openDestination } from '../src/destination.js';
import { PglandError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { parseSecretKey, secretBox } from '../src/service/control/secrets.js';
import type { Service } from '../src/service/service.js';
import { startTestServer, type TestServer } from './fixtures/tls/server.js';
import { keyPair } from './support/bastion.js';
import { spawnCli, type CliResult } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { FakePostgres } from './support/fake-postgres.js';
import { call, logLines, startTestService, TEST_SECRET_KEY, type Answer } from './support/service.js';

const hex = (): string => randomBytes(8).toString('hex');
const PASSWORD = 'db-pw-' + hex();
const SSH_PASSWORD = 'ssh-pw-' + hex();
const PASSPHRASE = 'ssh-pp-' + hex();
const NEW_PASSWORD = 'db-pw-new-' + hex();
const SECRETS = [PASSWORD, SSH_PASSWORD, PASSPHRASE, NEW_PASSWORD];

let db: TestDatabase;
let svc: Service;
let fake: FakePostgres;
let dir: string;
const answers: Answer[] = [];

beforeAll(async () => {
  db = await freshDatabase('security_credentials');
  svc = await startTestService(db);
  fake = await new FakePostgres().start();
  dir = mkdtempSync(join(tmpdir(), 'pgland-sec-creds-'));
});
afterAll(async () => {
  await svc?.stop();
  await fake?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A call whose answer is kept, to check at the end that no secret appears in any. */
async function api(method: string, path: string, json?: unknown): Promise<Answer> {
  const r = await call(svc, method, path, json === undefined ? {} : { json });
  answers.push(r);
  return r;
}

async function create(config: Record<string, unknown>): Promise<string> {
  const r = await api('POST', '/destinations', { name: 'd-' + hex(), config });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the stored secrets, read back as the test wrote them
async function storedSecrets(id: string): Promise<Record<string, any>> {
  const { rows } = await db.pool.query(`SELECT secrets FROM pgland_control.destinations WHERE id = $1`, [id]);
  return JSON.parse(secretBox(parseSecretKey(TEST_SECRET_KEY)).open(rows[0].secrets, `destination:${id}`));
}

/** An SSH server that presents its own host key and keeps every password offered to it. */
async function sshTrap(): Promise<{ port: number; fingerprint: string; passwords: string[]; close(): Promise<void> }> {
  const key = keyPair('ed25519');
  const passwords: string[] = [];
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    client.on('authentication', (ctx) => {
      if (ctx.method === 'password') passwords.push(ctx.password);
      ctx.reject(['password', 'publickey']);
    });
    client.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    fingerprint: key.fingerprint,
    passwords,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('item 4: re-pointing a destination does not take its stored secrets along', () => {
  // A closed port on loopback: the stored target is never reached in these tests.
  const base = { host: 'localhost', port: 9, database: 'app', user: 'loader', sslmode: 'disable' };

  it('a "[set]" password is refused when anything that decides where it goes changed', async () => {
    const id = await create({ ...base, password: PASSWORD });
    const moves: [Record<string, unknown>, RegExp][] = [
      [{ ...base, host: '127.0.0.1', port: fake.port }, /host, port changed/],
      [{ ...base, port: fake.port }, /port changed/],
      [{ sslmode: 'disable', url: `postgres://loader@127.0.0.1:${fake.port}/app` }, /host, port changed/],
      [{ ...base, user: 'postgres' }, /user changed/],
      [{ ...base, database: 'other' }, /database changed/],
      [{ ...base, sslmode: 'prefer' }, /sslmode changed/],
      [{ ...base, sslservername: 'db.example.com' }, /sslservername changed/],
      [{ ...base, allow_cleartext_password: true }, /allow_cleartext_password changed/],
      [{ ...base, ssh_tunnel: { host: '127.0.0.1', port: 9, user: 'u', password: 'x', host_key_fingerprint: 'SHA256:' + 'A'.repeat(43) } }, /ssh_tunnel/],
    ];
    for (const [config, changed] of moves) {
      const r = await api('PUT', `/destinations/${id}`, { config: { ...config, password: '[set]' } });
      expect(r.status, JSON.stringify(config)).toBe(400);
      expect(r.body.error.code).toBe('config_invalid');
      expect(r.body.error.message).toMatch(/^password: "\[set\]" keeps a stored secret only while it goes where it went/);
      expect(r.body.error.message).toMatch(changed);
      expect(r.body.error.message).toMatch(/send this secret again/);
    }
    // Nothing moved: the destination still points where it did, and its test never reaches the impostor.
    expect((await api('GET', `/destinations/${id}`)).body.config).toMatchObject({ host: 'localhost', port: 9, password: '[set]' });
    await api('POST', `/destinations/${id}/test`);
    expect(fake.saw(PASSWORD)).toBe(false);
    expect(await storedSecrets(id)).toEqual({ password: PASSWORD });
  });

  it('a "[set]" url (which holds the password) is refused when a key moves its target', async () => {
    const id = await create({ url: `postgres://loader:${PASSWORD}@localhost:9/app`, sslmode: 'disable' });
    const r = await api('PUT', `/destinations/${id}`, { config: { url: '[set]', host: '127.0.0.1', port: fake.port, sslmode: 'disable' } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^url: "\[set\]" keeps a stored secret only while it goes where it went, and host, port changed/);
    await api('POST', `/destinations/${id}/test`);
    expect(fake.saw(PASSWORD)).toBe(false);
  });

  it('the same target, written differently or with other settings, keeps "[set]"; a new secret may go anywhere', async () => {
    const id = await create({ ...base, password: PASSWORD });
    let r = await api('PUT', `/destinations/${id}`, { config: { ...base, schema: 'elsewhere', batch_size: 1000, password: '[set]' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    r = await api('PUT', `/destinations/${id}`, { config: { url: 'postgres://loader@localhost:9/app', sslmode: 'disable', password: '[set]' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await storedSecrets(id)).toMatchObject({ password: PASSWORD });
    r = await api('PUT', `/destinations/${id}`, { config: { ...base, host: '127.0.0.1', port: fake.port, password: NEW_PASSWORD } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await storedSecrets(id)).toEqual({ password: NEW_PASSWORD });
  });

  it('SSH secrets stay with the bastion they were given for (host, port, user, pinned host key)', async () => {
    const trap = await sshTrap();
    try {
      const pin = 'SHA256:' + 'B'.repeat(43);
      const tunnel = { host: '127.0.0.1', port: 9, user: 'pgland', host_key_fingerprint: pin };
      const id = await create({ ...base, host: 'db.internal', password: PASSWORD, ssh_tunnel: { ...tunnel, password: SSH_PASSWORD } });
      const moves: [Record<string, unknown>, RegExp][] = [
        [{ ...tunnel, port: trap.port, host_key_fingerprint: trap.fingerprint }, /ssh_tunnel\.port, ssh_tunnel\.host_key_fingerprint changed/],
        [{ ...tunnel, host: 'localhost' }, /ssh_tunnel\.host changed/],
        [{ ...tunnel, user: 'root' }, /ssh_tunnel\.user changed/],
        [{ host: '127.0.0.1', port: 9, user: 'pgland' }, /ssh_tunnel\.host_key_fingerprint changed/],
      ];
      for (const [moved, changed] of moves) {
        // Only the bastion's password kept: the database password is sent anew, so only the SSH secret is named.
        const r = await api('PUT', `/destinations/${id}`, {
          config: { ...base, host: 'db.internal', password: PASSWORD, ssh_tunnel: { ...moved, password: '[set]' } },
        });
        expect(r.status, JSON.stringify(moved)).toBe(400);
        expect(r.body.error.message).toMatch(/^ssh_tunnel\.password: "\[set\]" keeps a stored secret only while it goes where it went/);
        expect(r.body.error.message).toMatch(changed);
      }
      // Both kept: both named.
      const both = await api('PUT', `/destinations/${id}`, {
        config: {
          ...base,
          host: 'db.internal',
          password: '[set]',
          ssh_tunnel: { ...tunnel, port: trap.port, host_key_fingerprint: trap.fingerprint, password: '[set]' },
        },
      });
      expect(both.status).toBe(400);
      expect(both.body.error.message).toMatch(/^password, ssh_tunnel\.password: .*send these secrets again/);
      await api('POST', `/destinations/${id}/test`);
      expect(trap.passwords).toEqual([]);
      expect(await storedSecrets(id)).toMatchObject({ password: PASSWORD, ssh_tunnel: { password: SSH_PASSWORD } });
    } finally {
      await trap.close();
    }
  });

  it('a "[set]" private key or passphrase stays with its bastion, and a passphrase with its key', async () => {
    const key = keyPair('ed25519', { passphrase: PASSPHRASE });
    const other = keyPair('ed25519', { passphrase: 'not-' + PASSPHRASE });
    const tunnel = { host: '127.0.0.1', port: 9, user: 'pgland', host_key_fingerprint: 'SHA256:' + 'C'.repeat(43) };
    const id = await create({ ...base, ssh_tunnel: { ...tunnel, private_key: key.private, passphrase: PASSPHRASE } });
    let r = await api('PUT', `/destinations/${id}`, { config: { ...base, ssh_tunnel: { ...tunnel, private_key: other.private, passphrase: '[set]' } } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^ssh_tunnel\.passphrase: .*ssh_tunnel\.private_key changed/);
    r = await api('PUT', `/destinations/${id}`, { config: { ...base, ssh_tunnel: { ...tunnel, port: 10, private_key: '[set]', passphrase: '[set]' } } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^ssh_tunnel\.private_key, ssh_tunnel\.passphrase: .*ssh_tunnel\.port changed/);
    r = await api('PUT', `/destinations/${id}`, {
      config: { ...base, schema: 'x', ssh_tunnel: { ...tunnel, keepalive_interval_ms: 5000, private_key: '[set]', passphrase: '[set]' } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
});

describe('item 7: no caller makes pgland read a file of the server', () => {
  const fifo = (): string => {
    const path = join(dir, 'fifo-' + hex());
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    return path;
  };

  it("a path in the URL's query string is refused, in the same words whatever the file", async () => {
    const paths = ['/etc/shadow', '/nonexistent-' + hex(), dir, fifo()];
    for (const param of ['sslrootcert', 'sslcert', 'sslkey']) {
      const messages = new Set<string>();
      for (const path of paths) {
        const url = `postgres://loader:${PASSWORD}@127.0.0.1:9/app?sslmode=verify-full&${param}=${encodeURIComponent(path)}`;
        const r = await api('POST', '/destinations', { name: 'f-' + hex(), config: { url } });
        expect(r.status, `${param}=${path}`).toBe(400);
        expect(r.body.error.message).toMatch(new RegExp(`^${param}: over the API, give the PEM text itself; a path on the pgland server is not accepted`));
        messages.add(r.body.error.message);
      }
      expect(messages.size).toBe(1); // no oracle: the answer does not depend on the file
    }
  });

  it('libpq parameters that name files (passfile, service, sslcrl…) are refused in the URL', async () => {
    for (const param of ['passfile', 'service', 'sslcrl', 'sslcrldir']) {
      const r = await api('POST', '/destinations', { name: 'f-' + hex(), config: { url: `postgres://loader@127.0.0.1:9/app?${param}=/etc/passwd` } });
      expect(r.status, param).toBe(400);
      expect(r.body.error.message).toMatch(new RegExp(`unknown query parameter "${param}"`));
      expect(r.body.error.hint).toMatch(new RegExp(`pgland reads no ${param} file`));
    }
  });

  it('a PUT is refused the same way, and a row stored before the check is refused at use, not read', async () => {
    const id = await create({ host: '127.0.0.1', port: 9, password: PASSWORD });
    const put = await api('PUT', `/destinations/${id}`, { config: { url: `postgres://loader:${PASSWORD}@127.0.0.1:9/app?sslrootcert=${fifo()}` } });
    expect(put.status).toBe(400);
    expect(put.body.error.message).toMatch(/^sslrootcert: over the API/);
    // As an older pgland would have stored it: the URL (a secret) sealed in the row.
    const url = `postgres://loader:${PASSWORD}@127.0.0.1:9/app?sslmode=verify-full&sslrootcert=/nonexistent-${hex()}`;
    const sealed = secretBox(parseSecretKey(TEST_SECRET_KEY)).seal(JSON.stringify({ url }), `destination:${id}`);
    await db.pool.query(`UPDATE pgland_control.destinations SET config = '{}', secrets = $2 WHERE id = $1`, [id, sealed]);
    const test = await api('POST', `/destinations/${id}/test`);
    expect(test.status).toBe(400);
    expect(test.body.error.message).toMatch(/^sslrootcert: over the API/);
    expect((await api('GET', `/destinations/${id}`)).status).toBe(200);
  });

  /** pgland check on a config; killed after 60 s, so that a read that blocks fails the test instead of hanging it. */
  async function check(config: Record<string, unknown>): Promise<CliResult> {
    const file = join(dir, 'check-' + hex() + '.json');
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 9, ...config }));
    const { child, done } = spawnCli(['check', '--config', file]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      return await done;
    } finally {
      clearTimeout(timer);
    }
  }

  it('the CLI reads certificate, key and secret files asynchronously, regular files only, at most 1 MiB', async () => {
    const big = join(dir, 'big.pem');
    writeFileSync(big, '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(1024 * 1024) + '\n-----END CERTIFICATE-----\n');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ sslmode: 'verify-full', sslrootcert: fifo() }, /sslrootcert: cannot read .*: a FIFO, not a regular file/],
      [{ password_file: fifo() }, /password_file: cannot read .*: a FIFO, not a regular file/],
      [{ sslmode: 'verify-full', sslrootcert: '/dev/zero' }, /sslrootcert: cannot read \/dev\/zero: a device, not a regular file/],
      [{ sslmode: 'verify-full', sslrootcert: dir }, /sslrootcert: cannot read .*: a directory, not a regular file/],
      [{ sslmode: 'verify-full', sslrootcert: big }, /sslrootcert: cannot read .*: larger than 1024 KiB/],
    ];
    for (const [config, message] of cases) {
      const r = await check(config);
      expect(r.code, JSON.stringify(config) + r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  }, 300_000);
});

describe('item 9: no cleartext password over an unencrypted connection', () => {
  const impostor = (): Record<string, unknown> => ({ host: '127.0.0.1', port: fake.port, user: 'loader', database: 'app', password: PASSWORD });

  it("the service's test refuses a server that declines TLS and asks for the password in cleartext", async () => {
    const before = fake.received.length;
    const id = await create(impostor()); // sslmode prefer, the default
    const r = await api('POST', `/destinations/${id}/test`);
    expect(r.status).toBe(200);
    expect(fake.received.length).toBeGreaterThan(before); // it did reach the impostor
    const auth = r.body.steps.find((s: { step: string }) => s.step === 'auth');
    expect(auth).toMatchObject({ status: 'fail', code: 'cleartext_password_refused' });
    expect(auth.detail).toMatch(/asked for the password in cleartext over a connection that is not encrypted: pgland did not send it/);
    expect(auth.fix).toMatch(/sslmode to require or verify-full.*scram-sha-256.*"allow_cleartext_password": true/);
    expect(fake.passwords).toEqual([]);
    expect(fake.saw(PASSWORD)).toBe(false);
  });

  it("opening the destination (the loader's pool) refuses it too, with sslmode prefer or disable", async () => {
    for (const sslmode of ['prefer', 'disable']) {
      const err = await openDestination({ ...impostor(), sslmode } as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, sslmode).toBeInstanceOf(PglandError);
      expect((err as PglandError).code).toBe('cleartext_password_refused');
      expect((err as PglandError).hint).toMatch(/allow_cleartext_password/);
    }
    expect(fake.passwords).toEqual([]);
    expect(fake.saw(PASSWORD)).toBe(false);
  });

  it('allow_cleartext_password: true sends it (for a network the operator trusts)', async () => {
    const err = await openDestination({ ...impostor(), password: NEW_PASSWORD, allow_cleartext_password: true } as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as PglandError).code).toBe('auth_failed'); // the impostor refuses every password
    expect(fake.passwords).toEqual([NEW_PASSWORD]);
  });
});

describe('item 9 against a real PostgreSQL whose pg_hba.conf method is password', () => {
  const CLEAR_PASSWORD = 'clear-pw-' + hex();
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ tls: true, hba: 'host all pgland_clear 127.0.0.0/8 password\nhost all all 127.0.0.0/8 scram-sha-256\n' });
    await server.sql(`CREATE ROLE pgland_clear LOGIN PASSWORD '${CLEAR_PASSWORD}'`);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  /** Logs in as pgland_clear; whether the session is encrypted, or the error. */
  async function login(extra: Record<string, unknown>): Promise<{ ssl: boolean } | PglandError> {
    const cfg = resolveDestination(
      { host: '127.0.0.1', port: server.port, database: 'postgres', user: 'pgland_clear', password: CLEAR_PASSWORD, ...extra },
      {},
    );
    const pool = await openPool(cfg, silentLogger(), 1).catch((e: PglandError) => e);
    if (pool instanceof PglandError) return pool;
    try {
      const { rows } = await pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return { ssl: rows[0]!.ssl };
    } finally {
      await pool.end();
    }
  }

  it('refused over a plain connection; sent over TLS, or over plain when the config allows it', async () => {
    const plain = await login({ sslmode: 'disable' });
    expect(plain).toBeInstanceOf(PglandError);
    expect((plain as PglandError).code).toBe('cleartext_password_refused');
    expect(await login({ sslmode: 'require' })).toEqual({ ssl: true });
    expect(await login({ sslmode: 'prefer' })).toEqual({ ssl: true });
    expect(await login({ sslmode: 'disable', allow_cleartext_password: true })).toEqual({ ssl: false });
    expect(await login({ sslmode: 'disable', allow_cleartext_password: 'true' })).toEqual({ ssl: false }); // as PGLAND_ALLOW_CLEARTEXT_PASSWORD gives it
  });
});

describe('no secret in any answer or log line', () => {
  it("none of the test's secrets appears in a response, a log line or a stored row (outside its sealed secrets)", async () => {
    expect(answers.length).toBeGreaterThan(20);
    const { rows } = await db.pool.query<{ row: string }>(`SELECT to_jsonb(t) - 'secrets' AS row FROM pgland_control.destinations t`);
    expect(rows.length).toBeGreaterThan(5);
    for (const secret of SECRETS) {
      for (const a of answers) expect(JSON.stringify(a.body)).not.toContain(secret);
      for (const line of logLines) expect(line).not.toContain(secret);
      for (const r of rows) expect(JSON.stringify(r.row)).not.toContain(secret);
    }
  });
});
