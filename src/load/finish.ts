import type pg from 'pg';
import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import type { MergeOptions, SqlQuery } from '../merge/merge.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { PIPELINE_STAGE_PATTERN, type RowFormat } from '../stage/stage.js';
import { begin, beginWith } from '../sql/transaction.js';
import { inlineParams } from '../sql/inline.js';
import { preparedIf } from '../sql/prepared.js';
import type { ObjectLease } from './lease.js';
import { countsOf, RUN_COUNT_COLUMNS, type RunCounts, type RunStatus } from './runs.js';

/**
 * The end of a full refresh: every row of this tenant that the run did not
 * deliver is marked deleted (soft) or removed (hard). Runs in the run's final
 * transaction, so readers see either none of these deletions or all of them,
 * and only a completed run applies them.
 */
async function applyFullRefreshDeletes(client: pg.PoolClient, o: MergeOptions): Promise<number> {
  const landed = qualify(o.schema, o.def.table);
  const notSeen = `NOT EXISTS (
      SELECT 1 FROM ${qualify(o.schema, '_pgland_full_refresh_seen')} s
      WHERE s.run_id = $3::uuid AND s."id" = landed."id")`;
  const tenant = `landed.${q(P.provider)} = $1 AND landed.${q(P.customerId)} = $2`;
  const text =
    o.deleteMode === 'hard'
      ? `DELETE FROM ${landed} AS landed WHERE ${tenant} AND ${notSeen}`
      : `UPDATE ${landed} AS landed SET
           ${q(P.isDeleted)} = true, ${q(P.deletedAt)} = now(), ${q(P.landedAt)} = now(), ${q(P.runId)} = $3::uuid
         WHERE ${tenant} AND NOT landed.${q(P.isDeleted)} AND ${notSeen}`;
  const result = await client.query(text, [o.provider, o.customerId, o.runId]);
  return result.rowCount ?? 0;
}

/**
 * The status, the watermark, the fence (which ends the lease) and what the
 * run reports back, in one statement: at the end of every run, a round trip
 * is 40 ms across a 40 ms link. The watermark reads max_last_modified_at,
 * which the status update leaves as is; the full-refresh flag is read after
 * the transaction's own DELETE (finishRun). `fence`: the lease's
 * releasingFenceCte(5).
 */
function finishSql(o: MergeOptions, opts: { status: RunStatus; error: string | null }, fence: { text: string; values: unknown[] }): SqlQuery {
  const completed = opts.status === 'succeeded' || opts.status === 'partial';
  const runs = qualify(o.schema, '_pgland_runs');
  const n = 5 + fence.values.length;
  return {
    text: `WITH ${fence.text},
        finished AS (
          UPDATE ${runs} SET status = $2, finished_at = now(), error = $3 WHERE run_id = $1::uuid RETURNING ${RUN_COUNT_COLUMNS}),
        watermark AS (
          INSERT INTO ${qualify(o.schema, '_pgland_watermarks')} AS w (provider, customer_id, object, high_water_mark, run_id)
          SELECT provider, customer_id, object, max_last_modified_at, run_id FROM ${runs}
           WHERE run_id = $1::uuid AND max_last_modified_at IS NOT NULL AND $4::boolean
          ON CONFLICT (provider, customer_id, object) DO UPDATE
            SET high_water_mark = EXCLUDED.high_water_mark, run_id = EXCLUDED.run_id, updated_at = now()
            WHERE EXCLUDED.high_water_mark >= w.high_water_mark)
        SELECT (SELECT count(*) FROM fence) AS renewed,
               (SELECT reason FROM ${qualify(o.schema, '_pgland_full_refresh_required')}
                 WHERE table_name = $${n} AND provider = $${n + 1} AND customer_id = $${n + 2}) AS refresh_reason,
               finished.*
          FROM (SELECT) AS one LEFT JOIN finished ON true`,
    values: [o.runId, opts.status, opts.error?.replace(/\0/g, '') ?? null, completed, ...fence.values, o.def.table, o.provider, o.customerId],
  };
}

/**
 * An incremental run that completed, ended in the transaction of its last
 * batch (copy-writer.ts, LastBatch): finishRun's statement, after the
 * batch's own fence, and the COMMIT, in one round trip. The batch's fence
 * locked the lease's row, so the releasing fence finds it. On a failure the
 * transaction is left to the caller to roll back, and the lease's heartbeat
 * runs again: the batch may be replayed.
 */
export async function finishInLastBatch(
  client: pg.PoolClient,
  o: MergeOptions,
  status: 'succeeded' | 'partial',
  lease: ObjectLease,
  before?: string,
): Promise<FinishedRun> {
  const fence = await lease.releasingFenceCte(5);
  try {
    const finish = inlineParams(finishSql(o, { status, error: null }, fence));
    const results = (await client.query(`${before ? `${before}; ` : ''}${finish}; COMMIT`)) as unknown as pg.QueryResult<Record<string, string>>[];
    const row = results[results.length - 2]!.rows[0]!;
    lease.fenceHeld(row.renewed);
    lease.committedRelease();
    return { counts: countsOf(row), ...(row.refresh_reason ? { fullRefreshRequired: row.refresh_reason } : {}) };
  } catch (err) {
    lease.resumeHeartbeat();
    throw err;
  }
}

/** What a run's final transaction read back: the run's committed counters, and whether the tenant must send a full refresh next. */
export interface FinishedRun {
  counts: RunCounts;
  fullRefreshRequired?: string;
}

/**
 * Records a run's outcome in one transaction: a completed full refresh's
 * deletions, the watermark (the newest last-modified time this run landed,
 * kept only if it moves forward), and the run's status. A run that did not
 * complete moves no watermark and deletes nothing. The lease's fence ends the
 * transaction and ends the lease with it: a run that lost its lease records
 * nothing (the next holder marked it abandoned). Answers the run's counters as committed and the
 * tenant's full-refresh flag, read by the same statement.
 */
export async function finishRun(
  client: pg.PoolClient,
  o: MergeOptions,
  opts: { full: boolean; status: RunStatus; error: string | null },
  lease: ObjectLease,
): Promise<FinishedRun> {
  const completed = opts.status === 'succeeded' || opts.status === 'partial';
  const runs = qualify(o.schema, '_pgland_runs');
  // Before the status: a full refresh's own statements, in the same transaction.
  const before: SqlQuery[] = [];
  if (opts.full) {
    before.push({ text: `DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_seen')} WHERE run_id = $1::uuid`, values: [o.runId] });
  }
  if (completed && opts.full) {
    before.push({
      text: `DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_required')} WHERE table_name = $1 AND provider = $2 AND customer_id = $3`,
      values: [o.def.table, o.provider, o.customerId],
    });
  }
  const finish = async (): Promise<SqlQuery> => finishSql(o, opts, await lease.releasingFenceCte(5));
  // Without tracking, the tenant had nothing landed when the run began
  // (loader.ts): every row it has now came from this run.
  const deletesUnseen = completed && opts.full && o.trackSeen;
  try {
    let result: pg.QueryResult<Record<string, string>>;
    if (before.length === 0 && !deletesUnseen) {
      // An incremental run: BEGIN and the one statement in one round trip.
      result = await beginWith(client, inlineParams(await finish()));
    } else {
      await begin(client);
      if (deletesUnseen) {
        const deleted = await applyFullRefreshDeletes(client, o);
        await client.query(`UPDATE ${runs} SET rows_deleted = rows_deleted + $2 WHERE run_id = $1::uuid`, [o.runId, deleted]);
      }
      for (const q of before) await client.query(q);
      result = await client.query<Record<string, string>>(await finish());
    }
    const row = result.rows[0]!;
    lease.fenceHeld(row.renewed);
    await client.query('COMMIT');
    lease.committedRelease();
    return { counts: countsOf(row), ...(row.refresh_reason ? { fullRefreshRequired: row.refresh_reason } : {}) };
  } catch (err) {
    // The rollback's own failure (a lost connection) must not hide the error.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * finishRun's statements in the caller's transaction, without the fence: an
 * HTTP run merges and finishes in one transaction (http-run.ts).
 */
export async function recordOutcome(client: pg.PoolClient, o: MergeOptions, opts: { full: boolean; status: RunStatus; error: string | null }): Promise<void> {
  const completed = opts.status === 'succeeded' || opts.status === 'partial';
  const runs = qualify(o.schema, '_pgland_runs');
  // The watermark and the status in one statement: a round trip fewer at the
  // end of every run, which counts when the database is across a link. The
  // watermark reads max_last_modified_at, which the status update leaves as is.
  const watermarkAndStatus = {
    text: `WITH finished AS (
        UPDATE ${runs} SET status = $2, finished_at = now(), error = $3 WHERE run_id = $1::uuid)
      INSERT INTO ${qualify(o.schema, '_pgland_watermarks')} AS w (provider, customer_id, object, high_water_mark, run_id)
      SELECT provider, customer_id, object, max_last_modified_at, run_id FROM ${runs}
       WHERE run_id = $1::uuid AND max_last_modified_at IS NOT NULL AND $4::boolean
      ON CONFLICT (provider, customer_id, object) DO UPDATE
        SET high_water_mark = EXCLUDED.high_water_mark, run_id = EXCLUDED.run_id, updated_at = now()
        WHERE EXCLUDED.high_water_mark >= w.high_water_mark`,
    values: [o.runId, opts.status, opts.error?.replace(/\0/g, '') ?? null, completed],
  };
  // Without tracking, the tenant had nothing landed when the run began
  // (loader.ts): every row it has now came from this run.
  if (completed && opts.full && o.trackSeen) {
    const deleted = await applyFullRefreshDeletes(client, o);
    await client.query(`UPDATE ${runs} SET rows_deleted = rows_deleted + $2 WHERE run_id = $1::uuid`, [o.runId, deleted]);
  }
  if (opts.full) {
    await client.query(`DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_seen')} WHERE run_id = $1::uuid`, [o.runId]);
  }
  if (completed && opts.full) {
    await client.query(`DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_required')} WHERE table_name = $1 AND provider = $2 AND customer_id = $3`, [
      o.def.table,
      o.provider,
      o.customerId,
    ]);
  }
  await client.query(watermarkAndStatus);
}

/**
 * Runs of this object still marked running when we hold its lease cannot be
 * alive (a live run holds the lease): their loader was killed, lost its
 * connection, or stalled past its lease's expiry. Mark them abandoned and
 * drop their full-refresh bookkeeping.
 */
export async function abandonStaleRuns(
  client: pg.Pool | pg.PoolClient,
  o: Pick<MergeOptions, 'schema' | 'provider' | 'customerId' | 'runId'>,
  objectName: string,
): Promise<number> {
  const { rows } = await client.query<{ run_id: string }>(
    `UPDATE ${qualify(o.schema, '_pgland_runs')}
        SET status = 'abandoned', finished_at = now(),
            error = 'the loader stopped before finishing (killed, or its connection was lost); batches it committed stay landed'
      WHERE provider = $1 AND customer_id = $2 AND object = $3 AND status = 'running' AND run_id <> $4::uuid
      RETURNING run_id`,
    [o.provider, o.customerId, objectName, o.runId],
  );
  if (rows.length > 0) {
    await client.query(`DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_seen')} WHERE run_id = ANY($1::uuid[])`, [rows.map((r) => r.run_id)]);
  }
  return rows.length;
}

/** What prepareRun reads, and what the statement that records a run reads of it (checked-tables.ts). */
export interface PreparedRun {
  abandoned: string;
  orphans: string[];
  has_rows: boolean | null;
}

/**
 * prepareRun's statement in parts, its values numbered from `$firstParam`:
 * data-modifying WITH entries (named abandoned and unseen) and the columns
 * of PreparedRun, to be read by a statement of its own or by the one that
 * records the run.
 */
export function prepareRunParts(
  o: Pick<MergeOptions, 'schema' | 'provider' | 'customerId' | 'runId' | 'def'>,
  checkLanded: boolean,
  firstParam: number,
): { ctes: string; columns: string; values: unknown[] } {
  const runs = qualify(o.schema, '_pgland_runs');
  const p = (i: number): string => `$${firstParam + i - 1}`;
  return {
    ctes: `abandoned AS (
        UPDATE ${runs}
           SET status = 'abandoned', finished_at = now(),
               error = 'the loader stopped before finishing (killed, or its connection was lost); batches it committed stay landed'
         WHERE provider = ${p(1)} AND customer_id = ${p(2)} AND object = ${p(3)} AND status = 'running' AND run_id <> ${p(4)}::uuid
        RETURNING run_id),
      unseen AS (
        DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_seen')} WHERE run_id IN (SELECT run_id FROM abandoned))`,
    columns: `(SELECT count(*) FROM abandoned) AS abandoned,
             ${orphanStagesSql(runs, p(5), p(6), 'AND r.run_id NOT IN (SELECT run_id FROM abandoned)')} AS orphans,
             ${checkLanded ? `EXISTS (SELECT 1 FROM ${qualify(o.schema, o.def.table)} WHERE ${q(P.provider)} = ${p(1)} AND ${q(P.customerId)} = ${p(2)})` : 'NULL::boolean'} AS has_rows`,
    values: [o.provider, o.customerId, o.def.object, o.runId, o.schema, PIPELINE_STAGE_PATTERN],
  };
}

/**
 * What a run does once it is recorded and its table is ready, in one
 * statement (the round trips of a 10-record run are most of its time across
 * a link):
 * - marks the object's earlier runs still marked running abandoned (see
 *   abandonStaleRuns) and drops their full-refresh bookkeeping;
 * - finds the staging tables of pipelined runs (load/pipeline.ts) no longer
 *   running, which a run drops at its end unless it lost its connection or
 *   was killed first; they are dropped after, one statement each (rare);
 * - with `checkLanded`, reads whether the tenant has a row in the landed
 *   table: without one, batches COPY straight into it (loader.ts).
 * A run whose table this process found up to date reads the same in the
 * statement that records it (checked-tables.ts), and passes what it read as
 * `read`: only the orphans' drops are left.
 */
export async function prepareRun(
  client: pg.PoolClient,
  o: Pick<MergeOptions, 'schema' | 'provider' | 'customerId' | 'runId' | 'def'>,
  checkLanded: boolean,
  prepare = false,
  read?: PreparedRun,
): Promise<{ abandoned: number; format: RowFormat }> {
  let r = read;
  if (!r) {
    const parts = prepareRunParts(o, checkLanded, 1);
    const { rows } = await client.query<PreparedRun>(preparedIf({ text: `WITH ${parts.ctes} SELECT ${parts.columns}`, values: parts.values }, prepare));
    r = rows[0]!;
  }
  await dropTables(client, o.schema, r.orphans);
  return { abandoned: Number(r.abandoned), format: r.has_rows === false ? 'landed' : 'stage' };
}

/**
 * The names of the schema's pipelined staging tables (stage.ts) whose run is
 * no longer running, as a text[] expression; `andRun` narrows the running
 * runs (r) further.
 */
function orphanStagesSql(runs: string, schemaParam: string, patternParam: string, andRun = ''): string {
  return `(SELECT coalesce(array_agg(c.relname::text), '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ${schemaParam} AND c.relkind = 'r' AND c.relname LIKE ${patternParam}
                 AND NOT EXISTS (SELECT 1 FROM ${runs} r
                                  WHERE r.status = 'running' ${andRun}
                                    AND c.relname LIKE '_pgland_pipe_' || replace(r.run_id::text, '-', '') || '%'))`;
}

async function dropTables(client: pg.PoolClient, schema: string, names: string[]): Promise<void> {
  for (const name of names) await client.query(`DROP TABLE IF EXISTS ${qualify(schema, name)}`);
}

/**
 * Drops the pipelined staging tables that runs no longer running left in the
 * schema (a run drops its own at its end unless its connection was lost or
 * it was killed first). For a load into an own table; a load of a landed
 * object does this in prepareRun.
 */
export async function dropOrphanStages(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ orphans: string[] }>(`SELECT ${orphanStagesSql(qualify(schema, '_pgland_runs'), '$1', '$2')} AS orphans`, [
    schema,
    PIPELINE_STAGE_PATTERN,
  ]);
  await dropTables(client, schema, rows[0]!.orphans);
}
