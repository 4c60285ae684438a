import { PglandError } from '../errors.js';
import { quoteIdent } from '../sql/ident.js';

/*
 * Filters of a read (Grouparoo's "Filter" on an import): a column, an
 * operator from a fixed list, and a value. The column is quoted by the one
 * door and checked against the source's columns; the operator comes from
 * the list below, never from the caller's text; the value is always a
 * parameter.
 */

/** The operators a filter may use, and the SQL each becomes (`v` is the value as SQL: a literal, or for lists `(a, b, …)`). */
const OPERATORS: Record<string, { sql: (col: string, v: string) => string; value: 'one' | 'list' | 'none' }> = {
  '=': { sql: (c, p) => `${c} = ${p}`, value: 'one' },
  '!=': { sql: (c, p) => `${c} IS DISTINCT FROM ${p}`, value: 'one' },
  '<>': { sql: (c, p) => `${c} IS DISTINCT FROM ${p}`, value: 'one' },
  '<': { sql: (c, p) => `${c} < ${p}`, value: 'one' },
  '<=': { sql: (c, p) => `${c} <= ${p}`, value: 'one' },
  '>': { sql: (c, p) => `${c} > ${p}`, value: 'one' },
  '>=': { sql: (c, p) => `${c} >= ${p}`, value: 'one' },
  like: { sql: (c, p) => `${c}::text LIKE ${p}`, value: 'one' },
  'not like': { sql: (c, p) => `${c}::text NOT LIKE ${p}`, value: 'one' },
  ilike: { sql: (c, p) => `${c}::text ILIKE ${p}`, value: 'one' },
  in: { sql: (c, p) => `${c} IN ${p}`, value: 'list' },
  'not in': { sql: (c, p) => `NOT (${c} IN ${p})`, value: 'list' },
  'is null': { sql: (c) => `${c} IS NULL`, value: 'none' },
  'is not null': { sql: (c) => `${c} IS NOT NULL`, value: 'none' },
};

export const FILTER_OPERATORS = Object.keys(OPERATORS);

export interface Filter {
  column: string;
  /** One of FILTER_OPERATORS (case-insensitive). */
  op: string;
  /** A value for most operators, an array for `in` and `not in`, nothing for `is null`. */
  value?: unknown;
}

/** A filter with its operator checked, ready to become SQL. */
export interface CheckedFilter {
  column: string;
  op: string;
  value: unknown;
}

function bad(message: string, hint = `operators: ${FILTER_OPERATORS.join(', ')}`): PglandError {
  return new PglandError('config_invalid', message, { hint });
}

/** Checks one filter's shape: the column is a name, the operator one of the list, the value fits the operator. */
export function checkFilter(f: Filter): CheckedFilter {
  if (typeof f.column !== 'string' || f.column.length === 0) throw bad('a filter needs a column name');
  const op = String(f.op ?? '')
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ');
  const spec = OPERATORS[op];
  if (!spec) throw bad(`filter on ${JSON.stringify(f.column)}: unknown operator ${JSON.stringify(String(f.op).slice(0, 20))}`);
  if (spec.value === 'none') return { column: f.column, op, value: undefined };
  if (f.value === undefined) throw bad(`filter on ${JSON.stringify(f.column)} ${op} needs a value`, 'give the value after the operator');
  if (spec.value === 'list' && !Array.isArray(f.value)) {
    throw bad(`filter on ${JSON.stringify(f.column)} ${op} needs a list of values`, 'give a comma-separated list (CLI) or an array (library)');
  }
  return { column: f.column, op, value: f.value };
}

/**
 * Parses the CLI's `--filter "COLUMN OP VALUE"`. The column may be written
 * in double quotes (with "" for a quote) when it holds spaces; `in` takes a
 * comma-separated list.
 */
export function parseFilter(text: string): CheckedFilter {
  const m =
    /^\s*("(?:[^"]|"")+"|[^\s<>=!]+)\s*(=|!=|<>|<=|>=|<|>|not\s+like|like|ilike|not\s+in|in|is\s+not\s+null|is\s+null)(?:\s+|(?<=[<>=])\s*|$)([\s\S]*)$/i.exec(
      text,
    );
  if (!m) throw bad(`--filter ${JSON.stringify(text.slice(0, 80))}: expected COLUMN OPERATOR VALUE, e.g. --filter "status = active"`);
  const column = m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!;
  const op = m[2]!.toLowerCase().replace(/\s+/g, ' ');
  const rest = m[3]!;
  const kind = OPERATORS[op]!.value;
  if (kind === 'none') {
    if (rest.trim() !== '') throw bad(`--filter ${JSON.stringify(text.slice(0, 80))}: ${op} takes no value`);
    return checkFilter({ column, op });
  }
  return checkFilter({ column, op, value: kind === 'list' ? rest.split(',').map((s) => s.trim()) : rest });
}

/**
 * The WHERE conditions of the filters, each value written by `sqlValue` (the
 * one literal-quoting function: a page is a COPY statement, which takes no
 * parameters). An empty list matches nothing (`in`) or everything (`not in`).
 */
export function filterSql(filters: readonly CheckedFilter[], alias: string, sqlValue: (value: unknown) => string): string[] {
  return filters.map((f) => {
    const spec = OPERATORS[f.op]!;
    const col = `${alias}.${quoteIdent(f.column)}`;
    if (spec.value === 'none') return spec.sql(col, '');
    if (spec.value === 'one') return spec.sql(col, sqlValue(f.value));
    const list = f.value as unknown[];
    if (list.length === 0) return f.op === 'in' ? 'false' : 'true';
    return spec.sql(col, `(${list.map(sqlValue).join(', ')})`);
  });
}
