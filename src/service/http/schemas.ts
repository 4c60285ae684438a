import { destinationConfigJsonSchema } from '../destinations/destination-store.js';
import { EVENT_TYPES } from '../webhooks/outbox.js';
import { postgresSourceSchema } from '../schedules/pg-import.js';

/**
 * JSON Schemas of the API's bodies and answers: fastify validates every
 * request body with them and serialises answers through them (so an answer
 * carries only the fields listed here), and the OpenAPI document is built
 * from them (src/service/http/openapi.ts).
 */
type Schema = Record<string, unknown>;

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const uuid = { type: 'string', pattern: UUID } as const;
const time: Schema = { type: 'string', format: 'date-time' };
const nullable = <S extends { type?: unknown }>(s: S): Omit<S, 'type'> & { type: readonly [S['type'], 'null'] } => ({ ...s, type: [s.type, 'null'] });
const name = { type: 'string', minLength: 1, maxLength: 1000 } as const;

export const idParams = { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false } as const;

export const errorBody: Schema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'A stable code; docs/errors.md lists every one with its HTTP status, whether it is retryable, its cause and fix' },
        message: { type: 'string' },
        hint: { type: 'string', description: 'What to do about it' },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
};

// ---- destinations
// Built at run time from the config's zod schema, which the store checks the
// config with again; "type" is restated (the same value, in the same place)
// so that a body's config is typed as an object.
export const destinationConfig = {
  ...destinationConfigJsonSchema(),
  type: 'object',
  description: 'A destination config (docs/configuration.md); secrets read "[set]" in answers.',
} as const;
export const destinationBody = {
  type: 'object',
  properties: { name: { ...name, maxLength: 200 }, config: destinationConfig },
  required: ['name', 'config'],
  additionalProperties: false,
} as const;
export const destinationUpdateBody = {
  type: 'object',
  properties: { name: { ...name, maxLength: 200 }, config: destinationConfig },
  required: ['config'],
  additionalProperties: false,
} as const;
export const destination: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    config: { type: 'object', additionalProperties: true },
    status: {
      type: 'string',
      enum: ['ok', 'secrets_unreadable'],
      description:
        'secrets_unreadable: the stored secrets cannot be opened (altered in the control database, or sealed with another PGLAND_SECRET_KEY); the config is shown without them, and the destination cannot be used until its secrets are sent again with PUT',
    },
    problem: { type: 'string', description: 'With secrets_unreadable: why, without any secret' },
    created_at: time,
    updated_at: time,
  },
  required: ['id', 'name', 'config', 'status', 'created_at', 'updated_at'],
};
export const checkReport: Schema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    target: { type: 'object', additionalProperties: true },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          step: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'string', enum: ['pass', 'warn', 'fail', 'skip'] },
          ms: { type: 'number' },
          detail: { type: 'string' },
          code: { type: 'string' },
          fix: { type: 'string' },
        },
      },
    },
  },
};

// ---- runs
const counts: Schema = nullable({ type: 'object', additionalProperties: { type: 'integer' } });
export const openRunBody = {
  type: 'object',
  properties: {
    destination_id: uuid,
    provider: name,
    customer_id: name,
    object: name,
    kind: { type: 'string', enum: ['common', 'standard', 'custom'], default: 'common' },
    mode: { type: 'string', enum: ['incremental', 'full'], default: 'incremental' },
    write: { type: 'string', enum: ['upsert', 'insert', 'update', 'delete', 'sync', 'additive', 'enrich'], default: 'upsert' },
    match_column: name,
    ignore_deletes: { type: 'boolean' },
    declared: { type: 'object', description: "JSON Schema declaring a standard or custom object's fields", additionalProperties: true },
  },
  required: ['destination_id', 'provider', 'customer_id', 'object'],
  additionalProperties: false,
} as const;
/** A run's evolution report (src/service/runs/control-runs.ts, RunEvolution); the schema.evolved webhook carries the same. */
const runEvolution: Schema = {
  type: ['object', 'null'],
  description: 'What schema evolution did to the landed table in the run; null when it changed nothing (docs/schema-evolution.md)',
  properties: {
    table: { type: 'string' },
    schema: { type: 'string' },
    change: { type: 'string', enum: ['table_created', 'table_altered', 'table_rebuilt'] },
    reasons: { type: 'array', items: { type: 'string' } },
    not_restored: {
      type: 'array',
      description: 'your objects (views, policies...) that could not be recreated',
      items: { type: 'object', properties: { label: { type: 'string' }, error: { type: 'string' } }, required: ['label', 'error'] },
    },
    problems: { type: 'integer', description: 'landed values that no longer fit their column (now NULL): rows of _pgland_problems of the run' },
    full_refresh_required: nullable({ type: 'string', description: "why the tenant's next sync must be a full refresh" }),
  },
  required: ['table', 'schema', 'change', 'reasons', 'not_restored', 'problems', 'full_refresh_required'],
};
export const run: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    destination_id: nullable(uuid),
    destination_run_id: nullable(uuid),
    origin: { type: 'string', enum: ['http', 'schedule'] },
    schedule_id: nullable(uuid),
    job_id: nullable(uuid),
    provider: { type: 'string' },
    customer_id: { type: 'string' },
    object: { type: 'string' },
    kind: { type: 'string' },
    mode: { type: 'string' },
    write: { type: 'string' },
    match_column: { type: 'string' },
    ignore_deletes: { type: 'boolean' },
    status: { type: 'string', enum: ['open', 'committing', 'running', 'succeeded', 'partial', 'failed', 'cancelled'] },
    counts,
    watermark: nullable(time),
    error: nullable({ type: 'string' }),
    evolution: runEvolution,
    created_at: time,
    finished_at: nullable(time),
  },
  required: ['id', 'status', 'provider', 'customer_id', 'object', 'mode', 'created_at'],
};
export const runList: Schema = { type: 'object', properties: { runs: { type: 'array', items: run } }, required: ['runs'] };
export const runQuery = {
  type: 'object',
  properties: {
    destination_id: uuid,
    status: { type: 'string' },
    object: { type: 'string' },
    provider: { type: 'string', description: "the tenant's provider" },
    customer_id: { type: 'string', description: "the tenant's customer id" },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
  additionalProperties: false,
} as const;
export const batchParams = {
  type: 'object',
  properties: { id: uuid, batch_no: { type: 'integer', minimum: 1, maximum: 2_000_000_000 } },
  required: ['id', 'batch_no'],
  additionalProperties: false,
} as const;
const { destination_id: _d, mode: _m, ...targetProperties } = openRunBody.properties;
export const writeThroughBody = {
  type: 'object',
  properties: {
    ...targetProperties,
    records: {
      type: 'array',
      description: "The records, each as one line of NDJSON input would be (docs/input.md); at most the server's write-through limit (1,000 by default)",
      items: {},
    },
  },
  required: ['provider', 'customer_id', 'object', 'records'],
  additionalProperties: false,
} as const;
export const writeThroughResult: Schema = {
  type: 'object',
  properties: { run_id: uuid, status: { type: 'string', enum: ['succeeded', 'partial'] }, table: { type: 'string' }, counts, evolution: runEvolution },
  required: ['run_id', 'status', 'table', 'counts'],
};
// ---- into the customer's own tables (docs/own-tables.md)
const intoWrite = { type: 'string', enum: ['insert', 'update', 'upsert', 'delete', 'sync', 'additive', 'enrich'] } as const;
export const intoBody = {
  type: 'object',
  properties: {
    target: {
      ...name,
      description: 'The customer\'s table, "schema.table" (SQL spelling: "My Schema"."Leads" for mixed case); pgland never creates, alters or drops it',
    },
    write: intoWrite,
    match: { ...name, description: 'The column that identifies a row: needed by update, upsert, delete, sync, additive, enrich and groups' },
    map: {
      type: 'object',
      description:
        "column → value: a path into the record (data.email, raw_data.FirstName, id, last_modified_at), a constant ('web form', 42) or now(), lower(v), upper(v), trim(v), coalesce(v, …)",
      additionalProperties: { type: 'string', maxLength: 1000 },
      minProperties: 1,
      maxProperties: 1600,
    },
    groups: {
      type: 'object',
      description: 'A groups table beside the target, one row per (record, group)',
      properties: {
        table: { ...name, description: 'schema.table of the groups table' },
        key_column: { ...name, description: 'its column referring to a record (a foreign key to the target)' },
        name_column: { ...name, description: "its column holding a group's name" },
        from: { ...name, description: 'path in each record to its list of group names, e.g. data.groups' },
      },
      required: ['table', 'key_column', 'name_column', 'from'],
      additionalProperties: false,
    },
    provider: { ...name, description: 'recorded with the run; default "pgland"' },
    customer_id: { ...name, description: 'recorded with the run; default ""' },
    records: { type: 'array', description: 'The records, each as one line of NDJSON input would be (docs/input.md); at most 1000', items: {} },
  },
  required: ['target', 'write', 'map', 'records'],
  additionalProperties: false,
} as const;
export const intoResult: Schema = {
  type: 'object',
  properties: {
    run_id: uuid,
    status: { type: 'string', enum: ['succeeded', 'partial'] },
    table: { type: 'string', description: 'the target, quoted and qualified' },
    counts,
    inserted_id: { description: "insert of one row: its generated key (the primary key's value; an object for a composite key)" },
    groups: { type: 'object', properties: { added: { type: 'integer' }, removed: { type: 'integer' } } },
    rejects: {
      type: 'array',
      description: "The records refused, in input order: line is the record's place in records (from 1); reason names the constraint or column",
      items: {
        type: 'object',
        properties: { line: { type: 'integer' }, record_id: nullable({ type: 'string' }), reason: { type: 'string' } },
        required: ['line', 'record_id', 'reason'],
      },
    },
  },
  required: ['run_id', 'status', 'table', 'counts', 'rejects'],
};
export const commitBody = {
  type: 'object',
  properties: {
    batches: {
      description:
        'The batches the client sent: how many (numbered 1 to N, as POST numbers them) or their numbers (as given to PUT). When the staged batches differ, the commit is refused (409 batches_differ) and changes nothing.',
      anyOf: [
        { type: 'integer', minimum: 0, maximum: 2_000_000_000 },
        { type: 'array', items: { type: 'integer', minimum: 1, maximum: 2_000_000_000 }, uniqueItems: true, maxItems: 100_000 },
      ],
    },
  },
  additionalProperties: false,
} as const;
export const stagedBatch: Schema = {
  type: 'object',
  properties: {
    run_id: uuid,
    batch_no: { type: 'integer' },
    first_line: { type: 'integer' },
    last_line: { type: 'integer' },
    rows_read: { type: 'integer' },
    records: { type: 'integer' },
    rejected: { type: 'integer' },
    problems: { type: 'integer' },
    already_staged: { type: 'boolean' },
  },
  required: ['run_id', 'batch_no', 'rows_read', 'records', 'rejected', 'problems', 'already_staged'],
};

// ---- webhooks
export const endpointBody = {
  type: 'object',
  properties: {
    url: { type: 'string', minLength: 1, maxLength: 2000 },
    secret: { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$', description: 'whsec_<base64>, at least 16 bytes; never returned' },
    description: { type: 'string', maxLength: 1000 },
    events: { type: 'array', items: { type: 'string', enum: [...EVENT_TYPES] }, uniqueItems: true },
    destination_id: nullable(uuid),
    enabled: { type: 'boolean' },
  },
  required: ['url', 'secret'],
  additionalProperties: false,
} as const;
export const endpoint: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    url: { type: 'string' },
    description: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    destination_id: nullable(uuid),
    enabled: { type: 'boolean' },
    secret: { type: 'string', enum: ['[set]'] },
    created_at: time,
  },
  required: ['id', 'url', 'events', 'enabled', 'secret', 'created_at'],
};
export const delivery: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    message_id: { type: 'string', description: 'the webhook-id header: the same on every attempt' },
    endpoint_id: uuid,
    event_type: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    next_attempt_at: nullable(time),
    last_error: nullable({ type: 'string' }),
    delivered_at: nullable(time),
    created_at: time,
  },
  required: ['id', 'message_id', 'endpoint_id', 'status', 'attempts'],
};
export const deliveryQuery = {
  type: 'object',
  properties: {
    endpoint_id: uuid,
    message_id: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
  additionalProperties: false,
} as const;
export const attempt: Schema = {
  type: 'object',
  properties: {
    attempt: { type: 'integer' },
    started_at: time,
    duration_ms: { type: 'integer' },
    status_code: nullable({ type: 'integer' }),
    error: nullable({ type: 'string' }),
    response_excerpt: nullable({ type: 'string' }),
  },
  required: ['attempt', 'started_at', 'duration_ms'],
};
const inboundAction = {
  action: nullable({
    type: 'string',
    enum: ['queued', 'coalesced', 'ignored', null],
    description: 'queued: a run (job_id); coalesced: into the run already queued (job_id); ignored: detail says why',
  }),
  detail: nullable({ type: 'string' }),
  job_id: nullable(uuid),
};
export const inboundEvent: Schema = {
  type: 'object',
  properties: {
    webhook_id: { type: 'string' },
    event_type: nullable({ type: 'string' }),
    payload: { description: 'as received, a source\'s secrets read "[set]"' },
    signed_at: time,
    received_at: time,
    ...inboundAction,
  },
};
export const inboundQuery = {
  type: 'object',
  properties: { action: { type: 'string', enum: ['queued', 'coalesced', 'ignored'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
  additionalProperties: false,
} as const;
export const inboundAnswer: Schema = {
  type: 'object',
  properties: { accepted: { type: 'boolean' }, webhook_id: { type: 'string' }, ...inboundAction },
  required: ['accepted', 'webhook_id', 'action'],
};
export const inboundDocBody: Schema = {
  type: 'object',
  description:
    'A Standard Webhooks payload {"type", "timestamp", "data"}. pgland acts on sync.requested (docs/service.md, "Inbound webhooks"); any other type is stored and listed as ignored.',
  properties: {
    type: { type: 'string', examples: ['sync.requested'] },
    timestamp: { type: 'string' },
    data: {
      type: 'object',
      properties: {
        destination_id: uuid,
        tenant: { type: 'object', properties: { provider: { type: 'string' }, customer_id: { type: 'string' } } },
        object: { type: 'string' },
        kind: { type: 'string', enum: ['common', 'standard', 'custom'] },
        mode: { type: 'string', enum: ['incremental', 'full'] },
        write: { type: 'string' },
        schedule_id: { ...uuid, description: "read the records from this schedule's source" },
        source: { type: 'object', description: 'or from this URL source: {"type": "url", "url", "headers"?}' },
        timeout_seconds: { type: 'integer' },
      },
    },
  },
};

// ---- schedules
const source = {
  oneOf: [
    {
      type: 'object',
      properties: {
        type: { const: 'command' },
        command: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'argv: run without a shell; stdout is NDJSON records' },
        env: { type: 'object', additionalProperties: { type: 'string' }, description: 'extra environment (values are secrets: never returned)' },
        cwd: { type: 'string' },
      },
      required: ['type', 'command'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: {
        type: { const: 'url' },
        url: { type: 'string', minLength: 1, description: "serves NDJSON; {watermark} is replaced by the object's watermark (URL-encoded)" },
        headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'request headers (values are secrets: never returned)' },
      },
      required: ['type', 'url'],
      additionalProperties: false,
    },
    postgresSourceSchema,
  ],
} as const;
export const scheduleBody = {
  type: 'object',
  properties: {
    destination_id: uuid,
    provider: name,
    customer_id: name,
    object: name,
    kind: { type: 'string', enum: ['common', 'standard', 'custom'], default: 'common' },
    mode: { type: 'string', enum: ['incremental', 'full'], default: 'incremental' },
    write: { type: 'string', enum: ['upsert', 'insert', 'update', 'delete', 'sync', 'additive', 'enrich'], default: 'upsert' },
    match_column: name,
    ignore_deletes: { type: 'boolean' },
    declared: { type: 'object', additionalProperties: true },
    cron: { type: 'string', minLength: 1, maxLength: 200, description: 'five or six cron fields, e.g. "*/15 * * * *"' },
    timezone: { type: 'string', default: 'UTC' },
    timeout_seconds: { type: 'integer', minimum: 10, maximum: 86_400, default: 3600 },
    enabled: { type: 'boolean', default: true },
    source,
  },
  required: ['destination_id', 'provider', 'customer_id', 'object', 'cron', 'source'],
  additionalProperties: false,
} as const;
export const schedule: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    destination_id: uuid,
    provider: { type: 'string' },
    customer_id: { type: 'string' },
    object: { type: 'string' },
    kind: { type: 'string' },
    mode: { type: 'string' },
    write: { type: 'string' },
    match_column: { type: 'string' },
    ignore_deletes: { type: 'boolean' },
    declared: { type: 'object', additionalProperties: true, description: 'the declared JSON Schema of a standard or custom object' },
    cron: { type: 'string' },
    timezone: { type: 'string' },
    timeout_seconds: { type: 'integer' },
    enabled: { type: 'boolean' },
    source: { type: 'object', additionalProperties: true },
    next_run_at: nullable(time),
    created_at: time,
    updated_at: time,
  },
  required: ['id', 'destination_id', 'object', 'cron', 'enabled', 'source'],
};
export const deadLetter: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    reason: nullable({ type: 'string', description: 'cron, manual or webhook: what queued the run' }),
    schedule_id: nullable(uuid),
    inbound_id: nullable({ type: 'string', description: 'the webhook-id of the sync.requested' }),
    destination_id: nullable(uuid),
    provider: nullable({ type: 'string' }),
    customer_id: nullable({ type: 'string' }),
    object: nullable({ type: 'string' }),
    attempts: { type: 'integer', description: 'attempts made: the first and its retries' },
    last_error: nullable({ type: 'string' }),
    created_on: time,
  },
  required: ['id', 'attempts', 'last_error', 'created_on'],
};
export const job: Schema = {
  type: 'object',
  properties: { job_id: nullable({ type: 'string' }), queued: { type: 'boolean' } },
  required: ['job_id', 'queued'],
};

export const health: Schema = {
  type: 'object',
  properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: { type: 'string' } } },
  required: ['status'],
};

/** Schemas written once in the OpenAPI document's components and referred to elsewhere. */
export const COMPONENTS: Record<string, Schema> = {
  Error: errorBody,
  DestinationConfig: destinationConfig,
  Destination: destination,
  CheckReport: checkReport,
  Run: run,
  StagedBatch: stagedBatch,
  WebhookEndpoint: endpoint,
  WebhookDelivery: delivery,
  WebhookAttempt: attempt,
  Schedule: schedule,
  ScheduleSource: source,
};
