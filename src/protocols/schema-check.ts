import { isPlainObject } from './messages.js';

/*
 * A stream's JSON Schema is checked before anything is built from it: a
 * SCHEMA whose `properties` is not an object, or a property with a type JSON
 * Schema does not have, is a broken tap. Accepting it would land later
 * records with their raw payload only, and nobody would notice; the Singer
 * SDK's targets stop on it, and so does pgland (docs/protocols.md).
 */

const JSON_SCHEMA_TYPES = new Set(['string', 'integer', 'number', 'boolean', 'object', 'array', 'null']);

/** What is wrong with one property's schema, or undefined. */
function propertyProblem(prop: unknown, depth = 0): string | undefined {
  // `true` / `{}` accept any value (they land as jsonb); `false` accepts none, which is a tap's mistake too.
  if (prop === true) return undefined;
  if (!isPlainObject(prop)) return 'must be a JSON Schema object';
  const { type } = prop;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (types.length === 0) return 'has an empty "type" list';
    for (const t of types) {
      if (typeof t !== 'string' || !JSON_SCHEMA_TYPES.has(t)) {
        return `has the unknown type ${JSON.stringify(t)?.slice(0, 40)} (JSON Schema types are ${[...JSON_SCHEMA_TYPES].join(', ')})`;
      }
    }
  }
  if (depth > 8) return undefined;
  for (const union of ['anyOf', 'oneOf'] as const) {
    const branches = prop[union];
    if (branches === undefined) continue;
    if (!Array.isArray(branches)) return `has "${union}" that is not a list`;
    for (const b of branches) {
      const problem = propertyProblem(b, depth + 1);
      if (problem) return `has an "${union}" branch that ${problem}`;
    }
  }
  return undefined;
}

/** What is wrong with a stream's schema, naming the property; undefined when it can be landed. */
export function schemaProblem(schema: Record<string, unknown>): string | undefined {
  const { properties } = schema;
  if (properties === undefined) return undefined;
  if (!isPlainObject(properties)) return '"properties" must be a JSON object of property schemas';
  for (const [name, prop] of Object.entries(properties)) {
    const problem = propertyProblem(prop);
    if (problem) return `property ${JSON.stringify(name)} ${problem}`;
  }
  return undefined;
}
