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

export async function readLiveTable(client: pg.ClientBase, schema: string, table: string): Promise<LiveTable | undefined> {
  const rel = await client.query<{ oid: number }>('SELECT to_regclass($1)::oid AS oid', [qualify(schema, table)]);
  const oid = rel.rows[0]?.oid;
  if (!oid) return undefined;
  const cols = await client.query<LiveColumn>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated
       FROM pg_attribute a
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [oid],
  );
  const pk = await client.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_constraint c
       CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
      WHERE c.conrelid = $1 AND c.contype = 'p'
      ORDER BY k.ord`,
    [oid],
  );
  return { columns: cols.rows, primaryKey: pk.rows.map((r) => r.name) };
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
