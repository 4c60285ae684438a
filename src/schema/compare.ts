import { PGLAND_COLUMNS as P, type ColumnDef, type ObjectDef } from '../catalog/definition.js';
import type { ColumnType } from '../encode/values.js';
import type { LiveColumn, LiveTable, RecordedTable } from './introspect.js';

/** The primary key of every landed table. */
export const LANDED_KEY = [P.provider, P.customerId, 'id'];

/** pgland's own columns and the types they must have. */
const PGLAND_TYPES: Record<string, string> = {
  [P.provider]: 'text',
  [P.customerId]: 'text',
  id: 'text',
  [P.landedAt]: 'timestamp with time zone',
  [P.lastModifiedAt]: 'timestamp with time zone',
  [P.isDeleted]: 'boolean',
  [P.deletedAt]: 'timestamp with time zone',
  [P.runId]: 'uuid',
  [P.rawData]: 'jsonb',
};

/** Our column type as format_type() spells it. */
export function catalogType(t: ColumnType): string {
  return t === 'timestamptz' ? 'timestamp with time zone' : t;
}

const INTEGERS = ['smallint', 'integer', 'bigint'];

/** Whether ALTER COLUMN … TYPE from `live` to `wanted` keeps every value exactly. */
export function isSafeWidening(live: string, wanted: string): boolean {
  if (wanted === 'text') return true; // every value has a text form
  if (wanted === 'bigint') return live === 'smallint' || live === 'integer';
  if (wanted === 'numeric') return INTEGERS.includes(live) || live.startsWith('numeric');
  if (wanted === 'double precision') return live === 'real' || live === 'smallint' || live === 'integer';
  if (wanted === 'timestamp with time zone') return live === 'date' || live === 'timestamp without time zone';
  if (wanted === 'jsonb') return live === 'json';
  return false;
}

export interface Differences {
  /** Wanted columns the live table lacks. */
  added: ColumnDef[];
  /** Wanted columns whose live type widens safely. */
  widened: { column: ColumnDef; from: string }[];
  /** Why the table must be rebuilt; empty when an ALTER is enough. */
  breaking: string[];
  /** Columns the customer added (not pgland's, not the object's): kept. */
  customer: LiveColumn[];
}

/**
 * Compares the wanted definition with the live table (read from the system
 * catalogs, so hand edits count) and with what pgland recorded when it last
 * built it.
 */
export function compare(def: ObjectDef, live: LiveTable, recorded: RecordedTable | undefined): Differences {
  const byName = new Map(live.columns.map((c) => [c.name, c]));
  const wanted = new Set(def.columns.map((c) => c.name));
  const out: Differences = { added: [], widened: [], breaking: [], customer: [] };

  if (recorded && recorded.catalogVersion < def.version) {
    out.breaking.push(`definition version ${recorded.catalogVersion} -> ${def.version}`);
  }
  if (live.primaryKey.join(',') !== LANDED_KEY.join(',')) {
    out.breaking.push(`primary key (${live.primaryKey.join(', ') || 'none'}) -> (${LANDED_KEY.join(', ')})`);
  }
  for (const [name, type] of Object.entries(PGLAND_TYPES)) {
    const col = byName.get(name);
    if (!col) out.breaking.push(`column ${name} is missing`);
    else if (col.type !== type) out.breaking.push(`column ${name} is ${col.type}, must be ${type}`);
  }
  for (const column of def.columns) {
    const col = byName.get(column.name);
    const want = catalogType(column.type);
    if (!col) out.added.push(column);
    else if (col.generated !== null) out.breaking.push(`column ${column.name} is a generated column`);
    else if (col.type !== want) {
      if (isSafeWidening(col.type, want)) out.widened.push({ column, from: col.type });
      else out.breaking.push(`column ${column.name} ${col.type} -> ${want}`);
    }
  }
  const recordedNames = new Set(recorded?.columns.map((c) => c.name) ?? []);
  for (const col of live.columns) {
    if (col.name in PGLAND_TYPES || wanted.has(col.name)) continue;
    if (recordedNames.has(col.name)) out.breaking.push(`column ${col.name} was dropped from the definition`);
    else out.customer.push(col);
  }
  return out;
}
