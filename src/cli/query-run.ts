import { PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import { runExec, runQuery, type ActionOptions } from '../query/actions.js';
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

export async function runAction(action: 'query' | 'exec', flags: QueryFlags, log: Logger): Promise<number> {
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
