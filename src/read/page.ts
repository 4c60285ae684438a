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
  const where = [`${c} IS NOT NULL`, `${k} IS NOT NULL`, ...filterSql(plan.filters, ALIAS, sqlValue)];
  if (start?.key !== undefined) where.push(`(${c}, ${k}) >= (${sqlValue(start.cursor)}, ${sqlValue(start.key)})`);
  else if (start) where.push(`${c} >= ${sqlValue(start.cursor)}`);
  return `COPY (SELECT ${select}\n` + `  FROM ${plan.from}\n` + ` WHERE ${where.join('\n   AND ')}\n` + ` ORDER BY ${c}, ${k}\n` + ` LIMIT ${limit}) TO STDOUT`;
}
