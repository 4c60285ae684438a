-- schema pgland

TABLE _pgland_full_refresh_required
  table_name text NOT NULL
  provider text NOT NULL
  customer_id text NOT NULL
  reason text NOT NULL
  since timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_full_refresh_required_pkey PRIMARY KEY (table_name, provider, customer_id)
  CREATE UNIQUE INDEX _pgland_full_refresh_required_pkey ON pgland._pgland_full_refresh_required USING btree (table_name, provider, customer_id)

UNLOGGED TABLE _pgland_full_refresh_seen
  run_id uuid NOT NULL
  id text NOT NULL
  CONSTRAINT _pgland_full_refresh_seen_pkey PRIMARY KEY (run_id, id)
  CREATE UNIQUE INDEX _pgland_full_refresh_seen_pkey ON pgland._pgland_full_refresh_seen USING btree (run_id, id)

TABLE _pgland_leases
  provider text NOT NULL
  customer_id text NOT NULL
  object text NOT NULL
  token uuid NOT NULL
  expires_at timestamp with time zone NOT NULL
  taken_at timestamp with time zone NOT NULL DEFAULT now()
  holder_pid integer
  holder_start timestamp with time zone
  CONSTRAINT _pgland_leases_pkey PRIMARY KEY (provider, customer_id, object)
  CREATE UNIQUE INDEX _pgland_leases_pkey ON pgland._pgland_leases USING btree (provider, customer_id, object)

TABLE _pgland_migrations
  id integer NOT NULL
  name text NOT NULL
  applied_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_migrations_pkey PRIMARY KEY (id)
  CREATE UNIQUE INDEX _pgland_migrations_pkey ON pgland._pgland_migrations USING btree (id)

TABLE _pgland_problems
  run_id uuid NOT NULL
  line_number bigint NOT NULL
  record_id text NOT NULL
  field text NOT NULL
  column_name text NOT NULL
  reason text NOT NULL
  value_excerpt text
  noted_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_problems_pkey PRIMARY KEY (run_id, line_number, column_name)
  CONSTRAINT _pgland_problems_run_id_fkey FOREIGN KEY (run_id) REFERENCES pgland._pgland_runs(run_id) ON DELETE CASCADE
  CREATE UNIQUE INDEX _pgland_problems_pkey ON pgland._pgland_problems USING btree (run_id, line_number, column_name)

TABLE _pgland_rejects
  run_id uuid NOT NULL
  line_number bigint NOT NULL
  record_id text
  reason text NOT NULL
  raw_text text NOT NULL
  rejected_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_rejects_pkey PRIMARY KEY (run_id, line_number)
  CONSTRAINT _pgland_rejects_run_id_fkey FOREIGN KEY (run_id) REFERENCES pgland._pgland_runs(run_id) ON DELETE CASCADE
  CREATE UNIQUE INDEX _pgland_rejects_pkey ON pgland._pgland_rejects USING btree (run_id, line_number)

TABLE _pgland_run_batches
  run_id uuid NOT NULL
  batch_no integer NOT NULL
  rows_read bigint NOT NULL
  committed_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_run_batches_pkey PRIMARY KEY (run_id, batch_no)
  CONSTRAINT _pgland_run_batches_run_id_fkey FOREIGN KEY (run_id) REFERENCES pgland._pgland_runs(run_id) ON DELETE CASCADE
  CREATE UNIQUE INDEX _pgland_run_batches_pkey ON pgland._pgland_run_batches USING btree (run_id, batch_no)

TABLE _pgland_runs
  run_id uuid NOT NULL
  provider text NOT NULL
  customer_id text NOT NULL
  object text NOT NULL
  object_kind text NOT NULL
  table_name text NOT NULL
  mode text NOT NULL
  write_mode text NOT NULL DEFAULT 'upsert'::text
  status text NOT NULL
  started_at timestamp with time zone NOT NULL DEFAULT now()
  finished_at timestamp with time zone
  batches integer NOT NULL DEFAULT 0
  rows_read bigint NOT NULL DEFAULT 0
  rows_inserted bigint NOT NULL DEFAULT 0
  rows_updated bigint NOT NULL DEFAULT 0
  rows_unchanged bigint NOT NULL DEFAULT 0
  rows_superseded bigint NOT NULL DEFAULT 0
  rows_rejected bigint NOT NULL DEFAULT 0
  problems bigint NOT NULL DEFAULT 0
  nul_stripped bigint NOT NULL DEFAULT 0
  error text
  pgland_version text
  rows_deleted bigint NOT NULL DEFAULT 0
  rows_undeleted bigint NOT NULL DEFAULT 0
  rows_skipped bigint NOT NULL DEFAULT 0
  max_last_modified_at timestamp with time zone
  options jsonb NOT NULL DEFAULT '{}'::jsonb
  CONSTRAINT _pgland_runs_mode_check CHECK ((mode = ANY (ARRAY['full'::text, 'incremental'::text])))
  CONSTRAINT _pgland_runs_pkey PRIMARY KEY (run_id)
  CONSTRAINT _pgland_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'partial'::text, 'failed'::text, 'cancelled'::text, 'abandoned'::text])))
  CREATE INDEX _pgland_runs_object_idx ON pgland._pgland_runs USING btree (provider, customer_id, object, started_at DESC)
  CREATE UNIQUE INDEX _pgland_runs_pkey ON pgland._pgland_runs USING btree (run_id)

TABLE _pgland_saved_views
  saved_id bigint NOT NULL DEFAULT nextval('pgland._pgland_saved_views_saved_id_seq'::regclass)
  table_name text NOT NULL
  view_schema text NOT NULL
  view_name text NOT NULL
  view_kind text NOT NULL
  definition text NOT NULL
  owner text NOT NULL
  comment text
  restored boolean
  error text
  saved_at timestamp with time zone NOT NULL DEFAULT now()
  options text[]
  CONSTRAINT _pgland_saved_views_pkey PRIMARY KEY (saved_id)
  CONSTRAINT _pgland_saved_views_view_kind_check CHECK ((view_kind = ANY (ARRAY['view'::text, 'materialized view'::text])))
  CREATE UNIQUE INDEX _pgland_saved_views_pkey ON pgland._pgland_saved_views USING btree (saved_id)

SEQUENCE _pgland_saved_views_saved_id_seq

TABLE _pgland_tables
  table_name text NOT NULL
  object text NOT NULL
  object_kind text NOT NULL
  catalog_version integer NOT NULL
  definition jsonb NOT NULL
  needs_full_refresh boolean NOT NULL DEFAULT false
  full_refresh_reason text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  evolved_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_tables_pkey PRIMARY KEY (table_name)
  CREATE UNIQUE INDEX _pgland_tables_pkey ON pgland._pgland_tables USING btree (table_name)

TABLE _pgland_watermarks
  provider text NOT NULL
  customer_id text NOT NULL
  object text NOT NULL
  high_water_mark timestamp with time zone NOT NULL
  run_id uuid NOT NULL
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_watermarks_pkey PRIMARY KEY (provider, customer_id, object)
  CREATE UNIQUE INDEX _pgland_watermarks_pkey ON pgland._pgland_watermarks USING btree (provider, customer_id, object)

FUNCTION _pgland_cast_bigint(v jsonb) RETURNS bigint LANGUAGE plpgsql IMMUTABLE
BEGIN
  IF jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^[+-]?[0-9]+$' THEN
    RETURN (v #>> '{}')::bigint;
  END IF;
  RETURN NULL;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN NULL;
END

FUNCTION _pgland_cast_boolean(v jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE
SELECT CASE
    WHEN jsonb_typeof(v) = 'boolean' THEN (v #>> '{}')::boolean
    WHEN jsonb_typeof(v) = 'string' AND lower(v #>> '{}') IN ('true', 'false') THEN lower(v #>> '{}')::boolean
  END

FUNCTION _pgland_cast_date(v jsonb) RETURNS date LANGUAGE plpgsql STABLE
BEGIN
  RETURN "pgland"._pgland_cast_timestamptz(v)::date;
EXCEPTION WHEN data_exception THEN
  RETURN NULL;
END

FUNCTION _pgland_cast_double_precision(v jsonb) RETURNS double precision LANGUAGE plpgsql IMMUTABLE
BEGIN
  RETURN "pgland"._pgland_cast_numeric(v)::double precision;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN NULL;
END

FUNCTION _pgland_cast_jsonb(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
SELECT v

FUNCTION _pgland_cast_numeric(v jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE
BEGIN
  IF jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
    RETURN (v #>> '{}')::numeric;
  END IF;
  RETURN NULL;
EXCEPTION WHEN numeric_value_out_of_range OR invalid_text_representation THEN
  RETURN NULL;
END

FUNCTION _pgland_cast_text(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE
SELECT CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' WHEN 'number' THEN v #>> '{}' WHEN 'boolean' THEN v #>> '{}' END

FUNCTION _pgland_cast_timestamptz(v jsonb) RETURNS timestamp with time zone LANGUAGE plpgsql STABLE
BEGIN
  -- Only ISO 8601 text: PostgreSQL would also read 'now' or 'yesterday'.
  IF jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$' THEN
    RETURN (v #>> '{}')::timestamptz;
  END IF;
  RETURN NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR data_exception THEN
  RETURN NULL;
END
