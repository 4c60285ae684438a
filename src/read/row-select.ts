import { PglandError } from '../errors.js';
import { quoteIdent } from '../sql/ident.js';
import type { SourceColumn } from './describe.js';
import { ALIAS } from './source-sql.js';

/*
 * How a read selects a row: one expression per column of the source, each
 * sent as its text (what `\copy` sends), from which src/read/copy-json.ts
 * builds the row's JSON in Node, instead of the server's row_to_json, which
 * cost about 23 µs a row (docs/benchmarks.md, "Reading"). Arrays, composites
 * and types that are not built in are the exception: the server writes their
 * JSON (to_json), as it knows their element types and any cast to json.
 */

/**
 * The server's ISO text '2026-01-15 10:30:00.5+00' as to_json writes it
 * ('2026-01-15T10:30:00.5+00:00'): a T, and a whole-hour offset as +HH:MM.
 * 'infinity' stays; a BC date keeps its suffix. By hand, not by regular
 * expression: this runs for every timestamp of every row.
 */
export function isoTimestamptz(t: string): string {
  const space = t.indexOf(' ');
  if (space < 0) return t;
  const s = t.slice(0, space) + 'T' + t.slice(space + 1);
  const sign = s.charCodeAt(s.length - 3);
  if (sign === 43 /* + */ || sign === 45 /* - */) return s + ':00';
  return s.endsWith(' BC') ? s.replace(/([+-]\d\d)(?= BC$)/, '$1:00') : s;
}

/** How a read selects a row. */
export interface RowCodec {
  /** The select list: one expression per column, then the cursor and key as text where no column gives it. */
  select: string;
  /** Fields per row. */
  fields: number;
  cursorAt: number;
  keyAt: number;
  /** The expressions whose text is the cursor's and the key's (for a snapshot read's mark, src/read/page.ts). */
  cursorText: string;
  keyText: string;
}

function refuseDuplicates(columns: readonly SourceColumn[]): void {
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) {
      throw new PglandError('read_column_ambiguous', `the source has more than one column named ${JSON.stringify(c.name)}`, {
        hint: 'give each column of the query its own name (SELECT a.id AS account_id, b.id AS contact_id …)',
        context: { column: c.name },
      });
    }
    seen.add(c.name);
  }
}

export function rowCodec(columns: readonly SourceColumn[], cursor: SourceColumn, key: SourceColumn): RowCodec {
  refuseDuplicates(columns);
  const ref = (c: SourceColumn): string => `${ALIAS}.${quoteIdent(c.name)}`;
  const exprs = columns.map((c) => (c.serverJson ? `to_json(${ref(c)})::text` : ref(c)));
  // A column whose JSON the server writes does not give its plain text: select that too.
  const textAt = (c: SourceColumn): number => {
    const i = columns.indexOf(c);
    if (!c.serverJson) return i;
    exprs.push(`${ref(c)}::text`);
    return exprs.length - 1;
  };
  const cursorAt = textAt(cursor);
  const keyAt = key === cursor ? cursorAt : textAt(key);
  return { select: exprs.join(', '), fields: exprs.length, cursorAt, keyAt, cursorText: exprs[cursorAt]!, keyText: exprs[keyAt]! };
}
