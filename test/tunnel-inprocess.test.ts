import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDestination } from '../src/config/resolve.js';
import { runCheck } from '../src/connection/check.js';
import { openPool } from '../src/connection/pool.js';
import { fingerprintOf } from '../src/connection/host-key.js';
import { loadPrivateKey } from '../src/connection/ssh-key.js';
import { openTunnelFor } from '../src/connection/open-tunnel.js';
import { Tunnel } from '../src/connection/tunnel.js';
import { openDestination, type Destination } from '../src/destination.js';
import { PglandError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { InProcessBastion, keyPair, Relay, type KeyPair } from './support/bastion.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 6: the database reached through an SSH bastion (ssh2's Server, in this
// process), behind a TCP relay that can cut the network at will.

let db: TestDatabase;
let dbHost: string;
let dbPort: number;
let bastion: InProcessBastion;
let relay: Relay;
let dir: string;
const ed: KeyPair = keyPair('ed25519');
const rsa: KeyPair = keyPair('rsa');
const ecdsa: KeyPair = keyPair('ecdsa');
const encrypted: KeyPair = keyPair('ed25519', { passphrase: 'open sesame' });
const stranger: KeyPair = keyPair('ed25519');
const pkcs8 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pkcs8Pem = pkcs8.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const pkcs8Public = 'ssh-rsa ' + sshRsaBlob(pkcs8.publicKey.export({ format: 'jwk' })).toString('base64');
const BASTION_PASSWORD = 'jump: p@ss "word" #1';

function sshRsaBlob(jwk: { n?: string; e?: string }): Buffer {
  const mpint = (b64: string): Buffer => {
    let b = Buffer.from(b64, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return b;
  };
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
  return Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(jwk.e!)), str(mpint(jwk.n!))]);
}

beforeAll(async () => {
  db = await freshDatabase('tunnel');
  const u = new URL(db.url);
  dbHost = u.hostname.replace(/^\[|\]$/g, '');
  dbPort = Number(u.port || 5432);
  bastion = await new InProcessBastion(
    [
      { name: 'jump', keys: [ed.public, rsa.public, ecdsa.public, encrypted.public, pkcs8Public] },
      { name: 'pw', password: BASTION_PASSWORD },
    ],
    ['ed25519', 'rsa'],
  ).start();
  relay = await new Relay({ host: '127.0.0.1', port: bastion.port }).start();
  dir = mkdtempSync(join(tmpdir(), 'pgland-tunnel-'));
});

afterAll(async () => {
  await relay?.close();
  await bastion?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A destination config reaching the test database only through the relay and the bastion. */
function config(tunnel: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const u = new URL(db.url);
  return {
    host: dbHost,
    port: dbPort,
    database: u.pathname.slice(1),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    sslmode: 'disable',
    schema: 'landing',
    connect_timeout_ms: 5000,
    ssh_tunnel: {
      host: '127.0.0.1',
      port: relay.port,
      user: 'jump',
      private_key: ed.private,
      host_key_fingerprint: bastion.hostKeys[0]!.fingerprint,
      ...tunnel,
    },
    ...extra,
  };
}

async function throughTunnel(tunnel: Record<string, unknown>): Promise<string> {
  const cfg = resolveDestination(config(tunnel), {});
  const t = await openTunnelFor(cfg);
  try {
    const pool = await openPool(cfg, silentLogger(), 1, t);
    try {
      const { rows } = await pool.query<{ who: string }>('SELECT current_user AS who');
      return rows[0]!.who;
    } finally {
      await pool.end();
    }
  } finally {
    await t?.close();
  }
}

async function failure(p: Promise<unknown>): Promise<PglandError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PglandError);
  return err as PglandError;
}

/** n tiny records of a custom object (id and one integer): the tunnel carries rows, not width. */
function ticks(n: number, onRecord?: (i: number) => void, version = 1): Readable {
  return Readable.from(
    (function* () {
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        onRecord?.(i);
        lines.push(`{"id":"${i}","last_modified_at":"2026-01-0${version}T00:00:00Z","raw_data":{"n":${i * version}}}`);
        if (lines.length === 2000) yield lines.splice(0).join('\n') + '\n';
      }
      if (lines.length) yield lines.join('\n') + '\n';
    })(),
  );
}

const TICKS = { kind: 'custom' as const, object: 'ticks', provider: 'test', declared: { properties: { n: { type: 'integer' } } } };

describe('authentication to the bastion (issue 6)', () => {
  it('with an ed25519, an RSA and an ECDSA key (OpenSSH format)', async () => {
    const who = decodeURIComponent(new URL(db.url).username);
    expect(await throughTunnel({})).toBe(who);
    expect(await throughTunnel({ private_key: rsa.private })).toBe(who);
    expect(await throughTunnel({ private_key: ecdsa.private })).toBe(who);
  });

  it('with a key file, and an encrypted key and its passphrase (also from a file)', async () => {
    const keyFile = join(dir, 'id_ed25519');
    writeFileSync(keyFile, encrypted.private, { mode: 0o600 });
    const passFile = join(dir, 'passphrase');
    writeFileSync(passFile, 'open sesame\n');
    expect(await throughTunnel({ private_key: keyFile, passphrase: 'open sesame' })).toBeTruthy();
    expect(await throughTunnel({ private_key: undefined, private_key_file: keyFile, passphrase_file: passFile })).toBeTruthy();
  });

  it('a PKCS#8 RSA key ("BEGIN PRIVATE KEY") is converted and works', async () => {
    expect(pkcs8Pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await throughTunnel({ private_key: pkcs8Pem })).toBeTruthy();
    // An ed25519 PKCS#8 key is converted to OpenSSH's format too.
    const edPkcs8 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(loadPrivateKey(edPkcs8, undefined).key).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const jwk = createPrivateKey(edPkcs8).export({ format: 'jwk' });
    expect(jwk.crv).toBe('Ed25519');
  });

  it('a wrong or missing passphrase, or a public key, is a config error naming the key (never echoing it)', () => {
    const e1 = (() => {
      try {
        loadPrivateKey(encrypted.private, 'wrong');
      } catch (e) {
        return e as PglandError;
      }
    })();
    expect(e1).toMatchObject({ code: 'ssh_key_invalid', message: 'ssh_tunnel.passphrase does not decrypt ssh_tunnel.private_key' });
    const e2 = (() => {
      try {
        loadPrivateKey(encrypted.private, undefined);
      } catch (e) {
        return e as PglandError;
      }
    })();
    expect(e2).toMatchObject({ code: 'ssh_key_invalid', message: expect.stringContaining('no passphrase is given') });
    const e3 = (() => {
      try {
        loadPrivateKey(ed.public, undefined);
      } catch (e) {
        return e as PglandError;
      }
    })();
    expect(e3?.code).toBe('ssh_key_invalid');
    expect(e3?.message).not.toContain(ed.public.slice(20, 50));
  });

  it('with a password', async () => {
    expect(await throughTunnel({ user: 'pw', private_key: undefined, password: BASTION_PASSWORD })).toBeTruthy();
  });

  it('a key the bastion does not know, or a wrong password: bastion_auth_failed', async () => {
    const k = await failure(throughTunnel({ private_key: stranger.private }));
    expect(k).toMatchObject({ code: 'bastion_auth_failed', hint: expect.stringContaining('authorized_keys') });
    const p = await failure(throughTunnel({ user: 'pw', private_key: undefined, password: 'nope' }));
    expect(p).toMatchObject({ code: 'bastion_auth_failed', hint: expect.stringContaining('PasswordAuthentication') });
    expect(p.message).not.toContain('nope');
  });
});

describe('the bastion host key is pinned (issue 6)', () => {
  it('the pinned key is accepted, the fingerprint as OpenSSH prints it (with or without padding)', async () => {
    expect(bastion.hostKeys[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(await throughTunnel({ host_key_fingerprint: bastion.hostKeys[0]!.fingerprint + '=' })).toBeTruthy();
  });

  it("the pin may be of the bastion's other host key (its RSA key)", async () => {
    expect(await throughTunnel({ host_key_fingerprint: bastion.hostKeys[1]!.fingerprint })).toBeTruthy();
  });

  it('a wrong pin is refused before any login', async () => {
    const before = bastion.channels;
    const e = await failure(throughTunnel({ host_key_fingerprint: stranger.fingerprint }));
    expect(e.code).toBe('host_key_mismatch');
    expect(e.message).toContain(bastion.hostKeys[0]!.fingerprint);
    expect(e.message).toContain(`not the pinned ${stranger.fingerprint}`);
    expect(bastion.channels).toBe(before);
  });

  it('no pin: a load refuses without even connecting; check prints the fingerprint and how to pin it', async () => {
    const sshBefore = bastion.sshConnections;
    const e = await failure(openDestination(config({ host_key_fingerprint: undefined })));
    expect(e.code).toBe('host_key_unpinned');
    expect(e.hint).toContain('pgland check');
    expect(bastion.sshConnections).toBe(sshBefore);

    const cfgFile = join(dir, 'unpinned.json');
    writeFileSync(cfgFile, JSON.stringify(config({ host_key_fingerprint: undefined })));
    const r = await runCli(['check', '--config', cfgFile]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}SSH tunnel up .*presents host key SHA256:\S+ \(ssh-ed25519\), which is not pinned/);
    expect(r.stdout).toContain(`"host_key_fingerprint": "${bastion.hostKeys[0]!.fingerprint}"`);
    expect(r.stdout).toMatch(/SKIP {2}DNS and TCP reach/);
  });
});

describe('pgland check through the bastion (issue 6)', () => {
  it('passes every step, the tunnel first', async () => {
    const r = await runCheck(resolveDestination(config({}), {}));
    expect(r.steps.map((s) => [s.step, s.status])).toEqual([
      ['tunnel', 'pass'],
      ['reach', 'pass'],
      ['tls', 'warn'],
      ['auth', 'pass'],
      ['database', 'pass'],
      ['version', 'pass'],
      ['pooler', 'pass'],
      ['schema', 'pass'],
      ['temporary', 'pass'],
      ['write', 'pass'],
    ]);
    expect(r.steps[0]!.detail).toContain('matches the pin');
    expect(r.steps[1]!.detail).toBe(`the bastion reaches ${dbHost}:${dbPort}`);
  });

  it('maps bastion failures: unreachable, wrong pin, refused login, forwarding refused', async () => {
    const closed = await new Relay({ host: '127.0.0.1', port: 1 }).start();
    const port = closed.port;
    await closed.close();
    const unreachable = await runCheck(resolveDestination(config({ port }), {}));
    expect(unreachable.steps[0]).toMatchObject({ step: 'tunnel', status: 'fail', code: 'bastion_unreachable' });

    const mismatch = await runCheck(resolveDestination(config({ host_key_fingerprint: stranger.fingerprint }), {}));
    expect(mismatch.steps[0]).toMatchObject({ status: 'fail', code: 'host_key_mismatch', fix: expect.stringContaining('do not connect') });

    const auth = await runCheck(resolveDestination(config({ private_key: stranger.private }), {}));
    expect(auth.steps[0]).toMatchObject({ status: 'fail', code: 'bastion_auth_failed' });

    bastion.forwardAllowed = false;
    try {
      const fwd = await runCheck(resolveDestination(config({}), {}));
      expect(fwd.steps[0]!.status).toBe('pass');
      expect(fwd.steps[1]).toMatchObject({ step: 'reach', status: 'fail', code: 'tunnel_forward_failed' });
    } finally {
      bastion.forwardAllowed = true;
    }
  });

  it('a key that cannot be decrypted is a config error: check exits 2 before connecting', async () => {
    const cfgFile = join(dir, 'badkey.json');
    writeFileSync(cfgFile, JSON.stringify(config({ private_key: encrypted.private, passphrase: 'not it' })));
    const before = bastion.sshConnections;
    const r = await runCli(['check', '--config', cfgFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ssh_tunnel.passphrase does not decrypt ssh_tunnel.private_key');
    expect(r.stderr).not.toContain('not it');
    expect(bastion.sshConnections).toBe(before);
  });

  it("the database refusing the bastion is the database's error, named as such", async () => {
    const r = await runCheck(resolveDestination(config({}, { port: 1 }), {}));
    expect(r.steps[0]!.status).toBe('pass');
    expect(r.steps[1]).toMatchObject({ step: 'reach', status: 'fail', code: 'tunnel_forward_failed', detail: expect.stringContaining(`${dbHost}:1`) });
  });
});

describe('loading through the tunnel (issue 6)', () => {
  let dest: Destination;
  beforeAll(async () => {
    dest = await openDestination(config({}, { batch_size: 20_000 }), { poolSize: 3 });
  });
  afterAll(async () => {
    await dest?.close();
  });

  it('one SSH connection carries every pool connection, and 200k rows land', async () => {
    const sshBefore = bastion.sshConnections;
    const held = await Promise.all([dest.pool.connect(), dest.pool.connect(), dest.pool.connect()]);
    expect(bastion.openChannels).toBeGreaterThanOrEqual(3);
    for (const c of held) c.release();
    const result = await dest.load({ ...TICKS, customerId: 'big', input: ticks(200_000) });
    expect(result.error?.message).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ rowsRead: 200_000, inserted: 200_000 });
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, sum(n)::bigint AS s FROM landing.custom_ticks WHERE _pgland_customer_id = 'big'`,
    );
    expect(rows[0]).toEqual({ n: 200_000, d: 200_000, s: String((199_999 * 200_000) / 2) });
    expect(bastion.sshConnections).toBe(sshBefore); // the pool's connections were channels of the one tunnel
  });

  it('the tunnel cut mid-load: the batch rolls back, the tunnel comes back, the run completes with exactly the expected rows', async () => {
    const sshBefore = relay.connections;
    let cut = false;
    const input = ticks(
      120_000,
      (i) => {
        if (i === 70_000 && !cut) {
          cut = true;
          relay.kill();
        }
      },
      2,
    );
    const result = await dest.load({ ...TICKS, customerId: 'cut', input });
    expect(cut).toBe(true);
    expect(result.error?.message).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ rowsRead: 120_000, inserted: 120_000 });
    expect(relay.connections).toBeGreaterThan(sshBefore); // a new SSH connection after the cut
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, sum(n)::bigint AS s FROM landing.custom_ticks WHERE _pgland_customer_id = 'cut'`,
    );
    expect(rows[0]).toEqual({ n: 120_000, d: 120_000, s: String(119_999 * 120_000) });
  });
});

describe('tunnel loss and keepalives (issue 6)', () => {
  it('a silent bastion is detected by keepalives, and the next connection re-establishes the tunnel', async () => {
    const cfg = resolveDestination(config({ keepalive_interval_ms: 200, keepalive_count_max: 2 }), {});
    const tunnel = (await openTunnelFor(cfg))!;
    try {
      const pool = await openPool(cfg, silentLogger(), 2, tunnel);
      pool.on('error', () => undefined);
      try {
        await pool.query('SELECT 1');
        relay.freeze();
        const lost = await pool.query('SELECT pg_sleep(3)').then(
          () => null,
          (e: unknown) => e,
        );
        expect((lost as Error)?.message).toMatch(/Connection terminated unexpectedly|timeout/i);
        const { rows } = await pool.query<{ x: number }>('SELECT 42 AS x');
        expect(rows[0]!.x).toBe(42);
        expect(tunnel.reconnects).toBe(1);
      } finally {
        await pool.end();
      }
    } finally {
      await tunnel.close();
    }
  });

  it('a bastion that stays away: bounded retries, then the bastion error', async () => {
    const gone = await new Relay({ host: '127.0.0.1', port: bastion.port }).start();
    const cfg = resolveDestination(config({ port: gone.port, reconnect_attempts: 2 }), {});
    const tunnel = new Tunnel(cfg.ssh_tunnel!, { target: { host: dbHost, port: dbPort } });
    await tunnel.open();
    await gone.close(); // the bastion's address now refuses connections
    const started = Date.now();
    const e = await failure(tunnel.forward());
    expect(e.code).toBe('bastion_unreachable');
    // Two retries with jittered backoff (100–200 ms, then 200–400 ms): bounded, not immediate.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(5000);
    await tunnel.close();
  });

  it("fingerprints are OpenSSH's: SHA256 of the key blob, unpadded base64", () => {
    expect(fingerprintOf(Buffer.from('abc'))).toBe('SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0');
  });
});
