import type pg from 'pg';
import { PglandError } from '../errors.js';
import { inTransaction } from '../sql/transaction.js';
import { checkOrderable, columnNamed, describeColumns, type SourceColumn } from './describe.js';
import { checkFilter, type Filter } from './filters.js';
import { pageSql, type PagePlan, type Position } from './page.js';
import { CopyRowWriter } from './copy-json.js';
import { copyLines } from './copy-rows.js';
import { rowCodec, type RowCodec } from './row-select.js';
import { fromItem, tableName, type SourceSpec } from './source-sql.js';

/*
 * The read loop: page after page, each in its own READ ONLY transaction, so
 * that no page can change data (a function with side effects in a query
 * source fails) and no transaction stays open for the length of a big read.
 * Each page sees the rows committed when it starts: a row updated during the
 * read moves to a later cursor value and is read again later, in this read
 * or the next one (docs/reading.md, "Cursor rules"). A page is one
 * COPY (SELECT …) TO STDOUT (src/read/page.ts), its rows handed to the sink
 * as they arrive (src/read/copy-rows.ts).
 */

export const DEFAULT_PAGE_SIZE = 10_000;
export const MAX_PAGE_SIZE = 100_000;

export interface ReadSpec {
  source: SourceSpec;
  /** A column whose values identify a row: unique among the rows read. */
  key: string;
  /** A column whose value moves forward when a row changes (updated_at, a version number). */
  cursor: string;
  filters?: Filter[];
  /** Start after this position (a saved state), or at this cursor value (--since). */
  start?: Position;
  /** Rows per page (and per transaction); default 10,000. */
  pageSize?: number;
  /**
   * Read page by page even without a start position. By default a first
   * read (no start) is one snapshot (src/read/snapshot.ts): one transaction
   * for the whole read, the rows in no order.
   */
  paged?: boolean;
}

/** One row read: its cursor and key as text, and the row as JSON text. */
export interface ReadRow {
  cursor: string;
  key: string;
  json: string;
}

/** A checked read: the source's columns, and the plan every page is built from. */
export interface PreparedRead {
  columns: SourceColumn[];
  cursorColumn: SourceColumn;
  keyColumn: SourceColumn;
  plan: PagePlan;
  /** How each row is selected. */
  codec: RowCodec;
  /** Splits each row's COPY text and writes its JSON. */
  writer: CopyRowWriter;
  pageSize: number;
}

/** Settings of every read transaction: text forms that read back exactly (timestamps in ISO, floats to the last digit). */
export const READ_SETTINGS = "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'iso_8601'";
const PAGE_SETTINGS = `BEGIN READ ONLY; ${READ_SETTINGS}`;

function pageSizeOf(n: number | undefined): number {
  const size = n ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new PglandError('config_invalid', `page size ${size} is not between 1 and ${MAX_PAGE_SIZE}`, { hint: 'give --page-size between 1 and 100000' });
  }
  return size;
}

/** Checks a read against its source before any row is read: columns present and orderable, filters valid. */
export async function prepareRead(client: pg.ClientBase, spec: ReadSpec): Promise<PreparedRead> {
  const pageSize = pageSizeOf(spec.pageSize);
  const filters = (spec.filters ?? []).map(checkFilter);
  const from = fromItem(spec.source);
  const table = 'table' in spec.source ? tableName(spec.source) : undefined;
  return inTransaction(client, async () => {
    await client.query('SET TRANSACTION READ ONLY');
    const columns = await describeColumns(client, from);
    const cursorColumn = columnNamed(columns, spec.cursor, 'cursor');
    const keyColumn = columnNamed(columns, spec.key, 'key');
    for (const f of filters) columnNamed(columns, f.column, 'filter');
    await checkOrderable(client, from, cursorColumn === keyColumn ? [cursorColumn] : [cursorColumn, keyColumn]);
    const codec = rowCodec(columns, cursorColumn, keyColumn);
    const writer = new CopyRowWriter(columns, codec.fields);
    return {
      columns,
      cursorColumn,
      keyColumn,
      plan: { from, ...(table !== undefined ? { table } : {}), cursor: spec.cursor, key: spec.key, filters },
      codec,
      writer,
      pageSize,
    };
  });
}

export function duplicateKey(key: string, row: ReadRow): PglandError {
  return new PglandError(
    'key_not_unique',
    `two rows have the same key ${JSON.stringify(row.key.slice(0, 200))} and cursor ${JSON.stringify(row.cursor.slice(0, 100))}`,
    {
      hint: `the key column "${key}" must be unique: choose a unique column (the primary key), or in a query source select one (e.g. row_number() is not stable; a real id is)`,
      context: { key: row.key.slice(0, 200) },
    },
  );
}

/** A line of COPY's output that does not split into the fields selected. */
export function malformedRow(): PglandError {
  return new PglandError('read_failed', `a row of the source came back with other fields than were selected`, {
    hint: 'report this with the source table or query (no data): it is a bug in pgland read',
  });
}

/** Where a read's rows go, as they arrive. */
export interface RowSink {
  /** One row: its COPY text, split by `writer` (which writes its JSON). Return a promise to make the read wait. */
  row(src: Buffer): void | Promise<void>;
  /** After each page that had rows, once its transaction has ended: where the read stands. */
  pageEnd(position: Position, rows: number): Promise<void>;
  /** Within a snapshot read (which has one page): rows read so far, now and then. */
  progress?(rows: number): void;
}

/**
 * Reads pages from `start` on, each row handed to the sink as it arrives.
 * The caller holds the client for the whole read.
 */
export async function readPages(
  client: pg.ClientBase,
  prepared: PreparedRead,
  start: Position | undefined,
  sink: RowSink,
  signal?: AbortSignal,
): Promise<{ rows: number; pages: number; position: Position | undefined }> {
  const { cursorAt, keyAt } = prepared.codec;
  const { writer } = prepared;
  let position = start;
  let rows = 0;
  let pages = 0;
  for (;;) {
    if (signal?.aborted) throw new PglandError('cancelled', 'the read was cancelled', { hint: 'run it again: it starts from the last saved state' });
    // A start with a key comes back as the first row (>=): ask for one more.
    const skipFirst = position?.key !== undefined;
    const limit = prepared.pageSize + (skipFirst ? 1 : 0);
    const sql = pageSql(prepared.plan, prepared.codec.select, position, limit);
    let last = position;
    let first = true;
    let emitted = 0;
    const onLine = (src: Buffer, s: number, e: number): void | Promise<void> => {
      if (!writer.split(src, s, e)) throw malformedRow();
      const cursor = writer.text(src, cursorAt);
      const key = writer.text(src, keyAt);
      const same = last?.key !== undefined && cursor === last.cursor && key === last.key;
      if (same && !(first && skipFirst)) throw duplicateKey(prepared.plan.key, { cursor, key, json: '' });
      first = false;
      // The row at the start position itself: emitted already (or by the run that saved the state).
      if (same) return;
      last = { cursor, key };
      emitted++;
      return sink.row(src);
    };
    await client.query(PAGE_SETTINGS);
    let received: number;
    try {
      received = await copyLines(client, sql, onLine);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    if (emitted > 0) {
      rows += emitted;
      pages++;
      await sink.pageEnd(last!, rows);
    }
    if (received < limit) return { rows, pages, position: last };
    position = last;
  }
}
