import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import type pg from 'pg';
import { ROOT } from './doc-blocks.js';

/**
 * Where a docs test runs a document's commands, as a reader would from a
 * folder of their own: a temporary folder holding `examples/` (a link to the
 * checkout's), with `pgland` and `target-pgland` on the PATH as the built CLI
 * (as after `npm install -g .`; `npm test` builds first, a single file needs
 * `npm run build`).
 */
export interface DocShell {
  cwd: string;
  env: NodeJS.ProcessEnv;
  write(name: string, text: string): void;
}

export function docShell(env: NodeJS.ProcessEnv = {}): DocShell {
  const main = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const cwd = mkdtempSync(join(tmpdir(), 'pgland-docs-'));
  const bin = join(cwd, '.bin');
  mkdirSync(bin);
  for (const [name, file] of [
    ['pgland', main],
    ['target-pgland', join(ROOT, 'dist', 'src', 'cli', 'target-pgland.js')],
  ] as const) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(file)} "$@"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  for (const dir of ['examples', 'sql']) symlinkSync(join(ROOT, dir), join(cwd, dir));
  return {
    cwd,
    env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, HOME: cwd, LANG: 'C.UTF-8', PGLAND_LOG_LEVEL: 'warn', ...env },
    write: (name, text) => writeFileSync(join(cwd, name), text),
  };
}

/**
 * The environment that points a config file's connection keys at the test's
 * database: PGLAND_* variables win over the file's keys (cli.md, "Which
 * database"), so a document's own `dest.json` (naming db.example.com) is used
 * as written.
 */
export function envFor(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    PGLAND_HOST: u.hostname,
    PGLAND_PORT: u.port || '5432',
    PGLAND_DATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGLAND_USER: decodeURIComponent(u.username),
    ...(u.password ? { PGLAND_PASSWORD: decodeURIComponent(u.password) } : {}),
    PGLAND_SSLMODE: 'disable',
  };
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one block with bash (-e, pipefail) in the shell's folder. Inside a
 * checkout `npx pgland` runs the checkout's pgland: here `npx` is that
 * `pgland` on the PATH, so that no package is ever fetched.
 */
export function runShell(shell: DocShell, text: string, options: { timeoutMs?: number; input?: string } = {}): Promise<ShellResult> {
  const script = ['set -eo pipefail', 'npx() { [ "$1" = pgland ] || { echo "npx $1: not in a docs test" >&2; return 127; }; shift; pgland "$@"; }', text].join(
    '\n',
  );
  const child = spawn('bash', ['-c', script], { cwd: shell.cwd, env: shell.env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  return outcome(child, options.timeoutMs ?? 60_000);
}

/** What a child printed and how it ended; killed past the deadline. */
function outcome(child: ChildProcess, timeoutMs: number): Promise<ShellResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Numbers, run ids and times of a summary replaced by placeholders, so that a
 * document's example output compares with what pgland printed.
 */
export function shapeOf(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/\d[\d,.]*/g, 'N')
    .replace(/[ \t]+$/gm, '')
    .trim();
}

const ENTRY = join(ROOT, 'src', 'index.ts');
const TSX = import.meta.resolve('tsx');

/**
 * Runs a document's TypeScript snippet as a reader's module would, with one
 * change: `from 'pgland'` is this checkout's source, as the installed package
 * would be.
 */
export function runSnippet(shell: DocShell, code: string, env: NodeJS.ProcessEnv = {}): Promise<ShellResult> {
  const file = join(shell.cwd, `snippet-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(file, code.replace(/from 'pgland'/g, `from ${JSON.stringify(pathToFileURL(ENTRY).href)}`));
  const child = spawn(process.execPath, ['--import', TSX, file], { cwd: shell.cwd, env: { ...shell.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return outcome(child, 60_000);
}

/**
 * A validator of an API request body, from docs/openapi.json (the document the
 * service serves, kept equal to it by test/service-api.test.ts).
 */
export function requestBodyValidator(path: string, method = 'post'): ValidateFunction {
  const openapi = JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')) as object;
  const pointer = ['paths', path, method, 'requestBody', 'content', 'application/json', 'schema']
    .map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1'))
    .join('/');
  return new Ajv({ strict: false, validateFormats: false }).addSchema(openapi, 'openapi.json').compile({ $ref: `openapi.json#/${pointer}` });
}

/**
 * Runs a document's statements in a transaction rolled back at the end: the
 * roles they create ("pgland", "pgland_reader") are cluster-wide, and must not
 * stay on the test server.
 */
export async function inRolledBackTransaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await body(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
