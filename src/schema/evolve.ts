import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ObjectDef } from '../catalog/definition.js';
import { fitIdent, qualify } from '../sql/ident.js';
import { beginWith } from '../sql/transaction.js';
import { inlineParams } from '../sql/inline.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { PglandError, sqlState } from '../errors.js';
import { applyPlan, type EvolutionReport } from './apply.js';
import { RUN_SETTING } from './lost-values.js';
import { planEvolution, planFromState } from './plan.js';
import { readTableSql, tableStateOf } from './introspect.js';

/** What evolveTable did. */
export interface Evolved {
  report: EvolutionReport;
  /** When the table was up to date (nothing executed): its state as the check read it (introspect.ts, tableShapeSql). */
  upToDate?: string;
}

/**
 * Brings a landed table to its wanted definition: creates it, alters it, or
 * drops and recreates it keeping the customer's views and indexes, all in one
 * transaction, so that a concurrent reader sees the old table or the new one.
 * Runs of different tenants share a table: they serialise here on a lock per
 * table, and the plan is made under that lock.
 */
export async function evolveTable(client: pg.ClientBase, schema: string, def: ObjectDef, runId: string): Promise<Evolved> {
  const deadline = Date.now() + DDL_WAIT_TOTAL_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      // BEGIN, the table's lock, the run's setting and the table's state in one round trip.
      const { rows } = await beginWith<{ shape: string }>(
        client,
        `${inlineParams(lockTableSql(schema, def, runId))}; ${inlineParams(readTableSql(schema, def.table))}`,
      );
      const state = tableStateOf(rows[0]!.shape);
      const plan = await planFromState(client, schema, def, state);
      // A change waits for its table's lock a short while at a time: while it waits, every reader of the table waits behind it.
      if (plan.steps.length > 0) await client.query(`SET LOCAL lock_timeout = '${DDL_LOCK_WAIT_MS}ms'`);
      const report = await applyPlan(client, plan);
      await client.query('COMMIT');
      return { report, ...(report.action === 'none' && report.executed.length === 0 ? { upToDate: state.shape } : {}) };
    } catch (err) {
      // The rollback's own failure (a lost connection) must not hide the error.
      await client.query('ROLLBACK').catch(() => undefined);
      if (!lockNotAvailable(err)) throw err;
      if (Date.now() >= deadline) throw tableBusy(schema, def, err);
      await sleep(Math.min(DDL_LOCK_WAIT_MS, 250 * attempt));
    }
  }
}

/**
 * How long a change of a landed table waits for the table's lock at a time,
 * and in all. Another transaction may hold the table for long: a customer's
 * report, another tenant's batch, an HTTP run held open across its batches
 * (docs/service.md). An ALTER waiting in the lock queue makes every reader of
 * the table wait behind it, so it gives up after a few seconds, lets the
 * readers through, and tries again.
 */
const DDL_LOCK_WAIT_MS = 3_000;
const DDL_WAIT_TOTAL_MS = 60_000;

function lockNotAvailable(err: unknown): boolean {
  return sqlState(err) === '55P03' || sqlState((err as { cause?: unknown } | null)?.cause) === '55P03';
}

function tableBusy(schema: string, def: ObjectDef, err: unknown): PglandError {
  return new PglandError(
    'evolution_failed',
    `evolving ${schema}.${def.table} failed: another transaction held the table for more than ${DDL_WAIT_TOTAL_MS / 1000} s (tried ${DDL_LOCK_WAIT_MS / 1000} s at a time, so that readers were not kept waiting)`,
    {
      hint: 'nothing was changed; run again once it is done. pg_stat_activity shows the transactions on the table: a long query, or a run of another tenant (an HTTP run is held until its commit)',
      cause: err,
    },
  );
}

/** The table's lock and the run's setting (the setting is the transaction's alone). */
function lockTableSql(schema: string, def: ObjectDef, runId: string): { text: string; values: unknown[] } {
  return {
    text: `SELECT pg_advisory_xact_lock(hashtextextended('pgland.table.' || $1::text, 0)), set_config($2, $3, true)`,
    values: [`${schema}.${def.table}`, RUN_SETTING, runId],
  };
}

/**
 * evolveTable in the caller's transaction. `runId` is the run the evolution
 * belongs to, recorded in _pgland_runs before this is called (in this
 * transaction or an earlier one): a value that no longer fits its column is a
 * problem of that run.
 */
export async function evolveInTransaction(client: pg.ClientBase, schema: string, def: ObjectDef, runId: string): Promise<EvolutionReport> {
  await client.query(lockTableSql(schema, def, runId));
  // Populating a materialized view runs its owner's functions in pgland's
  // session: nothing there can release the run's object lease (a row,
  // src/load/lease.ts), and this table lock is transaction-level, which
  // pg_advisory_unlock_all() does not release.
  const plan = await planEvolution(client, schema, def);
  return applyPlan(client, plan);
}

/** Tenants of a table that must send a full refresh next, with the reason. */
export async function fullRefreshRequired(
  client: pg.ClientBase | pg.Pool,
  schema: string,
  key: { table: string; provider: string; customerId: string },
): Promise<string | undefined> {
  const { rows } = await client.query<{ reason: string }>(
    `SELECT reason FROM ${qualify(schema, '_pgland_full_refresh_required')} WHERE table_name = $1 AND provider = $2 AND customer_id = $3`,
    [key.table, key.provider, key.customerId],
  );
  return rows[0]?.reason;
}

/**
 * Two objects whose names normalise alike ("Invoice" and "invoice") would
 * share one table and overwrite each other's rows. The first object to land
 * keeps the plain name (recorded in _pgland_tables); any other object gets the
 * name with a hash of its own spelling.
 */
export async function claimTable(client: pg.ClientBase | pg.Pool, schema: string, def: ObjectDef): Promise<ObjectDef> {
  const { rows } = await client.query<{ object: string; object_kind: string }>(
    `SELECT object, object_kind FROM ${qualify(schema, '_pgland_tables')} WHERE table_name = $1`,
    [def.table],
  );
  const owner = rows[0];
  if (!owner || (owner.object === def.object && owner.object_kind === def.kind)) return def;
  return { ...def, table: fitIdent(`${def.table}_${shortHash(`${def.kind}\u0001${def.object}`)}`, `${def.kind}\u0001${def.object}`) };
}

function shortHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
}
