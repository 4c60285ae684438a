import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDestination } from '../src/config/resolve.js';
import { runCheck } from '../src/connection/check.js';
import { openDestination, type Destination } from '../src/destination.js';
import { PglandError } from '../src/errors.js';
import { Relay, Sshd, sshdProbe } from './support/bastion.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 6: OpenSSH's sshd as the bastion, started by the test on a free port
// with a temporary host key and config, keys made by ssh-keygen as a user
// would make them. Password login is covered by the in-process bastion
// (tunnel-inprocess.test.ts): sshd checks passwords against the system's
// users, and a test must not create or change one.

const probe = sshdProbe();
if (!probe.ok) console.warn(`tunnel-sshd.test.ts skipped: ${probe.why}`);

describe.skipIf(!probe.ok)(`through OpenSSH's sshd (issue 6)${probe.ok ? '' : ` [skipped: ${probe.why}]`}`, () => {
  let db: TestDatabase;
  let sshd: Sshd;
  let relay: Relay;
  let keys: string;
  const key = (name: string): string => readFileSync(join(keys, name), 'utf8');

  beforeAll(async () => {
    keys = mkdtempSync(join(tmpdir(), 'pgland-keys-'));
    const gen = (name: string, args: string[]) => execFileSync('ssh-keygen', ['-q', '-C', name, '-f', join(keys, name), ...args]);
    gen('id_ed25519', ['-t', 'ed25519', '-N', '']);
    gen('id_ecdsa', ['-t', 'ecdsa', '-b', '256', '-N', '']);
    gen('id_rsa_pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '']);
    gen('id_rsa_pkcs8', ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8', '-N', '']);
    gen('id_locked', ['-t', 'ed25519', '-a', '4', '-N', 'a passphrase']);
    gen('id_stranger', ['-t', 'ed25519', '-N', '']);
    const pubs = ['id_ed25519', 'id_ecdsa', 'id_rsa_pem', 'id_rsa_pkcs8', 'id_locked'].map((n) => key(n + '.pub').trim());
    sshd = await new Sshd((probe as { path: string }).path, pubs).start();
    relay = await new Relay({ host: '127.0.0.1', port: sshd.port }).start();
    db = await freshDatabase('sshd');
  });

  afterAll(async () => {
    await relay?.close();
    await sshd?.stop();
    await db?.drop();
    if (keys) rmSync(keys, { recursive: true, force: true });
  });

  function config(tunnel: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      url: db.url,
      sslmode: 'disable',
      schema: 'landing',
      connect_timeout_ms: 10_000,
      ssh_tunnel: {
        host: '127.0.0.1',
        port: relay.port,
        user: 'root',
        private_key: join(keys, 'id_ed25519'),
        host_key_fingerprint: sshd.fingerprint,
        ...tunnel,
      },
      ...extra,
    };
  }

  async function who(tunnel: Record<string, unknown>): Promise<string> {
    const dest = await openDestination(config(tunnel));
    try {
      return (await dest.pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    } finally {
      await dest.close();
    }
  }

  it('the fingerprint ssh-keygen -lf prints is the one pgland pins', () => {
    expect(sshd.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('logs in with ed25519, ECDSA, RSA (PEM) and RSA (PKCS#8, converted) keys, and an encrypted key', async () => {
    const expected = decodeURIComponent(new URL(db.url).username);
    for (const k of ['id_ed25519', 'id_ecdsa', 'id_rsa_pem', 'id_rsa_pkcs8']) expect(await who({ private_key: join(keys, k) }), k).toBe(expected);
    expect(key('id_rsa_pkcs8')).toMatch(/BEGIN PRIVATE KEY/);
    expect(await who({ private_key: key('id_locked'), passphrase: 'a passphrase' })).toBe(expected);
  });

  it('a wrong pin is refused; an unknown key is refused by sshd', async () => {
    const wrong = await openDestination(config({ host_key_fingerprint: 'SHA256:' + 'x'.repeat(43) })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(wrong).toBeInstanceOf(PglandError);
    expect((wrong as PglandError).code).toBe('host_key_mismatch');
    const stranger = await openDestination(config({ private_key: join(keys, 'id_stranger') })).then(
      () => null,
      (e: unknown) => e,
    );
    expect((stranger as PglandError).code).toBe('bastion_auth_failed');
  });

  it('pgland check passes every step through sshd', async () => {
    const r = await runCheck(resolveDestination(config({}), {}));
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r.steps[0]).toMatchObject({ step: 'tunnel', status: 'pass' });
  });

  describe('loading', () => {
    let dest: Destination;
    beforeAll(async () => {
      dest = await openDestination(config({}, { batch_size: 20_000 }), { poolSize: 2 });
    });
    afterAll(async () => {
      await dest?.close();
    });

    const TICKS = { kind: 'custom' as const, object: 'ticks', provider: 'test', declared: { properties: { n: { type: 'integer' } } } };
    function ticks(n: number, onRecord?: (i: number) => void): Readable {
      return Readable.from(
        (function* () {
          const lines: string[] = [];
          for (let i = 0; i < n; i++) {
            onRecord?.(i);
            lines.push(`{"id":"${i}","last_modified_at":"2026-01-01T00:00:00Z","raw_data":{"n":${i}}}`);
            if (lines.length === 2000) yield lines.splice(0).join('\n') + '\n';
          }
          if (lines.length) yield lines.join('\n') + '\n';
        })(),
      );
    }

    it('200k rows, with the connection to sshd cut mid-load: exactly the expected rows', async () => {
      const before = relay.connections;
      let cut = false;
      const result = await dest.load({
        ...TICKS,
        customerId: 'sshd',
        input: ticks(200_000, (i) => {
          if (i === 110_000 && !cut) {
            cut = true;
            relay.kill();
          }
        }),
      });
      expect(cut).toBe(true);
      expect(result.error?.message).toBeUndefined();
      expect(result.status).toBe('succeeded');
      expect(result.counts).toMatchObject({ rowsRead: 200_000, inserted: 200_000 });
      expect(relay.connections).toBeGreaterThan(before);
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM landing.custom_ticks WHERE _pgland_customer_id = 'sshd'`,
      );
      expect(rows[0]).toEqual({ n: 200_000, d: 200_000 });
    });
  });
});
