-- pgland: a dedicated, least-privileged role for the loader (docs/connecting.md, "Grants").
--
-- Run it once, as a superuser or the database's owner, connected to the database
-- pgland will write to:
--
--   psql -d app -v role=pgland -v password='a long random secret' -f sql/setup/least-privilege.sql
--
-- Variables (psql -v name=value):
--   role       the role pgland logs in as               (default pgland)
--   password   its password                             (required)
--   schema     the config's "schema"                    (default pgland)
--   precreate  0: pgland creates its schema itself      (default 0)
--              1: this script creates the schema and grants ALL on it
--
-- Option A (precreate=0): CONNECT, CREATE and TEMPORARY on the database.
--   CREATE lets pgland create its schema on the first load; TEMPORARY lets it
--   stage every batch in a temporary table.
-- Option B (precreate=1): the schema is created here and pgland gets ALL on it,
--   plus default privileges on what others create there later; the database
--   grants are then only CONNECT and TEMPORARY (no CREATE).
--
-- pgland needs nothing else: no superuser, no replication, no access to other
-- schemas. `pgland check --config <file>` verifies each of these grants and
-- prints the statement that fixes a missing one.

\set ON_ERROR_STOP on
\if :{?role}
\else
  \set role pgland
\endif
\if :{?schema}
\else
  \set schema pgland
\endif
\if :{?precreate}
\else
  \set precreate 0
\endif
\if :{?password}
\else
  \echo 'give the role a password: psql ... -v password=...'
  \quit
\endif

SELECT current_database() AS database \gset

CREATE ROLE :"role" LOGIN PASSWORD :'password';

-- PUBLIC usually holds CONNECT and TEMPORARY already; granting them to the
-- role keeps pgland working where PUBLIC's were revoked.
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"role";

\if :precreate
  -- Option B: a schema made for pgland.
  CREATE SCHEMA IF NOT EXISTS :"schema";
  GRANT ALL ON SCHEMA :"schema" TO :"role";
  GRANT ALL ON ALL TABLES IN SCHEMA :"schema" TO :"role";
  GRANT ALL ON ALL SEQUENCES IN SCHEMA :"schema" TO :"role";
  -- Tables and sequences that this user creates there later stay usable by pgland.
  ALTER DEFAULT PRIVILEGES IN SCHEMA :"schema" GRANT ALL ON TABLES TO :"role";
  ALTER DEFAULT PRIVILEGES IN SCHEMA :"schema" GRANT ALL ON SEQUENCES TO :"role";
\else
  -- Option A: pgland creates (and so owns) its schema and everything in it.
  GRANT CREATE ON DATABASE :"database" TO :"role";
\endif
