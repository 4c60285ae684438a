import type pg from 'pg';
import { PglandError } from '../errors.js';
import { CopyRowWriter } from './copy-json.js';
import { copyLines } from './copy-rows.js';
import { markSql, snapshotSql, type Position } from './page.js';
import { duplicateKey, malformedRow, READ_SETTINGS, type PreparedRead, type RowSink } from './reader.js';

/*
 * A first read (no start position) as one snapshot (docs/reading.md,
 * "Snapshot reads"): in one REPEATABLE READ, READ ONLY transaction, the
 * high-water mark (the highest (cursor, key) of the rows read), then every
 * row in no order, one COPY. Unordered, the server reads the table as a
 * `\copy` does, where pages in (cursor, key) order visit a heap page per row
 * on a table whose cursor does not follow its physical order
 * (docs/benchmarks.md, "Reading").
 *
 * The mark and the rows come from the same snapshot, so the mark is exactly
 * the position a paged read of those rows ends at: the next read starts
 * after it, and a row committed after the snapshot with a higher cursor is
 * read then. A row committed after the snapshot with a lower cursor is lost
 * as it is after a paged read's last page (a transaction in flight with an
 * older cursor value: docs/reading.md, "Cursor rules").
 */

/** Rows between two progress reports (a snapshot has no pages to report after). */
const PROGRESS_EVERY = 10_000;

/**
 * Whether a unique index of the table proves (cursor, key) unique: one on
 * the key alone, or on the key and the cursor, without a predicate or an
 * expression. A query or a view has none: its duplicates are looked for.
 */
async function pairIsUnique(client: pg.ClientBase, prepared: PreparedRead): Promise<boolean> {
  const { table, cursor, key } = prepared.plan;
  if (table === undefined) return false;
  const { rows } = await client.query<{ cols: string[] }>(
    `SELECT array(SELECT a.attname::text
                    FROM unnest(i.indkey) WITH ORDINALITY AS u(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
                   WHERE u.n <= i.indnkeyatts) AS cols
       FROM pg_index i
      WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL`,
    [table],
  );
  const pair = new Set([cursor, key]);
  return rows.some((r) => r.cols.includes(key) && r.cols.every((c) => pair.has(c)));
}

/** The mark: the highest (cursor, key) of the rows read, undefined when there are none; refuses a (cursor, key) on two rows. */
async function highWaterMark(client: pg.ClientBase, prepared: PreparedRead): Promise<Position | undefined> {
  const checkDuplicates = !(await pairIsUnique(client, prepared));
  const sql = markSql(prepared.plan, prepared.codec.cursorText, prepared.codec.keyText, checkDuplicates);
  const fields = new CopyRowWriter([], 3);
  let mark: Position | undefined;
  await copyLines(client, sql, (src, s, e) => {
    if (!fields.split(src, s, e)) throw malformedRow();
    const cursor = fields.text(src, 0);
    const key = fields.text(src, 1);
    if (fields.text(src, 2) === 't') throw duplicateKey(prepared.plan.key, { cursor, key, json: '' });
    mark = { cursor, key };
  });
  return mark;
}

/** Reads every row in one snapshot; the sink's pageEnd comes once, with the mark, after the transaction ended. */
export async function readSnapshot(
  client: pg.ClientBase,
  prepared: PreparedRead,
  sink: RowSink,
  signal?: AbortSignal,
): Promise<{ rows: number; pages: number; position: Position | undefined }> {
  const { writer } = prepared;
  const cancelled = (): PglandError => new PglandError('cancelled', 'the read was cancelled', { hint: 'run it again: it starts from the last saved state' });
  if (signal?.aborted) throw cancelled();
  // One statement reads the whole table: a cancel or a failed output ends the connection rather than reading on to the end.
  // end() with a statement running destroys the socket, and as a requested end it raises no 'error' event on the client.
  const abandon = (): void => {
    (client as pg.Client).end().catch(() => undefined);
  };
  let abandoned = false;
  const onAbort = (): void => {
    abandoned = true;
    abandon();
  };
  let rows = 0;
  await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${READ_SETTINGS}`);
  signal?.addEventListener('abort', onAbort, { once: true });
  let mark: Position | undefined;
  try {
    mark = await highWaterMark(client, prepared);
    if (mark) {
      await copyLines(
        client,
        snapshotSql(prepared.plan, prepared.codec.select),
        (src, s, e) => {
          if (!writer.split(src, s, e)) throw malformedRow();
          rows++;
          if (rows % PROGRESS_EVERY === 0) sink.progress?.(rows);
          return sink.row(src);
        },
        () => {
          abandoned = true;
          abandon();
        },
      );
    }
    await client.query('COMMIT');
  } catch (err) {
    if (!abandoned) await client.query('ROLLBACK').catch(() => undefined);
    throw signal?.aborted ? cancelled() : err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (rows === 0) return { rows, pages: 0, position: undefined };
  await sink.pageEnd(mark!, rows);
  return { rows, pages: 1, position: mark };
}
