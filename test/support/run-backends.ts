import type pg from 'pg';
import { until } from './until.js';

/**
 * The backends of a destination's application_name: the run's own is its
 * lease's holder (src/load/lease.ts), the others are helpers that stage
 * pipelined batches (src/load/pipelined.ts).
 */
export async function runBackends(pool: pg.Pool, app: string): Promise<{ run: number[]; helper: number[] }> {
  const { rows: tables } = await pool.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '_pgland_leases'`,
  );
  const holders = tables.length === 0 ? 'SELECT NULL::int AS holder_pid' : tables.map((r) => `SELECT holder_pid FROM ${r.t}`).join(' UNION ALL ');
  const { rows } = await pool.query<{ pid: number; locked: boolean }>(
    `SELECT a.pid, a.pid IN (SELECT holder_pid FROM (${holders}) h WHERE holder_pid IS NOT NULL) AS locked
       FROM pg_stat_activity a WHERE a.application_name = $1`,
    [app],
  );
  return { run: rows.filter((r) => r.locked).map((r) => r.pid), helper: rows.filter((r) => !r.locked).map((r) => r.pid) };
}

/** A schema's pipelined staging tables (src/stage/stage.ts), by name. */
export async function pipeTables(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relname LIKE '\\_pgland\\_pipe\\_%' ORDER BY relname`,
    [schema],
  );
  return rows.map((r) => r.relname as string);
}

/**
 * While a pipelined batch is being COPYed into `table` (qualified), queues
 * behind that COPY a transaction that takes the table as soon as the helper
 * commits, before the merge can read it, and deletes 10 staged rows, as a
 * server restart would empty the unlogged table. Returns once it is queued;
 * its promise settles when it is done.
 */
export async function loseStagedRows(meddler: pg.Client, pool: pg.Pool, table: string): Promise<{ done: Promise<unknown> }> {
  const done = meddler.query(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE;
    DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} LIMIT 10); COMMIT`);
  await until('the meddler queued behind the COPY', async () => {
    const { rowCount } = await pool.query(`SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND mode = 'AccessExclusiveLock' AND NOT granted`, [table]);
    return rowCount! > 0;
  });
  return { done };
}
