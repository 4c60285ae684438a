import { readFile } from 'node:fs/promises';
import { openDestination } from '../destination.js';
import { describeError, PglandError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { runAirbyteWrite } from '../protocols/airbyte.js';
import { parseCatalog } from '../protocols/catalog.js';
import { airbyteConfig } from '../protocols/config.js';
import { connectionStatus, specMessage } from '../protocols/spec.js';
import { readConfigFile } from './config-file.js';
import { EXIT } from './exit.js';
import { cancelOnSignals } from './signals.js';
import { landedSummary, writeLine } from './singer-run.js';

async function readCatalog(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PglandError('config_invalid', `cannot read catalog file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'check the path given to --catalog',
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PglandError('config_invalid', `catalog file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** pgland's codes that Airbyte is told are the config's fault (failure_type config_error, else system_error). */
const CONFIG_CODES = new Set<ErrorCode>(['config_invalid', 'ssh_key_invalid', 'unknown_object']);

/** The TRACE message an Airbyte connector emits before it exits on an error. */
export function errorTrace(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return JSON.stringify({
    type: 'TRACE',
    trace: {
      type: 'ERROR',
      emitted_at: Date.now(),
      error: {
        message: message.split('\n')[0],
        internal_message: describeError(err),
        failure_type: err instanceof PglandError && CONFIG_CODES.has(err.code) ? 'config_error' : 'system_error',
      },
    },
  });
}

/** `pgland airbyte write`: exit 0 when the input was landed (rejects and problems are logged), 1 when it stopped, 2 on a bad config or catalog. */
export async function airbyteWriteCommand(flags: { config: string; catalog: string }, log: Logger): Promise<number> {
  try {
    const { destination, options } = airbyteConfig(await readConfigFile(flags.config));
    const catalog = parseCatalog(await readCatalog(flags.catalog));
    const dest = await openDestination(destination, { log, env: process.env });
    const cancel = cancelOnSignals(log);
    try {
      const result = await runAirbyteWrite(dest, catalog, { input: process.stdin, emit: writeLine, log, signal: cancel.signal }, options);
      log.info(landedSummary(result), 'airbyte: input landed');
      return EXIT.ok;
    } finally {
      cancel.dispose();
      await dest.close();
    }
  } catch (err) {
    await writeLine(errorTrace(err));
    throw err;
  }
}

/** `pgland airbyte spec`: the SPEC message. */
export async function airbyteSpecCommand(): Promise<number> {
  await writeLine(JSON.stringify(specMessage()));
  return EXIT.ok;
}

/** `pgland airbyte check`: a CONNECTION_STATUS message; the status says whether the check passed, the command itself succeeded. */
export async function airbyteCheckCommand(flags: { config: string }, log: Logger): Promise<number> {
  let status: { status: 'SUCCEEDED' | 'FAILED'; message: string };
  try {
    status = await connectionStatus(await readConfigFile(flags.config), process.env, log);
  } catch (err) {
    status = { status: 'FAILED', message: describeError(err) };
  }
  await writeLine(JSON.stringify({ type: 'CONNECTION_STATUS', connectionStatus: status }));
  return EXIT.ok;
}
