import { join } from 'node:path';
import pg from 'pg';
import { endPool } from '../../connection/pool.js';
import { startEmbedded, type EmbeddedServer } from '../../embedded/server.js';
import type { Logger } from '../../log.js';
import { PACKAGE_ROOT } from '../../package.js';
import { migrate } from '../../schema/migrate.js';
import { qualify } from '../../sql/ident.js';

/** The schema in the control database that holds pgland's service tables. */
export const CONTROL_SCHEMA = 'pgland_control';
const CONTROL_SQL = join(PACKAGE_ROOT, 'sql', 'control');

export interface ControlDb {
  pool: pg.Pool;
  /** The URL of the control database (holds a password: never log it). */
  url: string;
  /** A quoted, qualified name of a control table. */
  table(name: string): string;
  close(): Promise<void>;
}

/**
 * Opens the control database: PostgreSQL by URL, or an embedded one kept in
 * `dataDir` (single node), and applies the control migrations (sql/control/,
 * each in its own transaction under an advisory lock, so that several
 * processes may start together).
 */
export async function openControlDb(options: { url?: string; dataDir: string; log: Logger; poolSize?: number }): Promise<ControlDb> {
  let embedded: EmbeddedServer | undefined;
  let url = options.url;
  if (!url) {
    options.log.info({ dataDir: options.dataDir }, 'no control database configured: starting an embedded PostgreSQL');
    embedded = await startEmbedded({ dataDir: options.dataDir });
    url = embedded.url;
  }
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, application_name: 'pgland-control' });
  pool.on('error', (err) => options.log.warn({ err: { message: err.message } }, 'control database: idle connection lost'));
  try {
    const client = await pool.connect();
    try {
      await migrate(client, CONTROL_SCHEMA, CONTROL_SQL);
    } finally {
      client.release();
    }
  } catch (err) {
    await endPool(pool).catch(() => undefined);
    await embedded?.stop();
    throw err;
  }
  return {
    pool,
    url,
    table: (name) => qualify(CONTROL_SCHEMA, name),
    async close() {
      await endPool(pool);
      await embedded?.stop();
    },
  };
}

/** Runs `fn` in a transaction on one connection of the pool. */
export async function inPoolTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool.
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw err;
  } finally {
    client.release(broken);
  }
}
