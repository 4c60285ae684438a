-- pgland's metadata: one row per sync run, and what a run could not land.
-- {{schema}} is replaced by the quoted target schema before this runs.

CREATE TABLE {{schema}}._pgland_runs (
  run_id          uuid PRIMARY KEY,
  provider        text NOT NULL,
  customer_id     text NOT NULL,
  object          text NOT NULL,
  object_kind     text NOT NULL,
  table_name      text NOT NULL,
  mode            text NOT NULL CHECK (mode IN ('full', 'incremental')),
  write_mode      text NOT NULL DEFAULT 'upsert',
  status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'cancelled')),
  started_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  batches         integer NOT NULL DEFAULT 0,
  rows_read       bigint NOT NULL DEFAULT 0,   -- non-blank input lines
  rows_inserted   bigint NOT NULL DEFAULT 0,
  rows_updated    bigint NOT NULL DEFAULT 0,
  rows_unchanged  bigint NOT NULL DEFAULT 0,   -- identical to, or older than, the landed version
  rows_superseded bigint NOT NULL DEFAULT 0,   -- a later version of the same id came in the same batch
  rows_rejected   bigint NOT NULL DEFAULT 0,
  problems        bigint NOT NULL DEFAULT 0,
  nul_stripped    bigint NOT NULL DEFAULT 0,
  error           text,
  pgland_version  text
);

CREATE INDEX _pgland_runs_object_idx
  ON {{schema}}._pgland_runs (provider, customer_id, object, started_at DESC);

-- A record that could not be landed at all, with the line it came from.
CREATE TABLE {{schema}}._pgland_rejects (
  run_id       uuid NOT NULL REFERENCES {{schema}}._pgland_runs (run_id) ON DELETE CASCADE,
  line_number  bigint NOT NULL,
  record_id    text,
  reason       text NOT NULL,
  raw_text     text NOT NULL,   -- the line, cut to 64 KiB
  rejected_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, line_number)
);

-- A value that did not fit its column: the record landed, the value is in the raw payload.
CREATE TABLE {{schema}}._pgland_problems (
  run_id         uuid NOT NULL REFERENCES {{schema}}._pgland_runs (run_id) ON DELETE CASCADE,
  line_number    bigint NOT NULL,
  record_id      text NOT NULL,
  field          text NOT NULL,
  column_name    text NOT NULL,
  reason         text NOT NULL,
  value_excerpt  text,
  noted_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, line_number, column_name)
);
