import type { Command } from 'commander';
import type { Logger } from '../log.js';

// The command's code (airbyte-run.ts) is loaded when it runs: every other command is spared it.
export function addAirbyteCommand(program: Command, log: Logger, done: (code: number) => void): void {
  const airbyte = program.command('airbyte').description('the Airbyte destination protocol: spec, check, write (docs/protocols.md)');
  airbyte
    .command('spec')
    .description('print the SPEC message: the config as JSON Schema')
    .action(async () => done(await (await import('./airbyte-run.js')).airbyteSpecCommand()));
  airbyte
    .command('check')
    .description('print a CONNECTION_STATUS message: reach, TLS, login, schema, grants and a write probe (rolled back)')
    .requiredOption('--config <file>', 'config (JSON), as the spec describes')
    .action(async (flags: { config: string }) => done(await (await import('./airbyte-run.js')).airbyteCheckCommand(flags, log)));
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
    .action(async (flags: { config: string; catalog: string }) => done(await (await import('./airbyte-run.js')).airbyteWriteCommand(flags, log)));
}
