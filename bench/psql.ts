import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * psql from the system (the postgresql-client package): on PATH, else under
 * the Debian/Ubuntu versioned folders. The baselines need the real client, so
 * there is no fallback: the message says what to install.
 */
export function findPsql(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'psql'))) return join(dir, 'psql');
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, 'bin', 'psql'))) return join(root, v, 'bin', 'psql');
  }
  throw new Error(
    'psql not found on PATH nor under /usr/lib/postgresql/*/bin: the baselines A and B need it.\n' +
      'Install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client), or run with --contenders d,pgland.',
  );
}

/** "psql (PostgreSQL) 15.20 …", for the report. */
export function psqlVersion(psql: string): string {
  return execFileSync(psql, ['--version'], { encoding: 'utf8' }).trim();
}

/** Runs a psql script (given on stdin) against `url`; resolves with the wall time in milliseconds. */
export function runPsql(psql: string, url: string, script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url], {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, PGOPTIONS: '-c TimeZone=UTC' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(performance.now() - started);
      else reject(new Error(`psql exited with ${code}: ${stderr.trim().slice(-2000)}`));
    });
    child.stdin.end(script);
  });
}

/** A single-quoted SQL/psql literal. */
export function literal(text: string): string {
  return "'" + text.replace(/'/g, "''") + "'";
}
