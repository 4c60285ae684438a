import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from './support/cli.js';
import { until } from './support/until.js';

const KEY = randomBytes(32).toString('hex');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pgland serve (issue 7)', () => {
  it('refuses to start without what it needs, naming the setting and not its value (exit 2)', async () => {
    const noKey = await runCli(['serve', '--port', '0'], { env: { PGLAND_SECRET_KEY: '' } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/PGLAND_SECRET_KEY is not set/);
    const shortKey = await runCli(['serve', '--port', '0'], { env: { PGLAND_SECRET_KEY: 'hunter2-hunter2' } });
    expect(shortKey.code).toBe(2);
    expect(shortKey.stderr).toMatch(/must be 32 bytes/);
    expect(shortKey.stderr).not.toContain('hunter2');
    const worker = await runCli(['serve', '--worker'], { env: { PGLAND_SECRET_KEY: KEY, PGLAND_CONTROL_URL: '' } });
    expect(worker.code).toBe(2);
    expect(worker.stderr).toMatch(/a worker needs the control database/);
    const open = await runCli(['serve', '--host', '0.0.0.0', '--control-url', 'postgres://u:p@127.0.0.1:1/x'], {
      env: { PGLAND_SECRET_KEY: KEY, PGLAND_API_TOKEN: '' },
    });
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/without an API token/);
    const badPort = await runCli(['serve', '--port', 'eighty'], { env: { PGLAND_SECRET_KEY: KEY } });
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/PGLAND_SERVE_PORT/);
  });

  it('serves with an embedded control database, and stops on SIGTERM', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'pgland-serve-'));
    chmodSync(cwd, 0o755); // the embedded server may run as another user (root cannot run PostgreSQL)
    dirs.push(cwd);
    const s = spawnCli(['serve', '--port', '0', '--data-dir', join(cwd, 'control')], { env: { PGLAND_SECRET_KEY: KEY, PGLAND_LOG_LEVEL: 'warn' } });
    let stderr = '';
    s.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await until(
      'pgland serve listening',
      () => {
        if (s.child.exitCode !== null) throw new Error(`pgland serve did not start: ${stderr}`);
        return /listening on (http:\S+)/.test(stderr);
      },
      90_000,
    );
    const url = /listening on (http:\S+)/.exec(stderr)![1]!;
    const ready = await fetch(url + '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { control_db: 'ok', jobs: 'ok' } });
    // Listening on 127.0.0.1 without a token: the API answers.
    expect((await fetch(url + '/destinations')).status).toBe(200);
    s.child.kill('SIGTERM');
    const done = await s.done;
    expect(done.code, done.stderr).toBe(0);
    // Nothing but the address: no warning as the pools close and the embedded server stops (issue 16).
    expect(done.stderr).toBe(`pgland serve: listening on ${url}\n`);
  });
});
