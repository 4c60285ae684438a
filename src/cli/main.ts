#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { describeError, PglandError, type ErrorCode } from '../errors.js';
import { createLogger } from '../log.js';
import { PGLAND_VERSION } from '../package.js';
import { addAirbyteCommand } from './airbyte.js';
import { EXIT, ExitError } from './exit.js';
import { addQueryCommands } from './query.js';
import { addReadCommand } from './read.js';
import { SERVE_HELP } from './serve-help.js';
import { addSingerCommand } from './singer.js';

const ENV_HELP = `
Environment:
  PGLAND_DATABASE_URL   a postgres:// URL (instead of, or under, --config)
  PGLAND_HOST, PGLAND_PORT, PGLAND_DATABASE, PGLAND_USER, PGLAND_SCHEMA, PGLAND_SSLMODE
  PGLAND_PASSWORD       the password (or PGLAND_PASSWORD_FILE: a file holding it)
  PGLAND_LOG_LEVEL      trace, debug, info (default), warn, error, silent
With neither --config nor PGLAND_DATABASE_URL / PGLAND_HOST, an embedded PostgreSQL
is started in .pgland/embedded.`;

const USAGE_CODES = new Set<ErrorCode>([
  'config_invalid',
  'unknown_object',
  'ssh_key_invalid',
  'mapping_invalid',
  'target_invalid',
  'grant_missing',
  'read_column_missing',
  'read_column_ambiguous',
  'cursor_not_orderable',
]);

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/*
 * Each command's code is imported when the command runs, not before: loading
 * every command's modules (the service's HTTP server and job queue, the
 * protocols, reading, own tables) cost each run about half a CPU-second
 * more than Node itself, `pgland --version` included.
 */
async function main(argv: string[]): Promise<number> {
  const log = createLogger();
  const program = new Command()
    .name('pgland')
    .description('Lands synced SaaS records in PostgreSQL: COPY into a temporary table, merge in one transaction.')
    .version(PGLAND_VERSION)
    .exitOverride()
    .showHelpAfterError();
  let code: number = EXIT.ok;

  program
    .command('load')
    .description('land one run of NDJSON records for one tenant and object')
    .option('--config <file>', 'destination config (JSON)')
    .option('--provider <name>', 'the provider the records come from, e.g. salesforce (required without --into)')
    .option('--customer <id>', 'the customer (tenant) id (required without --into)')
    .option('--object <name>', 'the object, e.g. crm_contacts (required without --into)')
    .addOption(new Option('--kind <kind>', 'object kind').choices(['common', 'standard', 'custom']).default('common'))
    .option('--schema-file <file>', "JSON Schema declaring a standard or custom object's fields")
    .addOption(new Option('--mode <mode>', 'sync mode').choices(['incremental', 'full']).default('incremental'))
    .option('--input <file>', 'NDJSON input file, or - for stdin', '-')
    .addOption(
      new Option('--write <mode>', 'how records are applied; sync, additive and enrich are the Grouparoo names')
        .choices(['upsert', 'insert', 'update', 'delete', 'sync', 'additive', 'enrich'])
        .default('upsert'),
    )
    .option('--match <column>', 'update and delete modes match landed rows on this column; with --into, the column that identifies a row', 'id')
    .option('--into <schema.table>', 'land into this existing table of yours through mappings (docs/own-tables.md)')
    .option(
      '--map <column=value>',
      'with --into: a column and its value (a path such as data.email, a constant, now(), lower(v), trim(v)…); repeatable',
      collect,
      [],
    )
    .option('--mapping <file>', 'with --into: a JSON file of "column": "value" mappings')
    .option('--groups-table <schema.table>', 'with --into: a table of (record key, group name) rows kept in step with each record')
    .option('--group-key <column>', "with --groups-table: the column referring to the record's row")
    .option('--group-column <column>', 'with --groups-table: the column holding the group name')
    .option('--groups-from <path>', "with --groups-table: the path to the record's list of group names, e.g. data.groups")
    .option('--ignore-deletes', 'skip records flagged is_deleted instead of applying them')
    .option('--batch-size <n>', 'records per batch (one transaction each)')
    .option('--max-record-bytes <n>', 'longest input line; a longer one is skipped unread and kept as a reject (default 64 MiB)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      ENV_HELP +
        '\n\nSIGINT or SIGTERM rolls back the current batch, records the run as cancelled and exits 1; a second one exits at once.' +
        '\nExit codes: 0 ok, 1 failed or cancelled, 2 usage or config error, 3 landed with rejects or problems.',
    )
    .action(async (flags, cmd: Command) => {
      if (flags.into !== undefined) {
        const match = cmd.getOptionValueSource('match') === 'default' ? undefined : flags.match;
        code = await (await import('./load-into.js')).loadIntoCommand({ ...flags, match }, log);
        return;
      }
      for (const [flag, value] of [
        ['--provider <name>', flags.provider],
        ['--customer <id>', flags.customer],
        ['--object <name>', flags.object],
      ] as const) {
        if (value === undefined)
          throw new ExitError(EXIT.usage, `error: required option '${flag}' not specified (or give --into SCHEMA.TABLE to land into your own table)`);
      }
      code = await (await import('./load.js')).loadCommand(flags, log);
    });

  program
    .command('runs')
    .description('list the latest sync runs')
    .option('--config <file>', 'destination config (JSON)')
    .option('--object <name>', 'only this object')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .addHelpText('after', ENV_HELP)
    .action(async (flags) => {
      code = await (await import('./runs.js')).runsCommand(flags, log);
    });

  program
    .command('check')
    .description('check the connection step by step: tunnel, reach, TLS, login, database, version, schema, grants, a write probe')
    .option('--config <file>', 'destination config (JSON)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      ENV_HELP.replace(/\nWith neither[\s\S]*$/, '') +
        '\n  PGLAND_SSH_HOST, PGLAND_SSH_PORT, PGLAND_SSH_USER, PGLAND_SSH_HOST_KEY_FINGERPRINT\n' +
        '  PGLAND_SSH_PRIVATE_KEY(_FILE), PGLAND_SSH_PASSPHRASE(_FILE), PGLAND_SSH_PASSWORD(_FILE)\n' +
        '  PGLAND_SSLROOTCERT, PGLAND_SSLCERT, PGLAND_SSLKEY(_FILE), PGLAND_SSLSERVERNAME\n' +
        '\nExit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 config error. See docs/connecting.md.',
    )
    .action(async (flags) => {
      code = await (await import('./check.js')).checkCommand(flags, log);
    });

  program
    .command('plan')
    .description('print the DDL the next run would execute to evolve landed tables; changes nothing')
    .option('--config <file>', 'destination config (JSON)')
    .option('--object <name>', 'one object (default: every table pgland has recorded)')
    .option('--provider <name>', "the provider (names a standard object's table)")
    .addOption(new Option('--kind <kind>', 'object kind').choices(['common', 'standard', 'custom']).default('common'))
    .option('--schema-file <file>', 'the JSON Schema the next run will declare')
    .option('--json', 'print the plans as JSON')
    .addHelpText('after', ENV_HELP)
    .action(async (flags) => {
      code = await (await import('./plan.js')).planCommand(flags, log);
    });

  program
    .command('watermark')
    .description("where the last completed run of a tenant's object stopped (the next incremental may start at >= it)")
    .option('--config <file>', 'destination config (JSON)')
    .requiredOption('--provider <name>', 'the provider')
    .requiredOption('--customer <id>', 'the customer (tenant) id')
    .requiredOption('--object <name>', 'the object')
    .option('--json', 'print JSON')
    .addHelpText('after', ENV_HELP)
    .action(async (flags) => {
      code = await (await import('./runs.js')).watermarkCommand(flags, log);
    });

  program
    .command('demo')
    .description('start an embedded PostgreSQL and land a sample sync of CRM accounts and contacts')
    .option('--data-dir <dir>', 'where the embedded database keeps its files', '.pgland/demo')
    .option('--no-wait', 'stop the database when done, even on a terminal')
    .action(async (flags) => {
      // The demo prints its own story; the logger speaks only of trouble unless asked.
      code = await (await import('./demo.js')).demoCommand(flags, process.env.PGLAND_LOG_LEVEL ? log : createLogger({ level: 'warn' }));
    });

  program
    .command('serve')
    .description('run pgland as a service: HTTP API (destinations, runs, webhooks, schedules) and scheduled jobs')
    .option('--port <n>', 'HTTP port (default 8080; 0: any free one)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1)')
    .option('--worker', 'only take scheduled jobs (no API): more workers on other machines')
    .option('--control-url <url>', 'postgres:// URL of the control database (default: embedded, in --data-dir)')
    .option('--data-dir <dir>', 'where the embedded control database keeps its files (default .pgland/control)')
    .option('--concurrency <n>', 'scheduled jobs this process runs at once (default 1)')
    .addHelpText('after', SERVE_HELP)
    .action(async (flags) => {
      const { serveCommand } = await import('./serve.js');
      code = await serveCommand(flags, log);
    });

  addReadCommand(program, ENV_HELP, log, (c) => (code = c));
  addQueryCommands(program, ENV_HELP, log, (c) => (code = c));
  addSingerCommand(program, log, (c) => (code = c));
  addAirbyteCommand(program, log, (c) => (code = c));

  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ExitError) {
      process.stderr.write(err.message + '\n');
      return err.exitCode;
    }
    process.stderr.write(`pgland: ${describeError(err)}\n`);
    return err instanceof PglandError && USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.failure;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`pgland: ${describeError(err)}\n`);
    process.exitCode = EXIT.failure;
  },
);
