import { Option, type Command } from 'commander';
import type { Logger } from '../log.js';
import { parseFilter, type CheckedFilter } from '../read/filters.js';
import type { ReadFlags } from './read-run.js';

// The command's code (read-run.ts) is loaded when it runs: every other command is spared it.
export function addReadCommand(program: Command, envHelp: string, log: Logger, done: (code: number) => void): void {
  program
    .command('read')
    .description('read a table or a query of a PostgreSQL database incrementally, by a cursor column, as NDJSON envelopes or Singer messages')
    .option('--config <file>', 'the database to read (a destination config: JSON)')
    .option('--table <name>', 'the table or view to read: NAME or SCHEMA.NAME')
    .option('--query <sql>', 'a SELECT to read (wrapped as a subquery, never edited)')
    .requiredOption('--key <column>', 'a unique column: the record id')
    .requiredOption('--cursor <column>', 'the column that moves forward when a row changes (updated_at, a version)')
    .option('--since <value>', 'read rows whose cursor is at least this value')
    .option('--state <file>', 'start after the bookmark in this file (if it exists) and write the new one there once the output is flushed')
    .addOption(new Option('--format <format>', 'output format').choices(['ndjson', 'singer']).default('ndjson'))
    .option(
      '--filter <condition>',
      'COLUMN OPERATOR VALUE, e.g. "status = active" (repeatable; the value is a parameter)',
      (v: string, acc: CheckedFilter[]) => [...acc, parseFilter(v)],
      [] as CheckedFilter[],
    )
    .option('--page-size <n>', 'rows per page, each in its own read-only transaction (default 10000, at most 100000)')
    .option('--paged', 'read a first read (no --since, no bookmark) page by page too, instead of in one snapshot')
    .option('--stream <name>', 'the Singer stream and bookmark name (default: the table name, or "query")')
    .option('--print-schema', 'print the JSON Schema of the rows (for pgland load --schema-file) and exit')
    .addHelpText(
      'after',
      envHelp +
        '\n\nA first read (no --since, no bookmark in --state) reads every row in one snapshot, in no order; a read from a position (or with --paged)' +
        '\nreads in (cursor, key) order, page by page (keyset pagination). Rows whose cursor or key is NULL are not read. See docs/reading.md.' +
        '\nExit codes: 0 read, 1 failed or cancelled (the state file is not advanced), 2 usage or config error.',
    )
    .action(async (flags: ReadFlags) => done(await (await import('./read-run.js')).readCommand(flags, log)));
}
