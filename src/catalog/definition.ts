import type { ColumnType, JsonShape } from '../encode/values.js';

export type ObjectKind = 'common' | 'standard' | 'custom';

/** Where a typed column takes its value from in an input record. */
export interface ColumnSource {
  /** `data` for common objects (the mapped fields), `raw_data` for standard and custom objects. */
  from: 'data' | 'raw_data';
  /** The field's name as the input spells it. */
  key: string;
}

/** One business column of a landed table. */
export interface ColumnDef {
  name: string;
  type: ColumnType;
  /** For a jsonb column: the JSON type its values must have (a list must be an array), or any when omitted. */
  shape?: JsonShape;
  source: ColumnSource;
}

/** What pgland needs to know to land one object: its table and typed columns. */
export interface ObjectDef {
  kind: ObjectKind;
  /** The object's name as the platform gave it. */
  object: string;
  /** The landed table's name (normalised, at most 63 bytes). */
  table: string;
  /** Bumped when the definition changes in a way that needs the table rebuilt. */
  version: number;
  columns: ColumnDef[];
}

/** pgland's own columns, in table order after the business columns. */
export const PGLAND_COLUMNS = {
  provider: '_pgland_provider',
  customerId: '_pgland_customer_id',
  landedAt: '_pgland_landed_at',
  lastModifiedAt: '_pgland_last_modified_at',
  isDeleted: '_pgland_is_deleted',
  deletedAt: '_pgland_deleted_at',
  runId: '_pgland_run_id',
  rawData: '_pgland_raw_data',
} as const;

// PostgreSQL refuses these as column names even when quoted ("column name
// conflicts with a system column name"); a provider field called xmin or ctid
// must not be able to fail CREATE TABLE. oid is one before PostgreSQL 12.
const SYSTEM_COLUMNS = new Set(['tableoid', 'xmin', 'cmin', 'xmax', 'cmax', 'ctid', 'oid']);

/** Column names a business field may not take: the key, pgland's own, and PostgreSQL's system columns. */
export function isReservedColumn(name: string): boolean {
  return name === 'id' || name.startsWith('_pgland_') || SYSTEM_COLUMNS.has(name);
}
