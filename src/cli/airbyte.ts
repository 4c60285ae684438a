import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
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
import { writeLine } from './singer.js';

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
      log.info(
        {
          records: result.records,
          states: result.statesEmitted,
          streams: result.streams.map((s) => ({
            stream: s.stream,
            table: s.table,
            runs: s.runs,
            inserted: s.counts.inserted,
            updated: s.counts.updated,
            rejected: s.counts.rejected,
            problems: s.counts.problems,
            retired: s.retired,
          })),
        },
        'airbyte: input landed',
      );
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

export function addAirbyteCommand(program: Command, log: Logger, done: (code: number) => void): void {
  const airbyte = program.command('airbyte').description('the Airbyte destination protocol: spec, check, write (docs/protocols.md)');
  airbyte
    .command('spec')
    .description('print the SPEC message: the config as JSON Schema')
    .action(async () => {
      await writeLine(JSON.stringify(specMessage()));
      done(EXIT.ok);
    });
  airbyte
    .command('check')
    .description('print a CONNECTION_STATUS message: reach, TLS, login, schema, grants and a write probe (rolled back)')
    .requiredOption('--config <file>', 'config (JSON), as the spec describes')
    .action(async (flags: { config: string }) => {
      let status: { status: 'SUCCEEDED' | 'FAILED'; message: string };
      try {
        status = await connectionStatus(await readConfigFile(flags.config), process.env, log);
      } catch (err) {
        status = { status: 'FAILED', message: describeError(err) };
      }
      await writeLine(JSON.stringify({ type: 'CONNECTION_STATUS', connectionStatus: status }));
      // The status says whether the check passed; the command itself succeeded.
      done(EXIT.ok);
    });
  airbyte
    .command('write')
    .description('land RECORD messages from stdin; echo each STATE (with destinationStats) once what came before it is committed')
    .requiredOption('--config <file>', 'config (JSON), as the spec describes')
    .requiredOption('--catalog <file>', 'the ConfiguredAirbyteCatalog of the sync')
    .addHelpText(
      'after',
      '\nEnvironment: the PGLAND_* variables of `pgland load --help` override the config file; PGLAND_LOG_LEVEL sets the log level (logs go to stderr).' +
        '\nExit codes: 0 landed (rejects and problems are logged, not fatal), 1 failed or a malformed message (named by its line), 2 config or catalog error.',
    )
    .action(async (flags: { config: string; catalog: string }) => done(await airbyteWriteCommand(flags, log)));
}
