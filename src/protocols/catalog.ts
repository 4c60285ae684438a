import type { DeclaredSchema } from '../catalog/declared.js';
import { PglandError } from '../errors.js';
import { isPlainObject } from './messages.js';

/*
 * The ConfiguredAirbyteCatalog that `pgland airbyte write --catalog` reads:
 * per stream, its JSON Schema, destination_sync_mode, primary_key,
 * cursor_field and generation ids (docs/protocols.md).
 */

export type DestinationSyncMode = 'append' | 'overwrite' | 'append_dedup' | 'overwrite_dedup';
const SYNC_MODES: readonly string[] = ['append', 'overwrite', 'append_dedup', 'overwrite_dedup'];

/** One stream of a ConfiguredAirbyteCatalog, as pgland uses it. */
export interface ConfiguredStream {
  name: string;
  namespace: string | undefined;
  jsonSchema: DeclaredSchema;
  mode: DestinationSyncMode;
  primaryKey: string[][];
  cursorField: string[];
  generationId: number | undefined;
  minimumGenerationId: number | undefined;
  syncId: number | undefined;
}

function catalogError(message: string): PglandError {
  return new PglandError('config_invalid', `invalid configured catalog: ${message}`, {
    hint: 'give the ConfiguredAirbyteCatalog the platform wrote for this sync ({"streams": [{"stream": {…}, "destination_sync_mode": …}]})',
  });
}

function optionalInt(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw catalogError(`${what} must be an integer`);
  return v;
}

function isPath(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string');
}

/** Airbyte protocol v1's well-known types, as the JSON Schema types pgland reads (declared.ts). */
const WELL_KNOWN: Record<string, Record<string, string>> = {
  String: { type: 'string' },
  BinaryData: { type: 'string' },
  Boolean: { type: 'boolean' },
  Integer: { type: 'integer' },
  Number: { type: 'number' },
  Date: { type: 'string', format: 'date' },
  TimestampWithTimezone: { type: 'string', format: 'date-time' },
  TimestampWithoutTimezone: { type: 'string', format: 'date-time' },
  TimeWithTimezone: { type: 'string' },
  TimeWithoutTimezone: { type: 'string' },
};

/** A property declared as {"$ref": "WellKnownTypes.json#/definitions/Integer"} (or in a oneOf/anyOf) read as its type. */
function wellKnown(prop: unknown): unknown {
  if (!isPlainObject(prop)) return prop;
  const ref = typeof prop.$ref === 'string' ? /WellKnownTypes\.json#\/definitions\/(\w+)$/.exec(prop.$ref)?.[1] : undefined;
  if (ref && WELL_KNOWN[ref]) return { ...WELL_KNOWN[ref] };
  for (const union of ['oneOf', 'anyOf'] as const) {
    if (Array.isArray(prop[union])) return { ...prop, [union]: (prop[union] as unknown[]).map(wellKnown) };
  }
  return prop;
}

function declaredOf(jsonSchema: unknown): DeclaredSchema {
  if (!isPlainObject(jsonSchema)) return {};
  const props = isPlainObject(jsonSchema.properties) ? jsonSchema.properties : {};
  return {
    ...(jsonSchema as DeclaredSchema),
    properties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, wellKnown(v)])) as DeclaredSchema['properties'],
  };
}

/** Reads and checks a ConfiguredAirbyteCatalog. */
export function parseCatalog(value: unknown): ConfiguredStream[] {
  if (!isPlainObject(value) || !Array.isArray(value.streams)) throw catalogError('it must be a JSON object with a "streams" list');
  return value.streams.map((entry: unknown, i: number): ConfiguredStream => {
    if (!isPlainObject(entry) || !isPlainObject(entry.stream)) throw catalogError(`streams[${i}] has no "stream" object`);
    const s = entry.stream;
    if (typeof s.name !== 'string' || s.name.length === 0) throw catalogError(`streams[${i}].stream.name must be a non-empty string`);
    const label = `stream "${s.name}"`;
    const namespace = typeof s.namespace === 'string' && s.namespace.length > 0 ? s.namespace : undefined;
    const mode = entry.destination_sync_mode ?? 'append';
    if (typeof mode !== 'string' || !SYNC_MODES.includes(mode)) {
      throw catalogError(`${label}: destination_sync_mode must be one of ${SYNC_MODES.join(', ')}`);
    }
    const pk = entry.primary_key ?? [];
    if (!Array.isArray(pk) || !pk.every(isPath)) throw catalogError(`${label}: primary_key must be a list of field paths, e.g. [["id"]]`);
    if (mode.endsWith('_dedup') && pk.length === 0) {
      throw catalogError(`${label}: ${mode} needs a primary_key`);
    }
    const cursor = entry.cursor_field ?? [];
    if (!Array.isArray(cursor) || !cursor.every((c) => typeof c === 'string'))
      throw catalogError(`${label}: cursor_field must be a field path, e.g. ["updated_at"]`);
    const jsonSchema = declaredOf(s.json_schema);
    return {
      name: s.name,
      namespace,
      jsonSchema,
      mode: mode as DestinationSyncMode,
      primaryKey: pk as string[][],
      cursorField: cursor as string[],
      generationId: optionalInt(entry.generation_id, `${label}: generation_id`),
      minimumGenerationId: optionalInt(entry.minimum_generation_id, `${label}: minimum_generation_id`),
      syncId: optionalInt(entry.sync_id, `${label}: sync_id`),
    };
  });
}
