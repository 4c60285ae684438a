import { envName, resolveDestination } from '../config/resolve.js';
import { runCheck, type CheckReport } from '../connection/check.js';
import { describeError, PglandError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { readConfigFile } from './config-file.js';
import { EXIT } from './exit.js';

export interface CheckFlags {
  config?: string;
  json?: boolean;
}

/** Errors that mean the config itself is wrong (exit 2), not the database or the network. */
const CONFIG_CODES = new Set<ErrorCode>(['config_invalid', 'ssh_key_invalid']);

/**
 * pgland check: 0 when every step passed (warnings allowed), 1 when a step
 * failed, 2 when the config cannot be used (docs/connecting.md).
 */
export async function checkCommand(flags: CheckFlags, log: Logger): Promise<number> {
  try {
    if (!flags.config && !process.env[envName('url')] && !process.env[envName('host')]) {
      throw new PglandError('config_invalid', 'nothing to check: give --config <file> (or PGLAND_DATABASE_URL / PGLAND_HOST)', {
        hint: 'see docs/configuration.md',
      });
    }
    const file = flags.config ? await readConfigFile(flags.config) : {};
    const cfg = resolveDestination(file, process.env);
    const report = await runCheck(cfg, { log });
    process.stdout.write((flags.json ? JSON.stringify(report) : formatReport(report)) + '\n');
    return report.ok ? EXIT.ok : EXIT.failure;
  } catch (err) {
    if (!(err instanceof PglandError && CONFIG_CODES.has(err.code))) throw err;
    if (flags.json) {
      process.stdout.write(JSON.stringify({ ok: false, error: { code: err.code, message: err.message, fix: err.hint } }) + '\n');
    } else {
      process.stderr.write(`pgland check: ${describeError(err)}\n`);
    }
    return EXIT.usage;
  }
}

/** The report for a terminal: one line per step, then the cause and the fix of a failure. */
export function formatReport(r: CheckReport): string {
  const t = r.target;
  const lines = [
    `pgland check: ${t.user}@${t.host}:${t.port}/${t.database}, schema ${t.schema}, sslmode ${t.sslmode}${t.bastion ? `, through ${t.bastion}` : ''}`,
  ];
  const width = Math.max(...r.steps.map((s) => s.title.length));
  for (const s of r.steps) {
    const ms = s.status === 'skip' ? '' : `${s.ms} ms`;
    lines.push(`  ${s.status.toUpperCase().padEnd(4)}  ${s.title.padEnd(width)}  ${ms.padStart(8)}  ${s.detail}`);
    if (s.status === 'fail') {
      if (s.code) lines.push(`        cause: ${s.code}`);
      if (s.fix) lines.push(`        fix:   ${s.fix}`);
    }
  }
  const failed = r.steps.filter((s) => s.status === 'fail').length;
  const warned = r.steps.filter((s) => s.status === 'warn').length;
  lines.push(failed ? `${failed} check failed.` : `all checks passed${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}.`);
  return lines.join('\n');
}
