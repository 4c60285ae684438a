import type { Command } from 'commander';
import type { Logger } from '../log.js';

// The command's code (singer-run.ts) is loaded when it runs: every other command is spared it.
export function addSingerCommand(program: Command, log: Logger, done: (code: number) => void): void {
  program
    .command('singer')
    .description('a Singer target (Meltano): SCHEMA, RECORD, STATE and ACTIVATE_VERSION on stdin; each STATE on stdout once what came before it is committed')
    .option('--config <file>', "config (JSON): pgland's keys, or the keys of Meltano's Postgres targets (docs/protocols.md); required unless --about")
    .option('--about', "print the target's name, version, capabilities and settings (as Singer SDK targets do), without --config")
    .option('--format <format>', 'with --about: text, json or markdown', 'text')
    .addHelpText(
      'after',
      '\nEnvironment: the PGLAND_* variables of `pgland load --help` override the config file; PGLAND_LOG_LEVEL sets the log level (logs go to stderr).' +
        '\nExit codes: 0 landed (rejects and problems are logged, not fatal), 1 failed or a malformed message (named by its line), 2 config error.',
    )
    .action(async (flags: { config?: string; about?: boolean; format?: string }) => done(await (await import('./singer-run.js')).singerCommand(flags, log)));
}
