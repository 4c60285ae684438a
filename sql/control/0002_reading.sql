-- Reading from a customer's PostgreSQL (issue 17): schedules whose source is
-- a PostgreSQL table or query, the bookmark each such schedule has reached,
-- and the audit of query actions run over the API.
-- {{schema}} is replaced by the quoted control schema before this runs.

ALTER TABLE {{schema}}.schedules DROP CONSTRAINT schedules_source_kind_check;
ALTER TABLE {{schema}}.schedules ADD CONSTRAINT schedules_source_kind_check CHECK (source_kind IN ('command', 'url', 'postgres'));

-- Where a schedule's PostgreSQL import stands: a Singer STATE value
-- ({"bookmarks": {"import": {replication_key_value, key_value, …}}}),
-- written only after the run that read up to it committed.
CREATE TABLE {{schema}}.import_states (
  schedule_id  uuid PRIMARY KEY REFERENCES {{schema}}.schedules (id) ON DELETE CASCADE,
  state        jsonb NOT NULL,
  run_id       uuid NOT NULL,         -- the run after which it was stored
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every query action (POST /destinations/{id}/query and /exec): who ran
-- what, when, and what came of it. The statement is kept as its SHA-256,
-- never its text or its parameters (they may hold personal data).
CREATE TABLE {{schema}}.query_actions (
  id               uuid PRIMARY KEY,
  destination_id   uuid REFERENCES {{schema}}.destinations (id) ON DELETE SET NULL,
  action           text NOT NULL CHECK (action IN ('query', 'exec')),
  caller           text NOT NULL,     -- the token's identity, or "token"
  statement_sha256 text NOT NULL,
  params           integer NOT NULL,  -- how many parameters were given
  row_count        integer,
  duration_ms      integer NOT NULL,
  outcome          text NOT NULL,     -- "ok", or the error code (query_timeout, permission_denied, …)
  started_at       timestamptz NOT NULL
);
CREATE INDEX query_actions_destination_idx ON {{schema}}.query_actions (destination_id, started_at DESC);
