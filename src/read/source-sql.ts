import { PglandError } from '../errors.js';
import { qualify, quoteIdent } from '../sql/ident.js';

/*
 * What a read reads from: a table (or view), or a query. A query is wrapped
 * as a subquery, never edited: pgland adds its own WHERE, ORDER BY and LIMIT
 * around it, so the query keeps its meaning whatever it contains.
 *
 * Before any page, the wrapped query is described through the extended
 * protocol (src/read/describe.ts), which refuses more than one statement:
 * a query that closes the parenthesis to add `; DELETE …` after it fails
 * there. The pages are COPY statements (simple protocol), but the query sits
 * in them between the same `(\n` and `\n)` as when it was described, one
 * level of parentheses deeper, so a text that escapes neither wrapping
 * cannot escape the COPY's; and each page runs in a READ ONLY transaction.
 */

export type SourceSpec = { table: string; schema?: string } | { query: string };

/** The alias the source gets in every statement pgland builds around it. */
export const ALIAS = '_pgland_source';

/** The FROM item for a source: the table quoted part by part, or the query in parentheses. */
export function fromItem(source: SourceSpec): string {
  if ('query' in source) {
    const q = source.query.trim().replace(/;\s*$/, '');
    if (q.length === 0) throw new PglandError('config_invalid', 'the query is empty', { hint: 'give a SELECT statement with --query' });
    // On lines of their own, so that a trailing -- comment in the query ends with its line.
    return `(\n${q}\n) AS ${ALIAS}`;
  }
  return `${tableName(source)} AS ${ALIAS}`;
}

/** A table source's name, quoted part by part (as `::regclass` takes it too). */
export function tableName(source: { table: string; schema?: string }): string {
  if (source.table.length === 0) throw new PglandError('config_invalid', 'the table name is empty', { hint: 'give --table NAME or --table SCHEMA.NAME' });
  return source.schema ? qualify(source.schema, source.table) : quoteIdent(source.table);
}

/**
 * Splits the CLI's `--table` into schema and table: `schema.table` when it
 * has exactly one dot outside double quotes, a bare name otherwise. As in
 * SQL, unquoted parts fold to lower case; quoted parts keep their case and
 * may hold dots.
 */
export function parseTableName(text: string): { schema?: string; table: string } {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  const end = (): void => {
    parts.push(wasQuoted ? cur : cur.toLowerCase());
    cur = '';
    wasQuoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      if (quoted && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else {
        quoted = !quoted;
        wasQuoted = true;
      }
    } else if (ch === '.' && !quoted) end();
    else cur += ch;
  }
  end();
  if (quoted || parts.length > 2 || parts.some((p) => p.length === 0)) {
    throw new PglandError('config_invalid', `--table ${JSON.stringify(text.slice(0, 100))} is not a table name`, {
      hint: 'write TABLE or SCHEMA.TABLE; put a name with dots or capitals in double quotes: --table \'public."My.Table"\'',
    });
  }
  return parts.length === 2 ? { schema: parts[0]!, table: parts[1]! } : { table: parts[0]! };
}
