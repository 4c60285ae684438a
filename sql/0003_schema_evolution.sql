-- Schema evolution: what each landed table was built from, the customer views
-- saved around a rebuild, and the casts used to re-land typed columns from the
-- stored raw payloads.

CREATE TABLE {{schema}}._pgland_tables (
  table_name          text PRIMARY KEY,
  object              text NOT NULL,
  object_kind         text NOT NULL,
  catalog_version     integer NOT NULL,
  definition          jsonb NOT NULL,              -- columns (name, type, source) and primary key
  needs_full_refresh  boolean NOT NULL DEFAULT false,
  full_refresh_reason text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  evolved_at          timestamptz NOT NULL DEFAULT now()
);

-- Every view and materialized view on a landed table, saved before a rebuild
-- drops it; `restored` says whether it compiled again on the new table.
CREATE TABLE {{schema}}._pgland_saved_views (
  saved_id     bigserial PRIMARY KEY,
  table_name   text NOT NULL,
  view_schema  text NOT NULL,
  view_name    text NOT NULL,
  view_kind    text NOT NULL CHECK (view_kind IN ('view', 'materialized view')),
  definition   text NOT NULL,
  owner        text NOT NULL,
  comment      text,
  restored     boolean,
  error        text,
  saved_at     timestamptz NOT NULL DEFAULT now()
);

-- Casts from a JSON value to a column type that return NULL instead of failing:
-- a value that does not fit must never fail a rebuild (at load time such a value
-- becomes a row in _pgland_problems; here it stays in the raw payload).
CREATE FUNCTION {{schema}}._pgland_cast_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' WHEN 'number' THEN v #>> '{}' WHEN 'boolean' THEN v #>> '{}' END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_boolean(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN jsonb_typeof(v) = 'boolean' THEN (v #>> '{}')::boolean
    WHEN jsonb_typeof(v) = 'string' AND lower(v #>> '{}') IN ('true', 'false') THEN lower(v #>> '{}')::boolean
  END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_bigint(v jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^[+-]?[0-9]+$' THEN
    RETURN (v #>> '{}')::bigint;
  END IF;
  RETURN NULL;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_numeric(v jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
    RETURN (v #>> '{}')::numeric;
  END IF;
  RETURN NULL;
EXCEPTION WHEN numeric_value_out_of_range OR invalid_text_representation THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_double_precision(v jsonb) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN {{schema}}._pgland_cast_numeric(v)::double precision;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_timestamptz(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
  -- Only ISO 8601 text: PostgreSQL would also read 'now' or 'yesterday'.
  IF jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$' THEN
    RETURN (v #>> '{}')::timestamptz;
  END IF;
  RETURN NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR data_exception THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_date(v jsonb) RETURNS date
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN {{schema}}._pgland_cast_timestamptz(v)::date;
EXCEPTION WHEN data_exception THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}._pgland_cast_jsonb(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$ SELECT v $$;

-- Tenants whose data in a table must be re-sent in full: after a rebuild (every
-- tenant in the table), or a new column that cannot be backfilled. A completed
-- full refresh of the tenant's object removes its row.
CREATE TABLE {{schema}}._pgland_full_refresh_required (
  table_name   text NOT NULL,
  provider     text NOT NULL,
  customer_id  text NOT NULL,
  reason       text NOT NULL,
  since        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, provider, customer_id)
);
