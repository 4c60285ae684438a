import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressLine, summary } from '../src/cli/progress.js';
import { zeroCounts } from '../src/load/runs.js';
import { createLogger, stderrLines, silentLogger } from '../src/log.js';
import { openControlDb } from '../src/service/control/control-db.js';
import { openDestination } from '../src/index.js';
import { runCli, spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, streamOf } from './support/records.js';
import { until } from './support/until.js';

// Issue 16: the newcomer's path without a stumble.

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await freshDatabase('newcomer');
  dir = mkdtempSync(join(tmpdir(), 'pgland-newcomer-'));
  // An embedded server started in here may run as another user (when the tests run as root).
  chmodSync(dir, 0o755);
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The sockets of the connections a pool opens from now on. */
function watchSockets(pool: import('pg').Pool): Socket[] {
  const sockets: Socket[] = [];
  pool.on('connect', (c) => sockets.push((c as unknown as { connection: { stream: Socket } }).connection.stream));
  return sockets;
}

/** Three connections at once: the pool opens at least two new ones. */
async function useThree(pool: import('pg').Pool): Promise<void> {
  const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
  for (const c of clients) c.release();
}

describe('no warning when a successful run stops its embedded server (issue 16)', () => {
  it('a destination is closed only once every connection of its pool is closed', async () => {
    // pg's pool.end() resolves before the sockets close; a server stopped then
    // terminated the backends still reading, and each said 57P01 as a warning.
    const dest = await openDestination(db.config({ schema: 'closing' }));
    const sockets = watchSockets(dest.pool);
    await useThree(dest.pool);
    await dest.close();
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect(sockets.map((s) => s.destroyed)).toEqual(sockets.map(() => true));
  });

  it('so is the control database', async () => {
    const ctl = await openControlDb({ url: db.url, dataDir: join(dir, 'unused'), log: silentLogger() });
    const sockets = watchSockets(ctl.pool);
    await useThree(ctl.pool);
    await ctl.close();
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect(sockets.map((s) => s.destroyed)).toEqual(sockets.map(() => true));
  });

  it('pgland load on the embedded server writes nothing to stderr', async () => {
    const cwd = mkdtempSync(join(dir, 'load-'));
    chmodSync(cwd, 0o755);
    const r = await runCli(['load', '--provider', 'salesforce', '--customer', 'acme', '--object', 'crm_contacts', '--input', '-'], {
      cwd,
      env: { PGLAND_DATABASE_URL: '', PGLAND_HOST: '' },
      input: ndjson(Array.from({ length: 30 }, (_, i) => contact(i))),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/inserted +30\n/);
  });
});

describe('logs (issue 16)', () => {
  it('keeps an error given as { message, code } as it is: no type, no empty stack', () => {
    const lines: string[] = [];
    const log = createLogger({ pretty: false, output: { write: (t) => lines.push(t) } });
    log.warn({ err: { message: 'terminating connection', code: '57P01' } }, 'idle connection lost');
    log.error({ err: new Error('boom') }, 'failed');
    const [warn, error] = lines.map((l) => JSON.parse(l) as { err: Record<string, unknown> });
    expect(warn!.err).toEqual({ message: 'terminating connection', code: '57P01' });
    expect(error!.err).toMatchObject({ type: 'Error', message: 'boom', stack: expect.stringContaining('boom') });
  });

  it('on a terminal, one line per entry, and a log line never starts at the end of the progress line', () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
    const counts = { ...zeroCounts(), batches: 13, rowsRead: 300_000, inserted: 300_000 };
    const result = { runId: 'r', status: 'succeeded' as const, table: 'crm_contacts', counts, durationMs: 2_000, batchesCopiedDirect: 0 };
    try {
      const progress = progressLine({ isTTY: true, lines: stderrLines });
      const log = createLogger({ pretty: true, level: 'info' });
      progress.update({ ...counts, batches: 12, rowsRead: 280_000 });
      log.info({ counts }, 'run finished');
      progress.update(counts);
      progress.done(result);
    } finally {
      process.stderr.write = write;
    }
    const text = written.join('');
    const lines = text.split('\n');
    // The log entry is one line of its own, after the progress line ended.
    const logLine = lines.findIndex((l) => l.includes('run finished'));
    expect(lines[logLine]).toMatch(/^\[[\d:.]+\] .*INFO.*run finished/);
    expect(lines[logLine - 1]).toMatch(/280,000 rows read/);
    expect(text).toMatch(/\n$/);
    // The last progress figures are the summary's: one rate, one way of writing numbers.
    const lastProgress = text.slice(text.lastIndexOf('\r'));
    const shown = summary(result, 'pgland');
    expect(lastProgress).toMatch(/300,000 rows read, 150,000 rows\/s, 13 batches/);
    expect(shown).toMatch(/\(150,000 rows\/s\)/);
    expect(shown).toMatch(/read +300,000 lines in 13 batches/);
    expect(shown).toMatch(/inserted +300,000\n/);
  });
});

describe('pgland load on a terminal (issue 16)', () => {
  const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

  it.skipIf(!script)('shows the progress and the summary, not the run logged again', async () => {
    const config = join(dir, 'tty.json');
    const input = join(dir, 'tty.ndjson');
    writeFileSync(config, JSON.stringify(db.config({ schema: 'tty', batch_size: 1000 })));
    writeFileSync(input, ndjson(Array.from({ length: 2500 }, (_, i) => contact(i))));
    const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const argv = [
      process.execPath,
      '--import',
      import.meta.resolve('tsx'),
      main,
      'load',
      '--config',
      config,
      '--provider',
      'p',
      '--customer',
      'c',
      '--object',
      'crm_contacts',
      '--input',
      input,
    ];
    // script(1) gives the command a terminal; its output is what the terminal showed.
    const shown = await promisify(execFile)(script!, ['-qec', argv.map((a) => `'${a}'`).join(' '), '/dev/null'], {
      env: { ...process.env, PGLAND_LOG_LEVEL: '' },
    }).then((r) => r.stdout.replace(/\r\n/g, '\n'));
    expect(shown).not.toMatch(/run started|run finished|"rowsRead"/);
    // The progress line ends, on the summary's figures, before the summary starts.
    const rate = /\((\d[\d,]*) rows\/s\)/.exec(shown)?.[1];
    expect(shown).toMatch(new RegExp(`\\r  2,500 rows read, ${rate} rows/s, 3 batches(\\x1b\\[K)?\\n+run [0-9a-f-]{36}: succeeded`));
    expect(shown).toMatch(/read +2,500 lines in 3 batches/);
  });
});

describe('checks come first (issue 16)', () => {
  const env = { PGLAND_DATABASE_URL: '', PGLAND_HOST: '' };

  it('an unknown object is refused (exit 2) before an embedded server starts', async () => {
    const cwd = mkdtempSync(join(dir, 'unknown-'));
    const r = await runCli(['load', '--provider', 'salesforce', '--customer', 'acme', '--object', 'crm_nothing', '--input', '-'], { cwd, env, input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"crm_nothing" is not a common object/);
    expect(existsSync(join(cwd, '.pgland'))).toBe(false);
    const plan = await runCli(['plan', '--object', 'crm_nothing'], { cwd, env });
    expect(plan.code).toBe(2);
    expect(existsSync(join(cwd, '.pgland'))).toBe(false);
  });

  it('--match on a column the object lacks is a usage error listing the usable columns', async () => {
    const cwd = mkdtempSync(join(dir, 'match-'));
    const args = ['load', '--provider', 'salesforce', '--customer', 'acme', '--object', 'crm_accounts', '--input', '-'];
    const r = await runCli([...args, '--write', 'enrich', '--match', 'email'], { cwd, env, input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/match column "email" is not a column of crm_accounts/);
    expect(r.stderr).toMatch(/use id or one of: name, .*industry/);
    expect(existsSync(join(cwd, '.pgland'))).toBe(false);
    // upsert matches on the key only.
    const upsert = await runCli([...args, '--match', 'name'], { cwd, env, input: '' });
    expect(upsert.code).toBe(2);
    expect(upsert.stderr).toMatch(/matches on the primary key \(id\) only/);
  });

  it('the library refuses it before a run starts, too', async () => {
    const dest = await openDestination(db.config({ schema: 'match_lib' }));
    try {
      await expect(
        dest.load({ kind: 'common', object: 'crm_accounts', provider: 'p', customerId: 'c', write: 'update', matchColumn: 'email', input: streamOf([]) }),
      ).rejects.toMatchObject({ code: 'config_invalid' });
      expect(await dest.runs()).toEqual([]);
    } finally {
      await dest.close();
    }
  });
});

describe('pgland plan prints only what would change (issue 16)', () => {
  it('an unchanged table is up to date, and a run does not record it again', async () => {
    const dest = await openDestination(db.config({ schema: 'plan_same' }));
    try {
      await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'p', customerId: 'c', input: streamOf([contact(1)]) });
      const plan = await dest.plan({ kind: 'common', object: 'crm_contacts', provider: 'p' });
      expect(plan).toMatchObject({ action: 'none', steps: [] });
      const before = await db.pool.query(`SELECT evolved_at FROM plan_same._pgland_tables WHERE table_name = 'crm_contacts'`);
      await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'p', customerId: 'c', input: streamOf([contact(2)]) });
      const after = await db.pool.query(`SELECT evolved_at FROM plan_same._pgland_tables WHERE table_name = 'crm_contacts'`);
      expect(after.rows[0].evolved_at).toEqual(before.rows[0].evolved_at);
    } finally {
      await dest.close();
    }
    const config = join(dir, 'plan.json');
    writeFileSync(config, JSON.stringify(db.config({ schema: 'plan_same' })));
    const r = await runCli(['plan', '--config', config, '--object', 'crm_contacts']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('-- plan_same.crm_contacts: up to date\n');
  });
});

describe('Ctrl-C during a merged load (issue 16)', () => {
  it('nothing is committed after the signal: the batch merging then rolls back', async () => {
    const schema = 'cancel_merged';
    const app = 'pgland-cancel-merged';
    const config = join(dir, `${schema}.json`);
    writeFileSync(config, JSON.stringify(db.config({ schema, batch_size: 10, application_name: app })));
    const tenantArgs = ['--provider', 'p', '--customer', 'c', '--object', 'crm_contacts'];
    const seed = await runCli(['load', '--config', config, ...tenantArgs], { input: ndjson(range(50).map((n) => contact(n, 1))) });
    expect(seed.code, seed.stderr).toBe(0);

    // The test holds a row of the third batch: its merge waits on the lock, in flight when the signal comes.
    const holder = await db.pool.connect();
    let stderr = '';
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${schema}.crm_contacts WHERE id = $1 FOR UPDATE`, [contact(25).id]);
      const load = spawnCli(['load', '--config', config, ...tenantArgs], { input: ndjson(range(50).map((n) => contact(n, 2))) });
      load.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await until('the third batch waiting on the held row', async () => {
        const { rows } = await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app]);
        return rows.length > 0;
      });
      const before = await runRow(schema);
      expect(before).toMatchObject({ status: 'running', batches: 2 });
      load.child.kill('SIGINT');
      await until('the loader taking the signal', () => /cancelling/.test(stderr));
      await holder.query('ROLLBACK');
      const done = await load.done;
      expect(done.code).toBe(1);
      expect(await runRow(schema)).toMatchObject({ run_id: before.run_id, status: 'cancelled', batches: 2 });
      const landed = await db.pool.query(`SELECT count(*)::int AS n FROM ${schema}.crm_contacts WHERE last_name LIKE '% v2'`);
      expect(landed.rows[0].n).toBe(20);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
  });
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function runRow(schema: string): Promise<{ run_id: string; status: string; batches: number }> {
  const { rows } = await db.pool.query(`SELECT run_id, status, batches::int FROM ${schema}._pgland_runs ORDER BY started_at DESC LIMIT 1`);
  return rows[0];
}
