import type { Command } from 'commander';
import type { Logger } from '../log.js';
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from '../query/limits.js';
import type { QueryFlags } from './query-run.js';

// The command's code (query-run.ts) is loaded when it runs: every other command is spared it.
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
    async (flags: QueryFlags) => done(await (await import('./query-run.js')).runAction('query', flags, log)),
  );
  common(
    program
      .command('exec')
      .description('run a statement (INSERT, UPDATE, DELETE, DDL) and print {rowCount, command} as JSON; INSERT … RETURNING id adds insertedId'),
  ).action(async (flags: QueryFlags) => done(await (await import('./query-run.js')).runAction('exec', flags, log)));
}
