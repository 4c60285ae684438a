import type { ColumnType } from '../encode/values.js';
import { CRM_OBJECTS } from './common-crm.js';
import { ENGAGEMENT_OBJECTS } from './common-engagement.js';
import type { ColumnDef, ObjectDef } from './definition.js';

/**
 * The common-object catalog: a unified model with typed columns, versioned in
 * code. A change to an object's columns that is not purely additive must bump
 * COMMON_CATALOG_VERSION (schema evolution rebuilds the table).
 */
export const COMMON_CATALOG_VERSION = 1;

/** A catalog field's type: a PostgreSQL column type, or `list` / `object` for a jsonb array / object. */
export type CatalogType = Exclude<ColumnType, 'jsonb' | 'double precision'> | 'list' | 'object';

/** An object's fields, in column order: the field's name in `data` (and its column's) → its type. */
export type CatalogFields = Record<string, CatalogType>;

const catalog: Record<string, CatalogFields> = { ...CRM_OBJECTS, ...ENGAGEMENT_OBJECTS };

function columnOf(name: string, type: CatalogType): ColumnDef {
  const source = { from: 'data', key: name } as const;
  if (type === 'list') return { name, type: 'jsonb', shape: 'array', source };
  if (type === 'object') return { name, type: 'jsonb', shape: 'object', source };
  return { name, type, source };
}

/** The names of every common object. */
export function commonObjects(): string[] {
  return Object.keys(catalog);
}

/** The definition of a common object, or undefined when the name is not in the catalog. */
export function commonObject(object: string): ObjectDef | undefined {
  const fields = Object.hasOwn(catalog, object) ? catalog[object] : undefined;
  if (!fields) return undefined;
  const columns = Object.entries(fields).map(([name, type]) => columnOf(name, type));
  return { kind: 'common', object, table: object, version: COMMON_CATALOG_VERSION, columns };
}
