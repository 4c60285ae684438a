import { PglandError } from '../errors.js';
import type { ColumnType } from '../encode/values.js';
import { disambiguate, fitIdent, normaliseName } from '../sql/ident.js';
import { commonObject, commonObjects } from './common.js';
import { isReservedColumn, type ColumnDef, type ObjectDef, type ObjectKind } from './definition.js';

/** The JSON Schema subset a platform declares a standard or custom object's fields with. */
export interface DeclaredSchema {
  type?: string | string[];
  properties?: Record<string, DeclaredProperty>;
}

export interface DeclaredProperty {
  type?: string | string[];
  format?: string;
  nullable?: boolean;
}

/** Declared JSON Schema type → PostgreSQL type (docs/landed-tables.md has the table). */
export function columnTypeOf(prop: DeclaredProperty): ColumnType {
  const types = (Array.isArray(prop.type) ? prop.type : prop.type ? [prop.type] : []).filter((t) => t !== 'null');
  if (types.length !== 1) return 'jsonb';
  switch (types[0]) {
    case 'string':
      if (prop.format === 'date-time') return 'timestamptz';
      if (prop.format === 'date') return 'date';
      return 'text';
    case 'integer':
      return 'bigint';
    case 'number':
      return 'numeric';
    case 'boolean':
      return 'boolean';
    default:
      return 'jsonb';
  }
}

/**
 * Typed columns from declared properties. Names are normalised; a name that
 * would clash with the key, with pgland's own columns or with another field's
 * normalised name gets a hash suffix of its original spelling, decided in
 * sorted order so that the same declaration always gives the same columns.
 */
export function declaredColumns(schema: DeclaredSchema): ColumnDef[] {
  const props = schema.properties ?? {};
  const taken = new Set<string>();
  const columns: ColumnDef[] = [];
  for (const key of Object.keys(props).sort()) {
    const base = normaliseName(key);
    const name = disambiguate(base, key, isReservedColumn(base) ? new Set([base]) : taken);
    const unique = disambiguate(name, key, taken);
    taken.add(unique);
    columns.push({ name: unique, type: columnTypeOf(props[key]!), source: { from: 'raw_data', key } });
  }
  return columns;
}

/** The table a standard (`<provider>_<object>`) or custom (`custom_<object>`) object lands in. */
export function tableNameFor(kind: ObjectKind, provider: string, object: string): string {
  if (kind === 'common') return object;
  const prefix = kind === 'custom' ? 'custom' : normaliseName(provider);
  return fitIdent(`${prefix}_${normaliseName(object)}`, `${kind}\u0000${provider}\u0000${object}`);
}

export interface ObjectRequest {
  kind: ObjectKind;
  object: string;
  provider: string;
  declared?: DeclaredSchema;
}

/** What to land for an object: the common catalog's definition, or one built from a declared schema. */
export function resolveObject(req: ObjectRequest): ObjectDef {
  if (req.kind === 'common') {
    const def = commonObject(req.object);
    if (!def) {
      throw new PglandError('unknown_object', `"${req.object}" is not a common object`, {
        hint: `use one of ${commonObjects().join(', ')}; or --kind standard|custom for a provider's own objects`,
      });
    }
    return def;
  }
  return {
    kind: req.kind,
    object: req.object,
    table: tableNameFor(req.kind, req.provider, req.object),
    version: 1,
    columns: req.declared ? declaredColumns(req.declared) : [],
  };
}
