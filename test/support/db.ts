import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { quoteIdent } from '../../src/sql/ident.js';

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
