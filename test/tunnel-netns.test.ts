import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBastion, keyPair } from './support/bastion.js';
import type { CliResult } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 6: pgland runs in a network namespace of its own, from which the
// database cannot be reached at all; only the bastion (in this process, on
// the host side of a veth pair) can reach it. Needs root and `ip netns`.

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const id = randomBytes(3).toString('hex');
const NS = `pgland-${id}`;
const HOST_IF = `pglh${id}`;
const NS_IF = `pgln${id}`;
const NET = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2, 4), 16)}`;
const HOST_IP = `${NET}.1`;
const NS_IP = `${NET}.2`;

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Root, and a namespace can really be made (containers often forbid it): try it. */
function probeNetns(): string | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  if (spawnSync('ip', ['-V']).error) return 'the ip command (iproute2) is not installed';
  const add = ip('netns', 'add', NS);
  if (!add.ok) return `ip netns add failed: ${add.err}`;
  for (const args of [
    ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF],
    ['link', 'set', NS_IF, 'netns', NS],
    ['addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF],
    ['link', 'set', HOST_IF, 'up'],
    ['netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF],
    ['netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up'],
    ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up'],
  ]) {
    const r = ip(...args);
    if (!r.ok) {
      cleanup();
      return `ip ${args.join(' ')} failed: ${r.err}`;
    }
  }
  return undefined;
}

function cleanup(): void {
  ip('link', 'del', HOST_IF);
  ip('netns', 'del', NS);
}

/** The CLI, run inside the namespace. */
function cliInNamespace(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PGLAND_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const skipWhy = probeNetns();
if (skipWhy) console.warn(`tunnel-netns.test.ts skipped: ${skipWhy}`);

describe.skipIf(!!skipWhy)(`the database reachable only through the bastion (issue 6)${skipWhy ? ` [skipped: ${skipWhy}]` : ''}`, () => {
  let db: TestDatabase;
  let bastion: InProcessBastion;
  let dir: string;
  const key = keyPair('ed25519');

  beforeAll(async () => {
    db = await freshDatabase('netns');
    bastion = await new InProcessBastion([{ name: 'jump', keys: [key.public] }]).start(HOST_IP);
    dir = mkdtempSync(join(tmpdir(), 'pgland-netns-'));
  });

  afterAll(async () => {
    await bastion?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    cleanup();
  });

  function writeConfig(name: string, tunnel: boolean): string {
    const u = new URL(db.url);
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        // As the bastion sees it; from inside the namespace this address is the namespace's own loopback.
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: Number(u.port || 5432),
        database: u.pathname.slice(1),
        user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
        sslmode: 'disable',
        schema: 'landing',
        connect_timeout_ms: 3000,
        ...(tunnel
          ? {
              ssh_tunnel: { host: HOST_IP, port: bastion.port, user: 'jump', private_key: key.private, host_key_fingerprint: bastion.hostKeys[0]!.fingerprint },
            }
          : {}),
      }),
    );
    return file;
  }

  it('without the tunnel pgland cannot reach the database; through it, check passes and a load lands', async () => {
    const direct = await cliInNamespace(['check', '--config', writeConfig('direct.json', false), '--json']);
    expect(direct.code).toBe(1);
    const report = JSON.parse(direct.stdout) as { steps: { step: string; status: string; code?: string }[] };
    expect(report.steps[0]).toMatchObject({ step: 'reach', status: 'fail' });
    expect(['connection_refused', 'connect_timeout', 'host_unreachable', 'dns_failure']).toContain(report.steps[0]!.code);

    const tunneled = writeConfig('tunnel.json', true);
    const check = await cliInNamespace(['check', '--config', tunneled]);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/PASS {2}SSH tunnel up/);

    const input = join(dir, 'contacts.ndjson');
    writeFileSync(
      input,
      Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: `c${i}`, last_modified_at: '2026-01-01T00:00:00Z', data: { first_name: `F${i}` } })).join(
        '\n',
      ) + '\n',
    );
    const load = await cliInNamespace([
      'load',
      '--config',
      tunneled,
      '--provider',
      'hubspot',
      '--customer',
      'ns',
      '--object',
      'crm_contacts',
      '--input',
      input,
      '--json',
    ]);
    expect(load.stderr).toBe('');
    expect(load.code).toBe(0);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = 'ns'`);
    expect(rows[0].n).toBe(500);
    expect(bastion.channels).toBeGreaterThan(0);
  });
});
