import { PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CheckedFilter } from '../read/filters.js';
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
