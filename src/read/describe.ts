import type pg from 'pg';
import { PglandError, sqlState } from '../errors.js';
import { quoteIdent } from '../sql/ident.js';
import { ALIAS } from './source-sql.js';

/*
 * A read checks its source before the first row: the key, the cursor and
 * every filter column must be columns of the result, each once, and the
 * cursor and key must be orderable (keyset pagination sorts and compares
 * them). A query source is checked the same way, by describing its result,
 * not by reading its text.
 */

/** How a column's values are written in JSON (and declared in a Singer SCHEMA). */
export type ColumnKind = 'boolean' | 'integer' | 'number' | 'string' | 'timestamptz' | 'timestamp' | 'date' | 'json' | 'array';

export interface SourceColumn {
  name: string;
  typeOid: number;
  /** The type as format_type() writes it, e.g. `timestamp with time zone`, `character varying`. */
  typeName: string;
  kind: ColumnKind;
  /**
   * The server writes this column's JSON (to_json), not pgland: arrays and
   * composites (whose elements need their own types), and types that are not
   * built in (an extension's type may have its own cast to json).
   */
  serverJson: boolean;
}

/** The first OID of objects that are not built in (FirstNormalObjectId). */
const FIRST_USER_OID = 16384;

const KIND_BY_BASE: Record<string, ColumnKind> = {
  bool: 'boolean',
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  oid: 'integer',
  float4: 'number',
  float8: 'number',
  numeric: 'number',
  timestamptz: 'timestamptz',
  timestamp: 'timestamp',
  date: 'date',
  json: 'json',
  jsonb: 'json',
};

/** The columns of a source's result, named and typed (domains by their base type). */
export async function describeColumns(client: pg.ClientBase, from: string): Promise<SourceColumn[]> {
  const probe = await client.query({ text: `SELECT * FROM ${from} LIMIT 0`, queryMode: 'extended' } as pg.QueryConfig);
  const oids = [...new Set(probe.fields.map((f) => f.dataTypeID))];
  const { rows } = await client.query<{ oid: number; name: string; base: string; baseOid: number; category: string }>(
    `SELECT t.oid::int AS oid, format_type(t.oid, NULL) AS name, b.typname AS base, b.oid::int AS "baseOid", b.typcategory AS category
       FROM unnest($1::oid[]) AS o(oid)
       JOIN pg_catalog.pg_type t ON t.oid = o.oid
       JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END`,
    [oids],
  );
  const types = new Map(rows.map((r) => [r.oid, r]));
  return probe.fields.map((f) => {
    const t = types.get(f.dataTypeID);
    const kind: ColumnKind = (t && KIND_BY_BASE[t.base]) ?? (t?.category === 'A' ? 'array' : 'string');
    const serverJson = !t || t.baseOid >= FIRST_USER_OID || t.category === 'A' || t.category === 'C';
    return { name: f.name, typeOid: f.dataTypeID, typeName: t?.name ?? String(f.dataTypeID), kind, serverJson };
  });
}

/** The one column of that name, or an error that lists what the source has. */
export function columnNamed(columns: readonly SourceColumn[], name: string, role: string): SourceColumn {
  const found = columns.filter((c) => c.name === name);
  const list = columns
    .map((c) => c.name)
    .slice(0, 30)
    .join(', ');
  if (found.length === 0) {
    const folded = columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    throw new PglandError('read_column_missing', `the ${role} column ${JSON.stringify(name)} is not a column of the source`, {
      hint: folded
        ? `column names are case-sensitive: the source has ${JSON.stringify(folded.name)}`
        : `the source's columns are: ${list}${columns.length > 30 ? ', …' : ''}; a query source must select it`,
      context: { column: name },
    });
  }
  if (found.length > 1) {
    throw new PglandError('read_column_ambiguous', `the source has ${found.length} columns named ${JSON.stringify(name)}`, {
      hint: 'give each column of the query its own name (SELECT a.id AS account_id, b.id AS contact_id …)',
      context: { column: name },
    });
  }
  return found[0]!;
}

/** Refuses a cursor or key whose type has no ordering (json, xml, point…), naming the column and its type. */
export async function checkOrderable(client: pg.ClientBase, from: string, columns: readonly SourceColumn[]): Promise<void> {
  for (const c of columns) {
    const col = `${ALIAS}.${quoteIdent(c.name)}`;
    try {
      await client.query({ text: `SELECT 1 FROM ${from} WHERE ${col} > ${col} ORDER BY ${col} LIMIT 0`, queryMode: 'extended' } as pg.QueryConfig);
    } catch (err) {
      const state = sqlState(err);
      if (state !== '42883' && state !== '42804' && state !== '42725') throw err;
      throw new PglandError(
        'cursor_not_orderable',
        `column ${JSON.stringify(c.name)} (${c.typeName}) cannot be sorted or compared, so it cannot be a cursor or a key`,
        {
          hint:
            c.kind === 'json'
              ? 'use jsonb instead of json (cast it in a query source), or choose another column'
              : 'choose a column of a type with an ordering: a timestamp, a date, a number or text',
          context: { column: c.name },
          cause: err,
        },
      );
    }
  }
}
