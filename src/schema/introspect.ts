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

/**
 * The live table in one statement (its columns and primary key, or no row
 * when it does not exist): every run reads it, and across a 40 ms link each
 * statement is 40 ms.
 */
export async function readLiveTable(client: pg.ClientBase, schema: string, table: string): Promise<LiveTable | undefined> {
  const { rows } = await client.query<{ columns: LiveColumn[]; primary_key: string[] }>(
    `SELECT
       (SELECT coalesce(json_agg(json_build_object(
                 'name', a.attname,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END) ORDER BY a.attnum), '[]')
          FROM pg_attribute a
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
          FROM pg_constraint c
          CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
         WHERE c.conrelid = t.oid AND c.contype = 'p') AS primary_key
     FROM (SELECT to_regclass($1)::oid AS oid) AS t
    WHERE t.oid IS NOT NULL`,
    [qualify(schema, table)],
  );
  const r = rows[0];
  return r ? { columns: r.columns, primaryKey: r.primary_key } : undefined;
}

export async function readRecordedTable(client: pg.ClientBase, schema: string, table: string): Promise<RecordedTable | undefined> {
  const { rows } = await client.query<{
    object: string;
    object_kind: string;
    catalog_version: number;
    definition: { columns: ColumnDef[]; primaryKey: string[] };
    needs_full_refresh: boolean;
    full_refresh_reason: string | null;
  }>(`SELECT object, object_kind, catalog_version, definition, needs_full_refresh, full_refresh_reason
        FROM ${qualify(schema, '_pgland_tables')} WHERE table_name = $1`, [table]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    object: r.object,
    kind: r.object_kind,
    catalogVersion: r.catalog_version,
    columns: r.definition.columns,
    primaryKey: r.definition.primaryKey,
    needsFullRefresh: r.needs_full_refresh,
    fullRefreshReason: r.full_refresh_reason,
  };
}

/** The definition pgland records for a table. */
export function definitionJson(def: ObjectDef, primaryKey: string[]): { columns: ColumnDef[]; primaryKey: string[] } {
  return { columns: def.columns, primaryKey };
}
