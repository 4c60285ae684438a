import type pg from 'pg';
import type { Destination } from '../../destination.js';
import type { EvolutionPlan } from '../../schema/plan.js';
import { qualify } from '../../sql/ident.js';

/**
 * The tables pgland has landed in a destination, with their row counts, and
 * what the next run of each would change (pgland plan): read only.
 */
export interface LandedTable {
  table: string;
  object: string;
  kind: string;
  rows: number;
  /** false when counting took longer than COUNT_TIMEOUT_MS: rows is then the planner's estimate. */
  rows_exact: boolean;
  bytes: number;
  needs_full_refresh: boolean;
  full_refresh_reason: string | null;
  created_at: Date;
  evolved_at: Date;
}

/** How long one table's count(*) may take before its estimate is shown instead. */
const COUNT_TIMEOUT_MS = 2000;
const MAX_TABLES = 500;

interface Recorded {
  table_name: string;
  object: string;
  object_kind: string;
  needs_full_refresh: boolean;
  full_refresh_reason: string | null;
  created_at: Date;
  evolved_at: Date;
  estimate: number | null;
  bytes: number | null;
}

async function exactCount(client: pg.PoolClient, schema: string, table: string): Promise<number | undefined> {
  await client.query('SAVEPOINT count_one');
  try {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualify(schema, table)}`);
    await client.query('RELEASE SAVEPOINT count_one');
    return Number(rows[0]!.n);
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT count_one');
    // Too slow (57014) or gone since it was recorded (42P01): the estimate will do.
    if (['57014', '42P01'].includes((err as { code?: string }).code ?? '')) return undefined;
    throw err;
  }
}

export async function landedTables(dest: Destination): Promise<LandedTable[]> {
  const client = await dest.pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${COUNT_TIMEOUT_MS}`);
    const { rows } = await client.query<Recorded>(
      `SELECT t.table_name, t.object, t.object_kind, t.needs_full_refresh, t.full_refresh_reason, t.created_at, t.evolved_at,
              greatest(c.reltuples, 0)::float8 AS estimate, pg_total_relation_size(c.oid)::float8 AS bytes
         FROM ${qualify(dest.schema, '_pgland_tables')} t
         LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident($1) || '.' || quote_ident(t.table_name))
        ORDER BY t.table_name LIMIT ${MAX_TABLES}`,
      [dest.schema],
    );
    const out: LandedTable[] = [];
    for (const r of rows) {
      const exact = await exactCount(client, dest.schema, r.table_name);
      out.push({
        table: r.table_name,
        object: r.object,
        kind: r.object_kind,
        rows: exact ?? r.estimate ?? 0,
        rows_exact: exact !== undefined,
        bytes: r.bytes ?? 0,
        needs_full_refresh: r.needs_full_refresh,
        full_refresh_reason: r.full_refresh_reason,
        created_at: r.created_at,
        evolved_at: r.evolved_at,
      });
    }
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The plans as the API shows them: the statements of every step, in order. */
export function planView(p: EvolutionPlan): Record<string, unknown> {
  return {
    table: p.table,
    object: p.object,
    action: p.action,
    reasons: p.reasons,
    full_refresh_reason: p.fullRefreshReason,
    statements: p.steps.flatMap((s) => s.statements),
  };
}
