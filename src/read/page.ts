import { quoteIdent } from '../sql/ident.js';
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
 * The statement of one page: the cursor and key as text (for the next
 * page's position and the bookmark), and the row as JSON, written by the
 * server. The position is compared with >=, so that the row at the position
 * comes back first: the reader skips it, and a second row with the same
 * (cursor, key) shows that the key is not unique.
 */
export function pageSql(plan: PagePlan, start: Position | undefined, limit: number): { text: string; values: unknown[] } {
  const c = `${ALIAS}.${quoteIdent(plan.cursor)}`;
  const k = `${ALIAS}.${quoteIdent(plan.key)}`;
  const values: unknown[] = [];
  const where = [`${c} IS NOT NULL`, `${k} IS NOT NULL`, ...filterSql(plan.filters, ALIAS, values)];
  if (start?.key !== undefined) {
    values.push(start.cursor, start.key);
    where.push(`(${c}, ${k}) >= ($${values.length - 1}, $${values.length})`);
  } else if (start) {
    values.push(start.cursor);
    where.push(`${c} >= $${values.length}`);
  }
  values.push(limit);
  return {
    text:
      `SELECT ${c}::text AS c, ${k}::text AS k, row_to_json(${ALIAS})::text AS j\n` +
      `  FROM ${plan.from}\n` +
      ` WHERE ${where.join('\n   AND ')}\n` +
      ` ORDER BY ${c}, ${k}\n` +
      ` LIMIT $${values.length}`,
    values,
  };
}
