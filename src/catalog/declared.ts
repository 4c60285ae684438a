import { PglandError } from '../errors.js';
import type { ColumnType, JsonShape } from '../encode/values.js';
import { fitIdent, normaliseName, snakeName, withHashSuffix } from '../sql/ident.js';
import { commonObject, commonObjects } from './common.js';
import { isReservedColumn, type ColumnDef, type ObjectDef, type ObjectKind } from './definition.js';

/** The JSON Schema subset a platform declares a standard or custom object's fields with. */
export interface DeclaredSchema {
  type?: string | string[];
  properties?: Record<string, DeclaredProperty>;
}

/**
 * One declared field. `type` may be a list with "null" in it; `nullable: true`
 * (OpenAPI style) says the same. `anyOf` / `oneOf` with one non-null branch
 * is read as that branch. Any other keyword is ignored.
 */
export interface DeclaredProperty {
  type?: string | string[];
  format?: string;
  nullable?: boolean;
  anyOf?: DeclaredProperty[];
  oneOf?: DeclaredProperty[];
}

/** A declared field's PostgreSQL type, and for jsonb the JSON type its values must have. */
export interface DeclaredType {
  type: ColumnType;
  shape?: JsonShape;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isStringBranch = (b: DeclaredProperty): boolean =>
  b.type === 'string' || (Array.isArray(b.type) && b.type.filter((t) => t !== 'null').join() === 'string');

/**
 * The one non-null branch of a property: itself, or its single non-null
 * anyOf/oneOf branch. Several branches that are all strings, one of them a
 * `date-time` (taps write `anyOf: [{format: date-time}, {type: string}]`),
 * read as that branch, as Meltano's Postgres target reads them.
 */
function branchOf(prop: DeclaredProperty): DeclaredProperty | undefined {
  const union = prop.anyOf ?? prop.oneOf;
  if (prop.type !== undefined || !Array.isArray(union)) return prop;
  const branches = union.filter((b) => isObject(b) && !(b.type === 'null' || (Array.isArray(b.type) && b.type.every((t) => t === 'null'))));
  if (branches.length === 1) return branches[0];
  if (branches.length > 1 && branches.every(isStringBranch)) return branches.find((b) => b.format === 'date-time');
  return undefined;
}

/**
 * Declared JSON Schema type → PostgreSQL type (docs/landed-tables.md has the
 * table). "null" in a type list only says the field may be null: every typed
 * column is nullable. A field with several non-null types, or none, is jsonb.
 */
export function columnTypeOf(declared: unknown): DeclaredType {
  const prop = isObject(declared) ? branchOf(declared as DeclaredProperty) : undefined;
  if (!prop) return { type: 'jsonb' };
  const types = (Array.isArray(prop.type) ? prop.type : [prop.type]).filter((t) => typeof t === 'string' && t !== 'null');
  if (types.length !== 1) return { type: 'jsonb' };
  switch (types[0]) {
    case 'string':
      if (prop.format === 'date-time') return { type: 'timestamptz' };
      if (prop.format === 'date') return { type: 'date' };
      return { type: 'text' };
    case 'integer':
      return { type: 'bigint' };
    case 'number':
      return { type: 'numeric' };
    case 'boolean':
      return { type: 'boolean' };
    case 'array':
      return { type: 'jsonb', shape: 'array' };
    case 'object':
      return { type: 'jsonb', shape: 'object' };
    default:
      return { type: 'jsonb' };
  }
}

/**
 * PostgreSQL allows 1,600 columns per table, dropped ones included; pgland
 * keeps room for its own columns and for columns added by schema evolution.
 * Fields past this many (in sorted order) stay in the raw payload only.
 */
export const MAX_DECLARED_COLUMNS = 1500;

/**
 * Typed columns from declared properties, in the sorted order of the fields'
 * names. Each field's column is its normalised name (ident.ts), except:
 *
 * - when that name is reserved (`id`, `_pgland_*`, a system column such as
 *   `xmin`), or
 * - when several fields normalise to the same name, for all of them but the
 *   one (if any) spelled exactly as that name,
 *
 * the column is the normalised name with `_<hash>` of the field's original
 * spelling (cut to fit 63 bytes). Plain names are settled before suffixed
 * ones, so a suffixed name never takes a name another field has as is. The
 * outcome depends only on the set of field names: the same declaration gives
 * the same columns, whatever the order of its properties. Past
 * MAX_DECLARED_COLUMNS fields, the rest are not typed.
 */
export function declaredColumns(schema: DeclaredSchema): ColumnDef[] {
  const props = schema.properties ?? {};
  const keys = Object.keys(props).sort().slice(0, MAX_DECLARED_COLUMNS);
  const base = new Map(keys.map((k) => [k, normaliseName(k)]));
  const claims = new Map<string, number>();
  for (const b of base.values()) claims.set(b, (claims.get(b) ?? 0) + 1);
  const keepsBase = (k: string): boolean => {
    const b = base.get(k)!;
    return !isReservedColumn(b) && (claims.get(b) === 1 || k === b);
  };

  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const k of keys.filter(keepsBase)) {
    names.set(k, base.get(k)!);
    taken.add(base.get(k)!);
  }
  for (const k of keys.filter((key) => !keepsBase(key))) {
    let name = withHashSuffix(base.get(k)!, k);
    // Only a contrived field name (one that is itself some other field's
    // suffixed name) or a hash clash gets here; try the next hash.
    for (let i = 2; taken.has(name) || isReservedColumn(name); i++) name = withHashSuffix(base.get(k)!, `${k}#${i}`);
    names.set(k, name);
    taken.add(name);
  }

  return keys.map((key) => {
    const { type, shape } = columnTypeOf(props[key]);
    const source = { from: 'raw_data', key } as const;
    return shape ? { name: names.get(key)!, type, shape, source } : { name: names.get(key)!, type, source };
  });
}

// Table names that belong to the other kinds: custom objects, and the common
// catalog's categories (today's objects and any it adds later).
const NOT_STANDARD = /^(custom|crm|engagement)_/;

/**
 * The table a standard (`<provider>_<object>`) or custom (`custom_<object>`)
 * object lands in, each part normalised. A standard object may land without
 * the provider prefix (`prefixed: false`, the protocols' default: a stream's
 * table is named after the stream). When a standard object's name would
 * start like a custom object's or a common object's (`custom_`, `crm_`,
 * `engagement_`), it gets `_<hash>` of (kind, provider, object) so that it can
 * never land in another kind's table; the same for any name past 63 bytes.
 */
export function tableNameFor(kind: ObjectKind, provider: string, object: string, prefixed = true): string {
  if (kind === 'common') return object;
  if (kind === 'standard' && !prefixed) {
    // Without a prefix the provider is not part of the name, nor of its hash:
    // every provider's stream `users` shares the table `users` (rows keep their provider).
    const name = snakeName(object);
    const hashSource = `${kind}\u0000\u0000${object}`;
    return NOT_STANDARD.test(name) ? withHashSuffix(name, hashSource) : fitIdent(name, hashSource);
  }
  const prefix = kind === 'custom' ? 'custom' : snakeName(provider);
  const name = `${prefix}_${snakeName(object)}`;
  const hashSource = `${kind}\u0000${provider}\u0000${object}`;
  return kind === 'standard' && NOT_STANDARD.test(name) ? withHashSuffix(name, hashSource) : fitIdent(name, hashSource);
}

export interface ObjectRequest {
  kind: ObjectKind;
  object: string;
  provider: string;
  declared?: DeclaredSchema;
  /** Standard objects only: false lands in `<object>` rather than `<provider>_<object>` (default true). */
  prefixed?: boolean;
}

function invalidDeclaration(object: string, message: string): PglandError {
  return new PglandError('config_invalid', `the declared schema of "${object}" ${message}`, {
    hint: 'declare the fields as a JSON Schema object: {"type": "object", "properties": {"Name": {"type": "string"}, …}}',
    context: { object },
  });
}

/** How deep a declared schema may nest: JSON Schema declarations of fields are shallow; 20,000 nested anyOf once failed a request with a 500. */
export const MAX_DECLARED_DEPTH = 32;

/**
 * Refuses a declaration nesting deeper than MAX_DECLARED_DEPTH and, when
 * `storable`, one PostgreSQL's jsonb cannot keep: a NUL character in a field
 * name or any other key or string. pgland load lands a field named with a NUL
 * (its column name drops it); the service keeps the declaration itself as
 * jsonb in the control database, where it failed with a 500. Iterative, so
 * that a hostile depth cannot overflow the stack.
 */
export function checkDeclared(object: string, declared: Record<string, unknown>, options: { storable?: boolean } = {}): void {
  const todo: { value: unknown; path: string; depth: number }[] = [{ value: declared, path: '', depth: 0 }];
  const shown = (path: string): string => JSON.stringify(path.slice(0, 200));
  while (todo.length > 0) {
    const { value, path, depth } = todo.pop()!;
    if (options.storable && typeof value === 'string' && value.includes('\0')) {
      throw invalidDeclaration(object, `has a NUL character (\\u0000) in the value at ${shown(path)}, which PostgreSQL cannot store`);
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_DECLARED_DEPTH) throw invalidDeclaration(object, `nests deeper than ${MAX_DECLARED_DEPTH} levels (at ${shown(path)})`);
    for (const [key, child] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (options.storable && key.includes('\0')) {
        const what = path === 'properties' ? 'field name' : 'key';
        throw invalidDeclaration(object, `has a NUL character (\\u0000) in the ${what} ${shown(at)}, which PostgreSQL cannot store`);
      }
      todo.push({ value: child, path: at, depth: depth + 1 });
    }
  }
}

/** What to land for an object: the common catalog's definition, or one built from a declared schema. */
export function resolveObject(req: ObjectRequest): ObjectDef {
  if (req.kind === 'common') {
    const def = commonObject(req.object);
    if (!def) {
      throw new PglandError('unknown_object', `${JSON.stringify(req.object)} is not a common object`, {
        hint: `use one of ${commonObjects().join(', ')}; or kind standard or custom for a provider's own objects`,
      });
    }
    return def;
  }
  if (req.object.length === 0) throw new PglandError('config_invalid', 'the object name is empty', { hint: 'name the object, e.g. crm_contacts or Account' });
  // The names as given are kept in pgland's metadata (and the provider in every
  // row); PostgreSQL text cannot hold NUL, so refuse it before anything runs.
  for (const [what, name] of [
    ['object', req.object],
    ['provider', req.provider],
  ] as const) {
    if (name.includes('\0')) {
      throw new PglandError('config_invalid', `the ${what} name contains a NUL character, which PostgreSQL cannot store`, {
        hint: `remove the NUL (\\u0000) from the ${what} name`,
      });
    }
  }
  const declared: unknown = req.declared;
  if (declared !== undefined) {
    if (!isObject(declared)) throw invalidDeclaration(req.object, 'is not a JSON object');
    if (declared.properties !== undefined && !isObject(declared.properties)) {
      throw invalidDeclaration(req.object, 'has "properties" that is not a JSON object');
    }
    checkDeclared(req.object, declared);
  }
  return {
    kind: req.kind,
    object: req.object,
    table: tableNameFor(req.kind, req.provider, req.object, req.prefixed ?? true),
    version: 1,
    columns: req.declared ? declaredColumns(req.declared) : [],
  };
}
