import { escapeLiteral as lit } from 'pg';
import { quoteIdent as q } from '../../sql/ident.js';

/**
 * The least-privilege SQL for one destination (docs/connecting.md, "Grants";
 * sql/setup/least-privilege.sql), with its role, database and schema filled
 * in, for the console to show ready to copy. The password is a placeholder:
 * pgland never puts a stored secret into text it returns.
 */
export interface GrantsSql {
  role: string;
  database: string;
  schema: string;
  /** Option A: pgland creates its schema on the first load and owns it. */
  pgland_creates_schema: string;
  /** Option B: you create the schema and grant ALL on it; no CREATE on the database. */
  schema_precreated: string;
  /** Shows what the role holds now. */
  verify: string;
}

const PASSWORD_PLACEHOLDER = "'<a long random password>'";

export function grantsSql(target: { user: string; database: string; schema: string }): GrantsSql {
  const role = q(target.user);
  const db = q(target.database);
  const schema = q(target.schema);
  const createRole = `CREATE ROLE ${role} LOGIN PASSWORD ${PASSWORD_PLACEHOLDER};  -- skip if the role exists`;
  return {
    role: target.user,
    database: target.database,
    schema: target.schema,
    pgland_creates_schema: [createRole, `GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${db} TO ${role};`].join('\n'),
    schema_precreated: [
      createRole,
      `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${role};`,
      `CREATE SCHEMA IF NOT EXISTS ${schema};`,
      `GRANT ALL ON SCHEMA ${schema} TO ${role};`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role};`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT ALL ON TABLES TO ${role};`,
    ].join('\n'),
    verify: [
      `SELECT has_database_privilege(${lit(target.user)}, ${lit(target.database)}, 'CONNECT') AS "connect",`,
      `       has_database_privilege(${lit(target.user)}, ${lit(target.database)}, 'CREATE') AS "create",`,
      `       has_database_privilege(${lit(target.user)}, ${lit(target.database)}, 'TEMPORARY') AS "temporary",`,
      `       has_schema_privilege(${lit(target.user)}, ${lit(target.schema)}, 'USAGE, CREATE') AS schema_all;  -- errors if the schema does not exist yet`,
    ].join('\n'),
  };
}
