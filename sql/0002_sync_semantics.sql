-- Sync semantics: watermarks, full-refresh bookkeeping, per-batch commits, richer run counters.

ALTER TABLE {{schema}}._pgland_runs
  ADD COLUMN rows_deleted          bigint NOT NULL DEFAULT 0,  -- live rows marked deleted (soft) or removed (hard)
  ADD COLUMN rows_undeleted        bigint NOT NULL DEFAULT 0,  -- deleted rows brought back by a newer live version
  ADD COLUMN rows_skipped          bigint NOT NULL DEFAULT 0,  -- update/delete modes: no landed row matched
  ADD COLUMN max_last_modified_at  timestamptz,                -- the newest version this run landed
  ADD COLUMN options               jsonb NOT NULL DEFAULT '{}';

ALTER TABLE {{schema}}._pgland_runs DROP CONSTRAINT _pgland_runs_status_check;
ALTER TABLE {{schema}}._pgland_runs ADD CONSTRAINT _pgland_runs_status_check
  CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'cancelled', 'abandoned'));

-- One row per committed batch, written in the batch's own transaction. A batch
-- replayed after a lost connection checks here first, so an ambiguous commit
-- is never applied (or counted) twice.
CREATE TABLE {{schema}}._pgland_run_batches (
  run_id        uuid NOT NULL REFERENCES {{schema}}._pgland_runs (run_id) ON DELETE CASCADE,
  batch_no      integer NOT NULL,
  rows_read     bigint NOT NULL,
  committed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, batch_no)
);

-- Where each (tenant, object) stands: the newest last-modified time landed by a
-- completed run, and that run. The next incremental run may start at >= this.
CREATE TABLE {{schema}}._pgland_watermarks (
  provider          text NOT NULL,
  customer_id       text NOT NULL,
  object            text NOT NULL,
  high_water_mark   timestamptz NOT NULL,
  run_id            uuid NOT NULL,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, customer_id, object)
);

-- The ids a full refresh has delivered so far. Unlogged: it only has to outlive
-- the loader process, not the server (a server crash fails the run anyway, and
-- a failed full refresh deletes nothing).
CREATE UNLOGGED TABLE {{schema}}._pgland_full_refresh_seen (
  run_id  uuid NOT NULL,
  id      text NOT NULL,
  PRIMARY KEY (run_id, id)
);
