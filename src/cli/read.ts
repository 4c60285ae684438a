import { Option, type Command } from 'commander';
import { PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseFilter, type CheckedFilter } from '../read/filters.js';
import { jsonSchemaOf, type ReadFormat } from '../read/output.js';
import { readSource, streamName } from '../read/read.js';
import { prepareRead, type ReadSpec } from '../read/reader.js';
import { connectSource } from '../read/source.js';
import { parseTableName } from '../read/source-sql.js';
import { readStateFile, startOf, writeStateFile } from '../read/state.js';
import { EXIT } from './exit.js';
import { cancelOnSignals } from './signals.js';
import { resolveTarget } from './target.js';

export interface ReadFlags {
  config?: string;
  table?: string;
  query?: string;
  key: string;
  cursor: string;
  since?: string;
  state?: string;
  format: ReadFormat;
  filter: CheckedFilter[];
  pageSize?: string;
  paged?: boolean;
  stream?: string;
  printSchema?: boolean;
}

function usage(message: string, hint: string): PglandError {
  return new PglandError('config_invalid', message, { hint });
}

function specOf(flags: ReadFlags): ReadSpec {
  if ((flags.table === undefined) === (flags.query === undefined))
    throw usage('give either --table or --query', 'pgland read --table public.contacts … or --query "SELECT …"');
  if (flags.since !== undefined && flags.state !== undefined)
    throw usage('give --since or --state, not both', '--state FILE resumes where the last read ended; --since V starts at a cursor value');
  const pageSize = flags.pageSize === undefined ? undefined : Number(flags.pageSize);
  return {
    source: flags.table !== undefined ? parseTableName(flags.table) : { query: flags.query! },
    key: flags.key,
    cursor: flags.cursor,
    filters: flags.filter,
    ...(pageSize !== undefined ? { pageSize } : {}),
    ...(flags.paged ? { paged: true } : {}),
    ...(flags.since !== undefined ? { start: { cursor: flags.since } } : {}),
  };
}

/** Writes to stdout, waiting while the pipe is full; fails once stdout has failed (the reader downstream went away). */
function stdoutWriter(): { write(chunk: string | Buffer): Promise<void> | void; flush(): Promise<void> } {
  let failed: Error | undefined;
  process.stdout.on('error', (err) => (failed ??= err));
  const check = (): void => {
    if (failed)
      throw new PglandError('output_failed', `cannot write the output: ${failed.message}`, {
        hint: "the command reading pgland's output stopped; the state file was not advanced",
      });
  };
  return {
    write(chunk) {
      check();
      if (process.stdout.write(chunk)) return;
      // A pipe whose reader went away never drains: its error ends the wait too.
      return new Promise<void>((resolve) => {
        const done = (): void => {
          process.stdout.off('drain', done).off('error', done).off('close', done);
          resolve();
        };
        process.stdout.once('drain', done).once('error', done).once('close', done);
      }).then(check);
    },
    flush: () => new Promise<void>((resolve, reject) => process.stdout.write('', (err) => (err ? reject(err) : resolve()))).then(check),
  };
}

export async function readCommand(flags: ReadFlags, log: Logger): Promise<number> {
  const spec = specOf(flags);
  const stream = flags.stream ?? streamName(spec);
  const previous = flags.state ? await readStateFile(flags.state) : undefined;
  if (previous) {
    const start = startOf(previous, stream, spec.cursor, `state file ${flags.state}`);
    if (start) spec.start = start;
  }
  const target = await resolveTarget(flags.config, log);
  try {
    const conn = await connectSource(target.config, { log, env: process.env, poolSize: 1 });
    try {
      if (flags.printSchema) {
        const client = await conn.pool.connect();
        try {
          const prepared = await prepareRead(client, spec);
          process.stdout.write(JSON.stringify(jsonSchemaOf(prepared.columns, spec.key), null, 2) + '\n');
        } finally {
          client.release();
        }
        return EXIT.ok;
      }
      const out = stdoutWriter();
      const cancel = cancelOnSignals(log);
      const started = Date.now();
      let shown = false;
      try {
        const result = await readSource(
          conn,
          spec,
          {
            format: flags.format,
            stream,
            write: out.write,
            writeBytes: out.write,
            signal: cancel.signal,
            onProgress: (rows) => {
              if (!process.stderr.isTTY) return;
              const secs = Math.max((Date.now() - started) / 1000, 0.001);
              process.stderr.write(`\r  ${rows.toLocaleString('en')} rows read, ${Math.round(rows / secs).toLocaleString('en')} rows/s`);
              shown = true;
            },
          },
          previous,
        );
        if (shown) process.stderr.write('\n');
        // The new high-water mark is saved only once every row before it has left this process.
        await out.flush();
        if (flags.state) await writeStateFile(flags.state, result.state);
        log.info({ rows: result.rows, pages: result.pages, position: result.position }, 'read: done');
        return EXIT.ok;
      } finally {
        cancel.dispose();
      }
    } finally {
      await conn.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}

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
    .action(async (flags: ReadFlags) => done(await readCommand(flags, log)));
}
