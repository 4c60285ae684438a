import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { quoteIdent } from '../../src/sql/ident.js';
import { until } from './until.js';

export interface TestDatabase {
  /** postgres:// URL of this file's own database, as a superuser. */
  url: string;
  /** A destination config (file shape) for this database. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  /** A pool for assertions. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file, on the server the global setup chose.
 * Kept when PGLAND_TEST_KEEP=1, so that a failure can be inspected.
 */
export async function freshDatabase(label: string): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const name = `t_${label.replace(/\W+/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = '/' + name;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    url,
    pool,
    config: (extra = {}) => ({ url, sslmode: 'disable', ...extra }),
    async drop() {
      await pool.end();
      if (process.env.PGLAND_TEST_KEEP === '1') return;
      const c = new pg.Client(adminUrl);
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Whether the server lets anyone in whatever the password (trust
 * authentication, as on a developer's local PostgreSQL given as
 * PGLAND_TEST_DATABASE_URL): tests of wrong passwords have nothing to test there.
 */
export async function trustsEveryPassword(url: string): Promise<boolean> {
  const u = new URL(url);
  u.password = 'certainly-not-the-password';
  const probe = new pg.Client({ connectionString: u.toString() });
  const accepted = await probe.connect().then(
    () => true,
    () => false,
  );
  await probe.end().catch(() => undefined);
  return accepted;
}

/**
 * Terminates these backends and waits until the server has let them go (gone
 * from pg_stat_activity), rather than sleeping for a guessed time: what comes
 * next meets a connection that is certainly lost.
 */
export async function terminateBackends(pool: pg.Pool, pids: number[]): Promise<void> {
  if (pids.length === 0) return;
  await pool.query(`SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, [pids]);
  await until(`backends ${pids.join(', ')} to end`, async () => {
    const { rowCount } = await pool.query(`SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])`, [pids]);
    return rowCount === 0;
  });
}

/** The backends of an application_name, this session's excepted. */
export async function backendsOf(pool: pg.Pool, app: string): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, [app]);
  return rows.map((r) => r.pid);
}
