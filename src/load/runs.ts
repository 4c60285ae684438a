import type pg from 'pg';
import type { SqlQuery } from '../merge/merge.js';
import type { Problem } from '../encode/record.js';
import type { Reject } from '../input/envelope.js';
import { qualify } from '../sql/ident.js';

/** `abandoned`: a later run found it still running with no loader behind it (finish.ts, abandonStaleRuns). */
export type RunStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'cancelled' | 'abandoned';
export type SyncMode = 'full' | 'incremental';

/** The counters a run keeps; every batch adds to them in its own transaction. */
export interface RunCounts {
  batches: number;
  rowsRead: number;
  inserted: number;
  updated: number;
  unchanged: number;
  superseded: number;
  deleted: number;
  undeleted: number;
  skipped: number;
  rejected: number;
  problems: number;
  nulStripped: number;
}

export function zeroCounts(): RunCounts {
  return {
    batches: 0,
    rowsRead: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    superseded: 0,
    deleted: 0,
    undeleted: 0,
    skipped: 0,
    rejected: 0,
    problems: 0,
    nulStripped: 0,
  };
}

export function addCounts(into: RunCounts, add: RunCounts): void {
  for (const k of Object.keys(into) as (keyof RunCounts)[]) into[k] += add[k];
}

/** PostgreSQL text cannot hold NUL; metadata keeps what it can of a hostile value. */
function clean(text: string | null): string | null {
  return text === null ? null : text.replace(/\0/g, '\\0');
}

export interface RunStart {
  runId: string;
  provider: string;
  customerId: string;
  object: string;
  objectKind: string;
  table: string;
  mode: SyncMode;
  writeMode: string;
  version: string;
  /** How the run was asked to write: delete mode, match column, mappings. */
  options: Record<string, unknown>;
}

export function insertRunSql(schema: string, r: RunStart): SqlQuery {
  return {
    text: `INSERT INTO ${qualify(schema, '_pgland_runs')}
      (run_id, provider, customer_id, object, object_kind, table_name, mode, write_mode, status, pgland_version, options)
      VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $10::jsonb)`,
    values: [r.runId, r.provider, r.customerId, r.object, r.objectKind, r.table, r.mode, r.writeMode, r.version, JSON.stringify(r.options)],
  };
}

/** The counters added to a run; with `finished`, the run also ends with that status (a row is updated once per statement). */
export function addRunCountsSql(schema: string, runId: string, c: RunCounts, maxLastModified: Date | string | null, finished?: RunStatus): SqlQuery {
  return {
    text: `UPDATE ${qualify(schema, '_pgland_runs')} SET${finished ? ' status = $15, finished_at = now(),' : ''}
      batches = batches + $2, rows_read = rows_read + $3, rows_inserted = rows_inserted + $4,
      rows_updated = rows_updated + $5, rows_unchanged = rows_unchanged + $6,
      rows_superseded = rows_superseded + $7, rows_rejected = rows_rejected + $8,
      problems = problems + $9, nul_stripped = nul_stripped + $10,
      rows_deleted = rows_deleted + $11, rows_undeleted = rows_undeleted + $12, rows_skipped = rows_skipped + $13,
      max_last_modified_at = greatest(max_last_modified_at, $14::timestamptz)
      WHERE run_id = $1::uuid`,
    values: [
      runId,
      c.batches,
      c.rowsRead,
      c.inserted,
      c.updated,
      c.unchanged,
      c.superseded,
      c.rejected,
      c.problems,
      c.nulStripped,
      c.deleted,
      c.undeleted,
      c.skipped,
      maxLastModified,
      ...(finished ? [finished] : []),
    ],
  };
}

/**
 * A batch's counters added to its run and the batch recorded as committed,
 * in one statement: one round trip fewer per batch, which is 40 ms a batch
 * when the database is across a 40 ms link. (A data-modifying WITH runs
 * whether or not the INSERT reads it.)
 */
export function recordBatchSql(
  schema: string,
  runId: string,
  c: RunCounts,
  maxLastModified: Date | string | null,
  batchNo: number,
  rowsRead: number,
  fence?: (firstParam: number) => { text: string; values: unknown[] },
): SqlQuery {
  const add = addRunCountsSql(schema, runId, c, maxLastModified);
  const n = add.values.length;
  // With the lease's fence (lease.ts, fenceCte), the statement answers
  // `renewed`: the batch's last round trip before COMMIT is this one.
  const fenced = fence?.(n + 3);
  return {
    text: `WITH ${fenced ? `${fenced.text}, ` : ''}counted AS (${add.text})
    INSERT INTO ${qualify(schema, '_pgland_run_batches')} (run_id, batch_no, rows_read) VALUES ($1::uuid, $${n + 1}, $${n + 2})${
      fenced
        ? `
    RETURNING (SELECT count(*) FROM fence) AS renewed`
        : ''
    }`,
    values: [...add.values, batchNo, rowsRead, ...(fenced?.values ?? [])],
  };
}

/** The columns of _pgland_runs that hold a run's counters (countsOf reads them). */
export const RUN_COUNT_COLUMNS = `batches, rows_read, rows_inserted, rows_updated, rows_unchanged, rows_superseded, rows_deleted,
            rows_undeleted, rows_skipped, rows_rejected, problems, nul_stripped`;

/** The run's counters as committed: the truth even when a batch's reply was lost and it was replayed. */
export async function readRunCounts(client: pg.Pool | pg.PoolClient, schema: string, runId: string): Promise<RunCounts> {
  const { rows } = await client.query(`SELECT ${RUN_COUNT_COLUMNS} FROM ${qualify(schema, '_pgland_runs')} WHERE run_id = $1::uuid`, [runId]);
  return countsOf(rows[0] as Record<string, string>);
}

/** A row with RUN_COUNT_COLUMNS as counters. */
export function countsOf(r: Record<string, string>): RunCounts {
  return {
    batches: Number(r.batches),
    rowsRead: Number(r.rows_read),
    inserted: Number(r.rows_inserted),
    updated: Number(r.rows_updated),
    unchanged: Number(r.rows_unchanged),
    superseded: Number(r.rows_superseded),
    deleted: Number(r.rows_deleted),
    undeleted: Number(r.rows_undeleted),
    skipped: Number(r.rows_skipped),
    rejected: Number(r.rows_rejected),
    problems: Number(r.problems),
    nulStripped: Number(r.nul_stripped),
  };
}

export function finishRunSql(schema: string, runId: string, status: RunStatus, error: string | null): SqlQuery {
  return {
    text: `UPDATE ${qualify(schema, '_pgland_runs')} SET status = $2, finished_at = now(), error = $3 WHERE run_id = $1::uuid`,
    values: [runId, status, clean(error)],
  };
}

export function insertRejectsSql(schema: string, runId: string, rejects: Reject[]): SqlQuery {
  return {
    text: `INSERT INTO ${qualify(schema, '_pgland_rejects')} (run_id, line_number, record_id, reason, raw_text)
      SELECT $1::uuid, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])`,
    values: [
      runId,
      rejects.map((r) => r.lineNumber),
      rejects.map((r) => clean(r.recordId)),
      rejects.map((r) => clean(r.reason)),
      rejects.map((r) => clean(r.rawText)),
    ],
  };
}

export function insertProblemsSql(schema: string, runId: string, problems: Problem[]): SqlQuery {
  return {
    text: `INSERT INTO ${qualify(schema, '_pgland_problems')}
      (run_id, line_number, record_id, field, column_name, reason, value_excerpt)
      SELECT $1::uuid, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
    values: [
      runId,
      problems.map((p) => p.lineNumber),
      problems.map((p) => clean(p.recordId)),
      problems.map((p) => clean(p.field)),
      problems.map((p) => p.column),
      problems.map((p) => clean(p.reason)),
      problems.map((p) => clean(p.valueExcerpt)),
    ],
  };
}

/** One row of `pgland runs`. */
export interface RunRow {
  run_id: string;
  provider: string;
  customer_id: string;
  object: string;
  table_name: string;
  mode: SyncMode;
  status: RunStatus;
  started_at: Date;
  finished_at: Date | null;
  rows_read: string;
  rows_inserted: string;
  rows_updated: string;
  rows_unchanged: string;
  rows_superseded: string;
  rows_rejected: string;
  problems: string;
  error: string | null;
}

export async function listRuns(
  client: pg.Pool | pg.PoolClient,
  schema: string,
  filter: { provider?: string; customerId?: string; object?: string; limit?: number } = {},
): Promise<RunRow[]> {
  const { rows } = await client.query<RunRow>(
    `SELECT run_id, provider, customer_id, object, table_name, mode, status, started_at, finished_at,
            rows_read, rows_inserted, rows_updated, rows_unchanged, rows_superseded, rows_rejected, problems, error
       FROM ${qualify(schema, '_pgland_runs')}
      WHERE ($1::text IS NULL OR provider = $1)
        AND ($2::text IS NULL OR customer_id = $2)
        AND ($3::text IS NULL OR object = $3)
      ORDER BY started_at DESC
      LIMIT $4`,
    [filter.provider ?? null, filter.customerId ?? null, filter.object ?? null, filter.limit ?? 50],
  );
  return rows;
}
