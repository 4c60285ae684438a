-- pgland's control database (service mode): destinations, runs opened over
-- HTTP, the outbound webhook outbox, inbound webhook ids, schedules.
-- {{schema}} is replaced by the quoted control schema before this runs.
-- Secrets are stored encrypted (AES-256-GCM, src/service/control/secrets.ts): the
-- columns named secret* hold an envelope, never plain text.

CREATE TABLE {{schema}}.destinations (
  id          uuid PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  config      jsonb NOT NULL,          -- the destination config without its secrets
  secrets     text,                    -- encrypted JSON of the secret keys, NULL when none
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A run known to the service: opened over HTTP (staged until commit) or run by a schedule.
CREATE TABLE {{schema}}.runs (
  id              uuid PRIMARY KEY,
  destination_id  uuid REFERENCES {{schema}}.destinations (id) ON DELETE SET NULL,
  destination_run_id uuid,             -- the run's id in the destination's _pgland_runs (an HTTP run's own id)
  origin          text NOT NULL CHECK (origin IN ('http', 'schedule')),
  schedule_id     uuid,
  job_id          uuid,                -- the pg-boss job of a scheduled run
  provider        text NOT NULL,
  customer_id     text NOT NULL,
  object          text NOT NULL,
  kind            text NOT NULL,
  mode            text NOT NULL CHECK (mode IN ('full', 'incremental')),
  write_mode      text NOT NULL,
  options         jsonb NOT NULL DEFAULT '{}',  -- match column, ignore deletes, declared schema
  schema_name     text NOT NULL,                -- the destination schema the run stages into
  status          text NOT NULL CHECK (status IN ('open', 'committing', 'running', 'succeeded', 'partial', 'failed', 'cancelled')),
  counts          jsonb,
  watermark       timestamptz,
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX runs_status_idx ON {{schema}}.runs (status, created_at);
CREATE INDEX runs_destination_idx ON {{schema}}.runs (destination_id, created_at DESC);

-- Where sync webhooks go. events empty: every event type.
CREATE TABLE {{schema}}.webhook_endpoints (
  id              uuid PRIMARY KEY,
  url             text NOT NULL,
  description     text NOT NULL DEFAULT '',
  events          text[] NOT NULL DEFAULT '{}',
  destination_id  uuid REFERENCES {{schema}}.destinations (id) ON DELETE CASCADE,  -- NULL: every destination
  secret          text NOT NULL,       -- encrypted whsec_… signing secret
  enabled         boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- The outbox: one message per event (its id is the webhook-id, the same on
-- every attempt and every endpoint), one delivery per (message, endpoint).
CREATE TABLE {{schema}}.webhook_messages (
  id          text PRIMARY KEY,
  event_type  text NOT NULL,
  body        text NOT NULL,           -- the exact JSON sent (and signed)
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.webhook_deliveries (
  id               uuid PRIMARY KEY,
  message_id       text NOT NULL REFERENCES {{schema}}.webhook_messages (id) ON DELETE CASCADE,
  endpoint_id      uuid NOT NULL REFERENCES {{schema}}.webhook_endpoints (id) ON DELETE CASCADE,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  retry_from       integer NOT NULL DEFAULT 0,   -- attempts before a manual redelivery: the budget counts from here
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,          -- a sender holds it until then (a sender that died lets go)
  last_error       text,
  delivered_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due_idx ON {{schema}}.webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE {{schema}}.webhook_attempts (
  delivery_id       uuid NOT NULL REFERENCES {{schema}}.webhook_deliveries (id) ON DELETE CASCADE,
  attempt           integer NOT NULL,
  started_at        timestamptz NOT NULL,
  duration_ms       integer NOT NULL,
  status_code       integer,             -- NULL: no HTTP answer (refused, timed out, reset)
  error             text,
  response_excerpt  text,
  PRIMARY KEY (delivery_id, attempt)
);

-- Inbound webhooks accepted, keyed by webhook-id: a second delivery of an id is a replay.
CREATE TABLE {{schema}}.inbound_webhooks (
  webhook_id   text PRIMARY KEY,
  event_type   text,
  payload      jsonb NOT NULL,
  signed_at    timestamptz NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbound_webhooks_received_idx ON {{schema}}.inbound_webhooks (received_at);

-- A cron schedule per (destination, tenant, object), run as pg-boss jobs.
CREATE TABLE {{schema}}.schedules (
  id               uuid PRIMARY KEY,
  destination_id   uuid NOT NULL REFERENCES {{schema}}.destinations (id) ON DELETE RESTRICT,
  provider         text NOT NULL,
  customer_id      text NOT NULL,
  object           text NOT NULL,
  kind             text NOT NULL,
  mode             text NOT NULL CHECK (mode IN ('full', 'incremental')),
  write_mode       text NOT NULL,
  options          jsonb NOT NULL DEFAULT '{}',
  cron             text NOT NULL,
  timezone         text NOT NULL DEFAULT 'UTC',
  source           text NOT NULL,        -- encrypted JSON: a command or a URL (may hold credentials)
  source_kind      text NOT NULL CHECK (source_kind IN ('command', 'url')),
  timeout_seconds  integer NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  last_fired_at    timestamptz,          -- the cron slot the dispatcher last enqueued
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (destination_id, provider, customer_id, object)
);
