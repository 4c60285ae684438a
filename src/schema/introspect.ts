import type pg from 'pg';
import type { ColumnDef, ObjectDef } from '../catalog/definition.js';
import { qualify } from '../sql/ident.js';

/** A column as the system catalogs show it (hand edits included). */
export interface LiveColumn {
  name: string;
  /** format_type(), e.g. "timestamp with time zone", "character varying(20)". */
  type: string;
  /** The expression of a stored generated column, or null. */
  generated: string | null;
}

export interface LiveTable {
  columns: LiveColumn[];
  primaryKey: string[];
}

/** What pgland recorded when it last built or evolved a table. */
export interface RecordedTable {
  object: string;
  kind: string;
  catalogVersion: number;
  columns: ColumnDef[];
  primaryKey: string[];
  needsFullRefresh: boolean;
  fullRefreshReason: string | null;
}

interface Shape {
  exists: boolean;
  columns: LiveColumn[];
  primary_key: string[];
  recorded: {
    object: string;
    object_kind: string;
    catalog_version: number;
    definition: { columns: ColumnDef[]; primaryKey: string[] };
    needs_full_refresh: boolean;
    full_refresh_reason: string | null;
  } | null;
}

/**
 * An SQL expression: everything the evolution check reads of a table, as
 * JSON text. The live table (its columns and primary key, from the system
 * catalogs, so hand edits count) and what pgland recorded of it. Two reads
 * that give the same text give the same plan (plan.ts reads nothing else
 * when the table is up to date), which is what lets a process skip the check
 * of a table it found up to date (load/checked-tables.ts). `qualified`: the
 * parameter holding the table's qualified name; `name`: its plain name.
 */
export function tableShapeSql(schema: string, qualified: string, name: string): string {
  return `(SELECT json_build_object(
       'exists', t.oid IS NOT NULL,
       'columns', (SELECT coalesce(json_agg(json_build_object(
                 'name', a.attname,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END) ORDER BY a.attnum), '[]')
          FROM pg_attribute a
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
       'primary_key', (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
          FROM pg_constraint c
          CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
         WHERE c.conrelid = t.oid AND c.contype = 'p'),
       'recorded', (SELECT json_build_object('object', r.object, 'object_kind', r.object_kind, 'catalog_version', r.catalog_version,
                                 'definition', r.definition, 'needs_full_refresh', r.needs_full_refresh,
                                 'full_refresh_reason', r.full_refresh_reason)
          FROM ${qualify(schema, '_pgland_tables')} r WHERE r.table_name = ${name}))::text
     FROM (SELECT to_regclass(${qualified})::oid AS oid) AS t)`;
}

/** The live table (undefined when it does not exist) and what pgland recorded of it, from tableShapeSql's text. */
export function parseShape(shape: string): { live: LiveTable | undefined; recorded: RecordedTable | undefined } {
  const r = JSON.parse(shape) as Shape;
  const live = r.exists ? { columns: r.columns, primaryKey: r.primary_key } : undefined;
  const rec = r.recorded;
  const recorded = rec
    ? {
        object: rec.object,
        kind: rec.object_kind,
        catalogVersion: rec.catalog_version,
        columns: rec.definition.columns,
        primaryKey: rec.definition.primaryKey,
        needsFullRefresh: rec.needs_full_refresh,
        fullRefreshReason: rec.full_refresh_reason,
      }
    : undefined;
  return { live, recorded };
}

/** What the evolution check reads of a table, in one statement (see tableShapeSql), and the text it was read as. */
export interface TableState {
  live: LiveTable | undefined;
  recorded: RecordedTable | undefined;
  /** tableShapeSql's text, to compare with a later read. */
  shape: string;
}

/**
 * The live table and what pgland recorded of it, in one statement: every
 * check reads both, and across a 40 ms link each statement is 40 ms.
 */
export async function readTable(client: pg.ClientBase, schema: string, table: string): Promise<TableState> {
  const { rows } = await client.query<{ shape: string }>(readTableSql(schema, table));
  return tableStateOf(rows[0]!.shape);
}

/** readTable's statement: one column, `shape`. */
export function readTableSql(schema: string, table: string): { text: string; values: unknown[] } {
  return { text: `SELECT ${tableShapeSql(schema, '$1', '$2')} AS shape`, values: [qualify(schema, table), table] };
}

/** The state readTableSql's `shape` describes. */
export function tableStateOf(shape: string): TableState {
  return { ...parseShape(shape), shape };
}

/** The definition pgland records for a table. */
export function definitionJson(def: ObjectDef, primaryKey: string[]): { columns: ColumnDef[]; primaryKey: string[] } {
  return { columns: def.columns, primaryKey };
}
