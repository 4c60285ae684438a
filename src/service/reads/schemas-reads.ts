import { errorBody, idParams, uuid } from '../http/schemas.js';

/**
 * Schemas of the read endpoints the console uses (src/service/reads/api-reads.ts):
 * a run's rejects, problems and webhooks, a destination's landed tables and
 * plan, a cron's next times.
 */
type Schema = Record<string, unknown>;

const time: Schema = { type: 'string', format: 'date-time' };
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, 'null'] });

export { errorBody, idParams };

export const pageQuery = {
  type: 'object',
  properties: {
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  },
  additionalProperties: false,
} as const;

const page = (item: Schema): Schema => ({
  type: 'object',
  properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: item } },
  required: ['total', 'offset', 'limit', 'items'],
});

export const rejectPage: Schema = page({
  type: 'object',
  properties: {
    line_number: { type: 'integer' },
    record_id: nullable({ type: 'string' }),
    reason: { type: 'string' },
    raw_text: { type: 'string', description: 'the line, cut to its first 2000 characters' },
    rejected_at: time,
  },
});

export const problemPage: Schema = page({
  type: 'object',
  properties: {
    line_number: { type: 'integer' },
    record_id: { type: 'string' },
    field: { type: 'string' },
    column_name: { type: 'string' },
    reason: { type: 'string' },
    value_excerpt: nullable({ type: 'string' }),
    noted_at: time,
  },
});

export const runWebhooks: Schema = {
  type: 'object',
  properties: {
    webhooks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          message_id: { type: 'string' },
          event_type: { type: 'string' },
          created_at: time,
          data: { type: 'object', additionalProperties: true, description: "the event's data as sent; schema.evolved's is the evolution report" },
          deliveries: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: uuid,
                endpoint_id: uuid,
                status: { type: 'string' },
                attempts: { type: 'integer' },
                last_error: nullable({ type: 'string' }),
                delivered_at: nullable(time),
              },
            },
          },
        },
      },
    },
  },
  required: ['webhooks'],
};

export const landedTables: Schema = {
  type: 'object',
  properties: {
    schema: { type: 'string' },
    tables: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          table: { type: 'string' },
          object: { type: 'string' },
          kind: { type: 'string' },
          rows: { type: 'integer' },
          rows_exact: { type: 'boolean', description: "false: counting took over 2 s, rows is the planner's estimate" },
          bytes: { type: 'integer' },
          needs_full_refresh: { type: 'boolean' },
          full_refresh_reason: nullable({ type: 'string' }),
          created_at: time,
          evolved_at: time,
        },
      },
    },
  },
  required: ['schema', 'tables'],
};

export const plans: Schema = {
  type: 'object',
  properties: {
    plans: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          table: { type: 'string' },
          object: { type: 'string' },
          action: { type: 'string', enum: ['none', 'create', 'alter', 'rebuild'] },
          reasons: { type: 'array', items: { type: 'string' } },
          full_refresh_reason: nullable({ type: 'string' }),
          statements: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  required: ['plans'],
};

export const nextRunsQuery = {
  type: 'object',
  properties: {
    cron: { type: 'string', minLength: 1, maxLength: 200 },
    timezone: { type: 'string', maxLength: 100, default: 'UTC' },
    count: { type: 'integer', minimum: 1, maximum: 50, default: 5 },
  },
  required: ['cron'],
  additionalProperties: false,
} as const;

export const nextRuns: Schema = {
  type: 'object',
  properties: { cron: { type: 'string' }, timezone: { type: 'string' }, next_runs: { type: 'array', items: time } },
  required: ['next_runs'],
};

export const grants: Schema = {
  type: 'object',
  properties: {
    role: { type: 'string' },
    database: { type: 'string' },
    schema: { type: 'string' },
    pgland_creates_schema: { type: 'string', description: 'option A: CONNECT, CREATE and TEMPORARY on the database' },
    schema_precreated: { type: 'string', description: 'option B: the schema created for pgland, ALL on it, CONNECT and TEMPORARY on the database' },
    verify: { type: 'string', description: 'a query showing what the role holds' },
  },
  required: ['role', 'database', 'schema', 'pgland_creates_schema', 'schema_precreated', 'verify'],
};
