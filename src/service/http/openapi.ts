/**
 * The OpenAPI 3.1 document, built from the routes' own schemas (the ones
 * fastify validates and serialises with), so that the document and the
 * server cannot disagree. Served at /openapi.json; docs/openapi.json is a
 * copy that a test keeps current.
 */
export interface RouteDoc {
  method: string | string[];
  url: string;
  schema: Record<string, unknown>;
  config: { public?: boolean; ndjson?: boolean };
}

type Json = Record<string, unknown>;

function parameters(schema: unknown, where: 'path' | 'query'): Json[] {
  const s = schema as { properties?: Record<string, Json>; required?: string[] } | undefined;
  if (!s?.properties) return [];
  return Object.entries(s.properties).map(([name, prop]) => {
    const { description, ...rest } = prop;
    return {
      name,
      in: where,
      required: where === 'path' || (s.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const REASONS: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '202': 'Accepted',
  '204': 'No content',
  '400': 'Invalid request',
  '401': 'Missing or wrong credentials',
  '404': 'Not found',
  '409': "Conflict with the resource's state",
  '413': 'Body too large',
  '422': 'The run failed',
  '502': 'The destination database could not be reached, or refused',
  '503': 'Not ready, or a transient failure: retry',
};

/**
 * Replaces every occurrence of a named schema (the same object, by
 * reference) with a $ref to components/schemas, so each is written once.
 */
function hoist(value: unknown, named: Map<unknown, string>, top = true): unknown {
  if (!top && named.has(value)) return { $ref: `#/components/schemas/${named.get(value)}` };
  if (Array.isArray(value)) return value.map((v) => hoist(v, named, false));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hoist(v, named, false)]));
  }
  return value;
}

export function buildOpenApi(routes: readonly RouteDoc[], info: { title: string; version: string }, components: Record<string, Json> = {}): Json {
  const named = new Map<unknown, string>(Object.entries(components).map(([name, schema]) => [schema, name]));
  const paths: Record<string, Json> = {};
  const sorted = [...routes].sort((a, b) => a.url.localeCompare(b.url));
  for (const r of sorted) {
    if (r.schema.hide) continue;
    const path = r.url.replace(/:(\w+)/g, '{$1}');
    const { summary, description, tags, body, docBody, params, querystring, response, produces } = r.schema as Json & {
      response?: Record<string, Json>;
      produces?: string;
    };
    const responses: Json = {};
    for (const [code, schema] of Object.entries(response ?? {})) {
      const { description: d, ...rest } = schema;
      // A named schema stays the same object, so that it becomes a $ref.
      const body = named.has(schema) ? schema : rest;
      responses[code] = {
        description: (named.has(schema) ? undefined : (d as string | undefined)) ?? REASONS[code] ?? 'Answer',
        ...(Object.keys(rest).length > 0 ? { content: { [produces ?? 'application/json']: { schema: body } } } : {}),
      };
    }
    if (!r.config.public) responses['401'] ??= { description: REASONS['401'] };
    const requestBody = r.config.ndjson
      ? {
          required: true,
          description: 'NDJSON records, one per line (docs/input.md); may be sent with Content-Encoding: gzip. Streamed, never buffered whole.',
          content: { 'application/x-ndjson': { schema: { type: 'string' } } },
        }
      : (body ?? docBody)
        ? { required: true, content: { 'application/json': { schema: body ?? docBody } } }
        : undefined;
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      const op: Json = {
        ...(summary ? { summary } : {}),
        ...(description ? { description } : {}),
        ...(tags ? { tags } : {}),
        parameters: [...parameters(params, 'path'), ...parameters(querystring, 'query')],
        ...(requestBody ? { requestBody } : {}),
        responses,
        ...(r.config.public ? { security: [] } : {}),
      };
      paths[path] = { ...(paths[path] ?? {}), [m.toLowerCase()]: op };
    }
  }
  return {
    openapi: '3.1.0',
    info: { ...info, description: 'pgland service mode: destinations, runs over HTTP, sync webhooks, schedules. See docs/service.md.' },
    components: {
      schemas: Object.fromEntries(Object.entries(components).map(([name, schema]) => [name, hoist(schema, named)])),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'PGLAND_API_TOKEN' } },
    },
    security: [{ bearer: [] }],
    paths: hoist(paths, named),
  };
}
