import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDestination } from '../src/config/resolve.js';
import { runCheck } from '../src/connection/check.js';
import { openPool } from '../src/connection/pool.js';
import { openTunnelFor } from '../src/connection/open-tunnel.js';
import { openDestination } from '../src/destination.js';
import { PglandError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { InProcessBastion, keyPair } from './support/bastion.js';
import { HBA_PLAIN, HBA_TLS_ONLY, startTestServer, tlsFile, tlsPem, type TestServer } from './fixtures/tls/server.js';

// Issue 6: sslmode with libpq's meanings, against a TLS-only server (hostssl,
// scram-sha-256) and a server without TLS, with the right CA, a wrong CA and
// host names the certificate does not carry.

const PASSWORD = 'p@ss:w/o?r#d [x] "q" \\ + & sp ace';
let tlsServer: TestServer;
let plainServer: TestServer;

beforeAll(async () => {
  [tlsServer, plainServer] = await Promise.all([
    // 127.0.0.2 too: a real address that the server certificate does not name.
    startTestServer({ tls: true, hba: HBA_TLS_ONLY, settings: { listen_addresses: '127.0.0.1,127.0.0.2' } }),
    startTestServer({ tls: false, hba: HBA_PLAIN }),
  ]);
  const lit = PASSWORD.replace(/'/g, "''");
  for (const s of [tlsServer, plainServer]) {
    await s.sql(`CREATE ROLE pgland_tls LOGIN PASSWORD '${lit}'; CREATE ROLE pgland_cert LOGIN; CREATE ROLE pgland_other LOGIN`);
  }
});

afterAll(async () => {
  await Promise.all([tlsServer?.stop(), plainServer?.stop()]);
});

type Outcome = { ok: true; encrypted: boolean } | { ok: false; code: string; message: string };

async function attempt(server: TestServer, extra: Record<string, unknown>): Promise<Outcome> {
  const cfg = resolveDestination({ host: '127.0.0.1', port: server.port, database: 'postgres', user: 'pgland_tls', password: PASSWORD, ...extra }, {});
  let pool: pg.Pool | undefined;
  const tunnel = await openTunnelFor(cfg);
  try {
    pool = await openPool(cfg, silentLogger(), 1, tunnel);
    const { rows } = await pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return { ok: true, encrypted: rows[0]!.ssl };
  } catch (err) {
    expect(err).toBeInstanceOf(PglandError);
    const e = err as PglandError;
    // No error message ever carries the password.
    expect(e.message + (e.hint ?? '')).not.toContain(PASSWORD);
    return { ok: false, code: e.code, message: e.message };
  } finally {
    await pool?.end();
    await tunnel?.close();
  }
}

const CA = { sslrootcert: tlsFile('ca.crt') };
const WRONG_CA = { sslrootcert: tlsFile('other-ca.crt') };
const ENCRYPTED = { ok: true, encrypted: true };
const PLAIN = { ok: true, encrypted: false };
const fails = (code: string) => ({ ok: false, code });

describe('sslmode against a TLS-only server (issue 6)', () => {
  const cases: [string, Record<string, unknown>, object][] = [
    ['disable', { sslmode: 'disable' }, fails('ssl_required')],
    ['prefer', { sslmode: 'prefer' }, ENCRYPTED],
    ['prefer, right CA', { sslmode: 'prefer', ...CA }, ENCRYPTED],
    // libpq verifies a given root cert even under prefer; the failed handshake falls back to plain, which pg_hba refuses.
    ['prefer, wrong CA', { sslmode: 'prefer', ...WRONG_CA }, { ok: false }],
    ['require', { sslmode: 'require' }, ENCRYPTED],
    ['require, host name not in the certificate', { sslmode: 'require', host: '127.0.0.2' }, ENCRYPTED],
    ['require, right CA', { sslmode: 'require', ...CA }, ENCRYPTED],
    // libpq: with a root certificate, require behaves as verify-ca.
    ['require, wrong CA', { sslmode: 'require', ...WRONG_CA }, fails('tls_untrusted')],
    ['verify-ca, right CA', { sslmode: 'verify-ca', ...CA }, ENCRYPTED],
    ['verify-ca, right CA, host name not in the certificate', { sslmode: 'verify-ca', ...CA, host: '127.0.0.2' }, ENCRYPTED],
    ['verify-ca, wrong CA', { sslmode: 'verify-ca', ...WRONG_CA }, fails('tls_untrusted')],
    ['verify-ca, no CA given (public CAs only)', { sslmode: 'verify-ca' }, fails('tls_untrusted')],
    ['verify-full, right CA, 127.0.0.1', { sslmode: 'verify-full', ...CA }, ENCRYPTED],
    ['verify-full, right CA, localhost', { sslmode: 'verify-full', ...CA, host: 'localhost' }, ENCRYPTED],
    ['verify-full, right CA as inline PEM', { sslmode: 'verify-full', sslrootcert: tlsPem('ca.crt') }, ENCRYPTED],
    ['verify-full, host name not in the certificate', { sslmode: 'verify-full', ...CA, host: '127.0.0.2' }, fails('tls_hostname_mismatch')],
    ['verify-full, sslservername names the certificate', { sslmode: 'verify-full', ...CA, host: '127.0.0.2', sslservername: 'localhost' }, ENCRYPTED],
    ['verify-full, sslservername does not', { sslmode: 'verify-full', ...CA, sslservername: 'db.example.com' }, fails('tls_hostname_mismatch')],
    ['verify-full, wrong CA', { sslmode: 'verify-full', ...WRONG_CA }, fails('tls_untrusted')],
    ['verify-full, sslrootcert=system', { sslmode: 'verify-full', sslrootcert: 'system' }, fails('tls_untrusted')],
  ];
  for (const [name, extra, expected] of cases) {
    it(name, async () => {
      expect(await attempt(tlsServer, extra)).toMatchObject(expected);
    });
  }

  it('the disable case says what to do', async () => {
    const r = await attempt(tlsServer, { sslmode: 'disable' });
    expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/accepts only TLS connections/) });
  });
});

describe('sslmode against a server without TLS (issue 6)', () => {
  const cases: [string, Record<string, unknown>, object][] = [
    ['disable', { sslmode: 'disable' }, PLAIN],
    ['prefer', { sslmode: 'prefer' }, PLAIN],
    ['require', { sslmode: 'require' }, fails('ssl_unsupported')],
    ['verify-ca', { sslmode: 'verify-ca', ...CA }, fails('ssl_unsupported')],
    ['verify-full', { sslmode: 'verify-full', ...CA }, fails('ssl_unsupported')],
  ];
  for (const [name, extra, expected] of cases) {
    it(name, async () => {
      expect(await attempt(plainServer, extra)).toMatchObject(expected);
    });
  }
});

describe('client certificates and authentication errors (issue 6)', () => {
  const certUser = { user: 'pgland_cert', password: undefined, sslmode: 'verify-full', ...CA };

  it('logs in with a client certificate (pg_hba cert), from paths and from inline PEM', async () => {
    expect(await attempt(tlsServer, { ...certUser, sslcert: tlsFile('client.crt'), sslkey: tlsFile('client.key') })).toEqual(ENCRYPTED);
    expect(await attempt(tlsServer, { ...certUser, sslcert: tlsPem('client.crt'), sslkey: tlsPem('client.key') })).toEqual(ENCRYPTED);
  });

  it('without a client certificate, says one is required', async () => {
    expect(await attempt(tlsServer, certUser)).toMatchObject(fails('client_cert_required'));
  });

  it('a certificate for another user is refused', async () => {
    const r = await attempt(tlsServer, { ...certUser, user: 'pgland_other', sslcert: tlsFile('client.crt'), sslkey: tlsFile('client.key') });
    expect(r).toMatchObject(fails('cert_auth_failed'));
  });

  it('a wrong password gives auth_failed, naming the user and never the password', async () => {
    const r = await attempt(tlsServer, { sslmode: 'require', password: PASSWORD + 'x' });
    expect(r).toMatchObject({ ok: false, code: 'auth_failed', message: expect.stringContaining('password authentication failed for user "pgland_tls"') });
  });

  it('no password at all says where to give one', async () => {
    const r = await attempt(tlsServer, { sslmode: 'require', password: undefined });
    expect(r).toMatchObject({ ok: false, code: 'auth_failed', message: expect.stringContaining('none is given') });
  });

  it('an unknown database gives unknown_database', async () => {
    const r = await attempt(tlsServer, { sslmode: 'require', database: 'no_such_db' });
    expect(r).toMatchObject({ ok: false, code: 'unknown_database', message: expect.stringContaining('database no_such_db does not exist') });
  });

  it('openDestination lands its metadata over verify-full', async () => {
    await tlsServer.sql('CREATE DATABASE tls_dest OWNER pgland_tls');
    const dest = await openDestination({
      host: 'localhost',
      port: tlsServer.port,
      database: 'tls_dest',
      user: 'pgland_tls',
      password: PASSWORD,
      sslmode: 'verify-full',
      sslrootcert: tlsFile('ca.crt'),
      schema: 'landing',
    });
    try {
      const { rows } = await dest.pool.query<{ ssl: boolean; n: number }>(
        `SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
                (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'landing') AS n`,
      );
      expect(rows[0]!.ssl).toBe(true);
      expect(rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await dest.close();
    }
  });
});

describe("a URL's sslmode=require (issue 6: node-postgres's quirk)", () => {
  it("node-postgres alone reads it as verify-full and refuses the self-signed chain; pgland gives libpq's meaning", async () => {
    const url = `postgres://pgland_tls:${encodeURIComponent(PASSWORD)}@127.0.0.1:${tlsServer.port}/postgres?sslmode=require`;
    const raw = new pg.Client({ connectionString: url });
    raw.on('error', () => undefined);
    const rawErr = await raw.connect().then(
      () => null,
      (e: unknown) => e,
    );
    await raw.end().catch(() => undefined);
    expect((rawErr as { code?: string } | null)?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);

    expect(await attempt(tlsServer, { url, host: undefined, user: undefined, password: undefined, database: undefined })).toEqual(ENCRYPTED);
  });
});

describe('TLS through an SSH tunnel (issue 6)', () => {
  // The socket reaches the database through the bastion, but the certificate
  // is checked against the database's name, never the tunnel's.
  const key = keyPair('ed25519');
  let bastion: InProcessBastion;
  beforeAll(async () => {
    bastion = await new InProcessBastion([{ name: 'jump', keys: [key.public] }]).start();
  });
  afterAll(async () => {
    await bastion?.close();
  });
  const via = () => ({
    ssh_tunnel: { host: '127.0.0.1', port: bastion.port, user: 'jump', private_key: key.private, host_key_fingerprint: bastion.hostKeys[0]!.fingerprint },
  });

  it('verify-full by the name the bastion resolves', async () => {
    expect(await attempt(tlsServer, { sslmode: 'verify-full', ...CA, host: 'localhost', ...via() })).toEqual(ENCRYPTED);
    expect(bastion.channels).toBeGreaterThan(0);
  });

  it('a name the certificate does not carry is refused through the tunnel too', async () => {
    expect(await attempt(tlsServer, { sslmode: 'verify-full', ...CA, host: '127.0.0.2', ...via() })).toMatchObject(fails('tls_hostname_mismatch'));
  });

  it('a client certificate through the tunnel', async () => {
    const r = await attempt(tlsServer, {
      sslmode: 'verify-full',
      ...CA,
      user: 'pgland_cert',
      password: undefined,
      sslcert: tlsFile('client.crt'),
      sslkey: tlsFile('client.key'),
      ...via(),
    });
    expect(r).toEqual(ENCRYPTED);
  });

  it("pgland check: every step passes, the TLS step verifying the database's certificate over the tunnel", async () => {
    const r = await runCheck(
      resolveDestination(
        { host: 'localhost', port: tlsServer.port, user: tlsServer.user, password: tlsServer.password, sslmode: 'verify-full', ...CA, ...via() },
        {},
      ),
    );
    // Every step the check has (the pooler step came with issue 21), each one passing.
    expect(r.steps.length).toBeGreaterThanOrEqual(10);
    expect(r.steps.filter((st) => st.status !== 'pass').map((st) => `${st.step}: ${st.status}`)).toEqual([]);
    expect(r.steps[2]!.detail).toMatch(/certificate verified for localhost/);
  });
});
