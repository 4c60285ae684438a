import { PglandError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../sql/ident.js';
import { filterSql, type CheckedFilter } from './filters.js';
import { ALIAS } from './source-sql.js';

/*
 * One page of a read, by keyset pagination on (cursor, key): the rows after
 * the last one read, in (cursor, key) order, at most `limit` of them. No
 * OFFSET: a page costs the same at the end of a table as at its start, and
 * with an index on (cursor, key) the server reads only the page's rows.
 * Rows whose cursor or key is NULL cannot be placed in that order and are
 * not read (docs/reading.md).
 */

/** Where a read stands: the (cursor, key) of the last row emitted, as the server writes them as text. */
export interface Position {
  cursor: string;
  /** Absent for a start given as a cursor value alone (--since): rows with cursor >= it. */
  key?: string;
}

export interface PagePlan {
  from: string;
  /** A table source's quoted name (for its unique indexes); undefined for a query. */
  table?: string;
  cursor: string;
  key: string;
  filters: readonly CheckedFilter[];
}

/**
 * A value as an SQL literal: text through quoteLiteral, untyped, so that it
 * takes the type of the column it is compared with (as an untyped $n
 * parameter would); NULL for null.
 */
export function sqlValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return literal(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return literal(String(value));
  if (value instanceof Date) return literal(value.toISOString());
  return literal(JSON.stringify(value));
}

function literal(text: string): string {
  try {
    return quoteLiteral(text);
  } catch {
    throw new PglandError('invalid_parameter', `a filter or start value contains a NUL character, which PostgreSQL text cannot hold`, {
      hint: 'remove the NUL (\\u0000) from the value',
    });
  }
}

/** The conditions every statement of a read has: cursor and key not NULL, the filters, and the start position if any. */
function whereOf(plan: PagePlan, start: Position | undefined): string {
  const c = `${ALIAS}.${quoteIdent(plan.cursor)}`;
  const k = `${ALIAS}.${quoteIdent(plan.key)}`;
  const where = [`${c} IS NOT NULL`, `${k} IS NOT NULL`, ...filterSql(plan.filters, ALIAS, sqlValue)];
  if (start?.key !== undefined) where.push(`(${c}, ${k}) >= (${sqlValue(start.cursor)}, ${sqlValue(start.key)})`);
  else if (start) where.push(`${c} >= ${sqlValue(start.cursor)}`);
  return ` WHERE ${where.join('\n   AND ')}`;
}

function copyOf(select: string, plan: PagePlan, rest: string): string {
  return `COPY (SELECT ${select}\n  FROM ${plan.from}\n${rest}) TO STDOUT`;
}

/**
 * The statement of one page: `COPY (SELECT select … ) TO STDOUT`, the rows
 * in (cursor, key) order as COPY's text (src/read/copy-json.ts turns them
 * into JSON). COPY takes no parameters: the filters' values and the position
 * are literals from the one quoting function. The position is compared with
 * >=, so that the row at the position comes back first: the reader skips it,
 * and a second row with the same (cursor, key) shows that the key is not
 * unique.
 */
export function pageSql(plan: PagePlan, select: string, start: Position | undefined, limit: number): string {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`page limit ${limit} is not a positive integer`);
  const c = `${ALIAS}.${quoteIdent(plan.cursor)}`;
  const k = `${ALIAS}.${quoteIdent(plan.key)}`;
  return copyOf(select, plan, `${whereOf(plan, start)}\n ORDER BY ${c}, ${k}\n LIMIT ${limit}`);
}

/** A snapshot read's rows (src/read/snapshot.ts): every row the filters keep, in no order, so the server reads the table as `\copy` does. */
export function snapshotSql(plan: PagePlan, select: string): string {
  return copyOf(select, plan, whereOf(plan, undefined));
}

/**
 * A snapshot read's high-water mark: the highest (cursor, key) among the
 * rows it reads, as three fields (cursor text, key text, and whether that
 * pair is on more than one row). `cursorText` and `keyText` are the
 * expressions whose COPY text a page gives for the cursor and the key, so
 * that the mark is the position a paged read would have ended at.
 *
 * When a unique index proves the pair unique, a backward scan of the
 * (cursor, key) index gives the mark at the cost of one row. Otherwise the
 * rows are grouped by (cursor, key), a pair on two rows first, so that one
 * statement finds both a duplicate (the paged read's key_not_unique) and the
 * mark.
 */
export function markSql(plan: PagePlan, cursorText: string, keyText: string, checkDuplicates: boolean): string {
  const c = `${ALIAS}.${quoteIdent(plan.cursor)}`;
  const k = `${ALIAS}.${quoteIdent(plan.key)}`;
  const where = whereOf(plan, undefined);
  if (!checkDuplicates) return copyOf(`${cursorText}, ${keyText}, false`, plan, `${where}\n ORDER BY ${c} DESC, ${k} DESC\n LIMIT 1`);
  return copyOf(`${cursorText}, ${keyText}, count(*) > 1`, plan, `${where}\n GROUP BY ${c}, ${k}\n ORDER BY count(*) > 1 DESC, ${c} DESC, ${k} DESC\n LIMIT 1`);
}
