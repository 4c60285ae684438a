import type { Command } from 'commander';
import { PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS, runExec, runQuery, type ActionOptions } from '../query/actions.js';
import { connectSource } from '../read/source.js';
import { EXIT } from './exit.js';
import { resolveTarget } from './target.js';

export interface QueryFlags {
  config?: string;
  sql: string;
  param: string[];
  paramsJson?: string;
  timeoutMs?: string;
  maxBytes?: string;
}

function paramsOf(flags: QueryFlags): unknown[] {
  if (flags.paramsJson === undefined) return flags.param;
  if (flags.param.length > 0)
    throw new PglandError('config_invalid', 'give --param or --params-json, not both', { hint: '--params-json takes every parameter as one JSON array' });
  let value: unknown;
  try {
    value = JSON.parse(flags.paramsJson);
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value))
    throw new PglandError('config_invalid', '--params-json must be a JSON array', { hint: 'e.g. --params-json \'["active", 42, null]\'' });
  return value as unknown[];
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new PglandError('config_invalid', `${flag} must be a positive whole number (got ${JSON.stringify(v.slice(0, 20))})`);
  return n;
}

async function runAction(action: 'query' | 'exec', flags: QueryFlags, log: Logger): Promise<number> {
  const params = paramsOf(flags);
  const timeoutMs = positiveInt('--timeout-ms', flags.timeoutMs);
  const maxBytes = positiveInt('--max-bytes', flags.maxBytes);
  const options: ActionOptions = { ...(timeoutMs ? { timeoutMs } : {}), ...(maxBytes ? { maxBytes } : {}) };
  const target = await resolveTarget(flags.config, log);
  try {
    // Two connections: the action's, and one to cancel it with past the result cap.
    const conn = await connectSource(target.config, { log, env: process.env, poolSize: 2 });
    try {
      const result = action === 'query' ? await runQuery(conn, flags.sql, params, options) : await runExec(conn, flags.sql, params, options);
      process.stdout.write(JSON.stringify(result) + '\n');
      return EXIT.ok;
    } finally {
      await conn.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}

const LIMITS_HELP = `
Limits: a statement runs at most --timeout-ms (default ${DEFAULT_TIMEOUT_MS / 1000} s); its rows at most --max-bytes of JSON
(default ${DEFAULT_MAX_BYTES / 1024 / 1024} MB): past it the statement is cancelled and the error says to add a LIMIT.
Errors name their cause and a fix (docs/reading.md, "Query actions").
Exit codes: 0 done, 1 the statement failed, 2 usage or config error.`;

export function addQueryCommands(program: Command, envHelp: string, log: Logger, done: (code: number) => void): void {
  const common = (c: Command): Command =>
    c
      .option('--config <file>', 'the database (a destination config: JSON)')
      .requiredOption('--sql <statement>', 'one SQL statement; values as $1, $2 …')
      .option(
        '--param <value>',
        'the value of the next $n (repeatable; sent as a parameter, never put in the SQL)',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      )
      .option('--params-json <array>', 'every parameter as one JSON array (for null, numbers and booleans)')
      .option('--timeout-ms <n>', `statement timeout in milliseconds (default ${DEFAULT_TIMEOUT_MS})`)
      .option('--max-bytes <n>', `result cap in bytes of JSON (default ${DEFAULT_MAX_BYTES})`)
      .addHelpText('after', envHelp + '\n' + LIMITS_HELP);
  common(program.command('query').description('run a SELECT in a read-only transaction and print {rows, rowCount, fields} as JSON')).action(
    async (flags: QueryFlags) => done(await runAction('query', flags, log)),
  );
  common(
    program
      .command('exec')
      .description('run a statement (INSERT, UPDATE, DELETE, DDL) and print {rowCount, command} as JSON; INSERT … RETURNING id adds insertedId'),
  ).action(async (flags: QueryFlags) => done(await runAction('exec', flags, log)));
}
