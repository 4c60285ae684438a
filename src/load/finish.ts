import type pg from 'pg';
import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import type { MergeOptions } from '../merge/merge.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { PIPELINE_STAGE_PATTERN } from '../stage/stage.js';
import { inTransaction } from '../sql/transaction.js';
import type { ObjectLease } from './lease.js';
import type { RunStatus } from './runs.js';

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
 * Records a run's outcome in one transaction: a completed full refresh's
 * deletions, the watermark (the newest last-modified time this run landed,
 * kept only if it moves forward), and the run's status. A run that did not
 * complete moves no watermark and deletes nothing. The lease's fence ends the
 * transaction: a run that lost its lease records nothing (the next holder
 * marked it abandoned).
 */
export async function finishRun(
  client: pg.PoolClient,
  o: MergeOptions,
  opts: { full: boolean; status: RunStatus; error: string | null },
  lease: ObjectLease,
): Promise<void> {
  await inTransaction(client, async () => {
    await recordOutcome(client, o, opts);
    await lease.fence(client);
  });
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
    await client.query(
      `DELETE FROM ${qualify(o.schema, '_pgland_full_refresh_required')} WHERE table_name = $1 AND provider = $2 AND customer_id = $3`,
      [o.def.table, o.provider, o.customerId],
    );
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

/**
 * Drops the staging tables of pipelined runs (load/pipeline.ts) that are no
 * longer running: a run drops its own at the end, unless it lost its
 * connection or was killed first.
 */
export async function dropOrphanedStages(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname LIKE $2
        AND NOT EXISTS (SELECT 1 FROM ${qualify(schema, '_pgland_runs')} r
                         WHERE r.status = 'running' AND c.relname LIKE '_pgland_pipe_' || replace(r.run_id::text, '-', '') || '%')`,
    [schema, PIPELINE_STAGE_PATTERN],
  );
  for (const r of rows) await client.query(`DROP TABLE IF EXISTS ${qualify(schema, r.relname)}`);
}
