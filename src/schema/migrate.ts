import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { PglandError, sqlState } from '../errors.js';
import { PACKAGE_ROOT, PGLAND_VERSION } from '../package.js';
import { quoteIdent } from '../sql/ident.js';
import { inTransaction } from '../sql/transaction.js';

const SQL_DIR = join(PACKAGE_ROOT, 'sql');

interface Migration {
  id: number;
  name: string;
  text: string;
}

async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (name) => ({ id: Number(name.slice(0, 4)), name, text: await readFile(join(dir, name), 'utf8') })));
}

/**
 * Two loaders starting together must not both create the schema or apply a
 * migration: each step runs in its own transaction under an advisory lock
 * keyed on the schema name, and re-checks under the lock.
 */
async function lockSchema(client: pg.PoolClient, schema: string): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('pgland.schema.' || $1::text, 0))`, [schema]);
}

async function schemaExists(client: pg.PoolClient, schema: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return rowCount === 1;
}

/**
 * Creates the target schema when it is missing. The existence check comes
 * first: a user with ALL on a pre-created schema but no CREATE on the database
 * must not fail here (CREATE SCHEMA IF NOT EXISTS checks the database grant
 * before it looks for the schema).
 */
export async function ensureSchema(client: pg.PoolClient, schema: string): Promise<void> {
  if (await schemaExists(client, schema)) return;
  try {
    await inTransaction(client, async () => {
      await lockSchema(client, schema);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    });
  } catch (err) {
    if (sqlState(err) === '42501') {
      const db = (await client.query('SELECT current_database() AS db, current_user AS u')).rows[0] as { db: string; u: string };
      throw new PglandError('schema_create_denied', `user ${db.u} may not create schema ${schema} in database ${db.db}`, {
        hint:
          `either GRANT CREATE ON DATABASE ${quoteIdent(db.db)} TO ${quoteIdent(db.u)}; ` +
          `or create it yourself: CREATE SCHEMA ${quoteIdent(schema)}; GRANT ALL ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(db.u)};`,
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Applies the numbered files of sql/ (or of `dir`: the service's control
 * database uses sql/control/) that this schema has not seen, in order. What
 * it has seen is read first, in two statements: a schema that is up to date
 * (every run's case) costs no transaction, where each migration's own check
 * under the lock was five round trips (a second across a 40 ms link). Each
 * migration still missing is applied in its own transaction, checked again
 * under the lock.
 */
export async function migrate(client: pg.PoolClient, schema: string, dir: string = SQL_DIR): Promise<number> {
  const table = `${quoteIdent(schema)}._pgland_migrations`;
  const migrations = await loadMigrations(dir);
  const { rows: found } = await client.query<{ schema: boolean; t: string | null }>(
    'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema, to_regclass($2)::text AS t',
    [schema, table],
  );
  if (!found[0]!.schema) await ensureSchema(client, schema);
  const seen = found[0]!.t ? await appliedMigrations(client, schema, migrations) : new Set<number>();
  let applied = 0;
  for (const m of migrations) {
    if (seen.has(m.id)) continue;
    const done = await inTransaction(client, async () => {
      await lockSchema(client, schema);
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rowCount } = await client.query(`SELECT 1 FROM ${table} WHERE id = $1`, [m.id]);
      if (rowCount) return false;
      await client.query(m.text.replaceAll('{{schema}}', quoteIdent(schema)));
      await client.query(`INSERT INTO ${table} (id, name) VALUES ($1, $2)`, [m.id, m.name]);
      return true;
    });
    if (done) applied++;
  }
  return applied;
}

/**
 * The migrations the schema records. A schema migrated by a newer pgland
 * records migrations this code does not have: its tables may have changed in
 * ways this code would misread or undo, so nothing runs on it (as
 * graphile-worker refuses a database newer than itself). Read without the
 * lock: migrations are only ever added.
 */
async function appliedMigrations(client: pg.PoolClient, schema: string, known: Migration[]): Promise<Set<number>> {
  const { rows } = await client.query<{ id: number; name: string }>(`SELECT id, name FROM ${quoteIdent(schema)}._pgland_migrations ORDER BY id`);
  const ids = new Set(known.map((m) => m.id));
  const unknown = rows.filter((r) => !ids.has(r.id));
  if (unknown.length === 0) return new Set(rows.map((r) => r.id));
  const latest = known.at(-1)?.name ?? 'none';
  throw new PglandError(
    'schema_newer_than_pgland',
    `schema ${schema} was migrated by a newer pgland: it records ${unknown.map((r) => r.name).join(', ')}, which this pgland (${PGLAND_VERSION}, latest migration ${latest}) does not know`,
    {
      hint: 'upgrade pgland to the version that migrated this schema (or a later one); an older pgland must not write to it',
      context: { schema, unknown: unknown.map((r) => r.name) },
    },
  );
}
