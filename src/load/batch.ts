import type pg from 'pg';
import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import { mergeSql, type MergeCounts, type MergeOptions } from '../merge/merge.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { begin, beginWith } from '../sql/transaction.js';
import { preparedIf } from '../sql/prepared.js';
import { copyLandedSql, copyStageSql, createStageSql, numberLinesSql, reusableStageSql } from '../stage/stage.js';
import { copyBatch, type BatchBuffer, type BatchContext, type RecordSource } from './copy-writer.js';
import { insertProblemsSql, insertRejectsSql, recordBatchSql, zeroCounts, type RunCounts } from './runs.js';

/**
 * Runs the merge of `records` staged records and adds what it did to the run
 * counters; returns the newest last-modified time staged. `prepared`: the
 * statement is prepared once per connection and its plan kept (planning the
 * merge is milliseconds, most of a small set's merge); only for a staging
 * table that outlives the transaction, on a direct connection (a
 * transaction-mode pooler does not keep a prepared statement).
 */
export async function mergeStaged(client: pg.ClientBase, o: MergeOptions, records: number, counts: RunCounts, prepared = false): Promise<Date | null> {
  if (records === 0) return null;
  const { rows } = await client.query<MergeCounts>(preparedIf(mergeSql(o), prepared));
  const r = rows[0]!;
  const distinct = Number(r.distinct_records);
  counts.inserted += Number(r.inserted);
  counts.updated += Number(r.updated);
  counts.deleted += Number(r.deleted);
  counts.undeleted += Number(r.undeleted);
  counts.skipped += Number(r.skipped);
  counts.superseded += records - distinct;
  counts.unchanged += distinct - Number(r.inserted) - Number(r.updated) - Number(r.deleted) - Number(r.skipped);
  counts.problems += Number(r.duplicates);
  return r.max_lm;
}

/** Whether this batch already committed (its commit was acknowledged or lost on the way back). */
export async function alreadyCommitted(client: pg.PoolClient, ctx: BatchContext): Promise<boolean> {
  const { rowCount } = await client.query(`SELECT 1 FROM ${qualify(ctx.merge.schema, '_pgland_run_batches')} WHERE run_id = $1::uuid AND batch_no = $2`, [
    ctx.merge.runId,
    ctx.batchNo,
  ]);
  return rowCount === 1;
}

export interface BatchOutcome {
  counts: RunCounts;
  maxLastModified: Date | string | null;
}

/**
 * A batch COPYed straight into the landed table: every record is a new row
 * (the run checked that the tenant had none, and a key met twice fails the
 * COPY). What the merge would have done on top: deletion times, from the
 * server's clock as the merge's now(); and the newest version.
 */
export async function completeLanded(client: pg.PoolClient, o: MergeOptions, buf: BatchBuffer, counts: RunCounts): Promise<Date | string | null> {
  counts.inserted += buf.records;
  if (buf.deletedIds.length > 0) {
    await client.query(
      `UPDATE ${qualify(o.schema, o.def.table)} SET ${q(P.deletedAt)} = now()
        WHERE ${q(P.provider)} = $1 AND ${q(P.customerId)} = $2 AND "id" = ANY($3::text[]) AND ${q(P.isDeleted)}`,
      [o.provider, o.customerId, buf.deletedIds],
    );
  }
  const candidates = buf.latest.candidates();
  if (candidates.length <= 1) return candidates[0] ?? null;
  const { rows } = await client.query<{ latest: Date }>(`SELECT max(t::timestamptz) AS latest FROM unnest($1::text[]) AS t`, [candidates]);
  return rows[0]!.latest;
}

/** A landed-format batch failed on a key that is already landed: replay it through the merge. */
export function isKeyConflict(err: unknown, buf: BatchBuffer): boolean {
  return buf.format === 'landed' && !buf.conflicted && (err as { code?: unknown })?.code === '23505';
}

/**
 * One batch, in ONE transaction: stage into a temp table with COPY, merge with
 * one statement (or, for landed-format rows, COPY straight into the landed
 * table), keep the batch's rejects and problems, add to the run's counters,
 * record the batch as committed, commit. Records stream from the
 * source straight into COPY; when anything fails (the input, the connection,
 * the server) the COPY stream is destroyed so the server aborts it, and the
 * transaction rolls back: nothing of the batch lands. The caller may replay a
 * batch after a retryable failure with the same buffer. `filled`: called
 * once the batch has taken its last record from the source (copyBatch).
 */
export async function runBatch(
  client: pg.PoolClient,
  ctx: BatchContext,
  source: RecordSource,
  buf: BatchBuffer,
  replay: boolean,
  filled?: () => void,
): Promise<BatchOutcome | 'already-committed'> {
  const o = ctx.merge;
  if (replay && (await alreadyCommitted(client, ctx))) return 'already-committed';
  const direct = buf.format === 'landed' && !buf.conflicted;
  // Staged rows go to the connection's own staging table, kept from batch to
  // batch and emptied at every COMMIT: a temporary table created and dropped
  // per batch writes the system catalogs, most of a small batch's server time.
  // (A first-load batch replayed through the merge has a table of its own.)
  const reusable = buf.format === 'stage' ? reusableStageSql(o.def) : undefined;
  // BEGIN and the staging table in one round trip (the table takes no values).
  const opening = direct ? begin(client) : beginWith(client, reusable?.text ?? createStageSql(o.def, buf.format));
  try {
    await opening;
    await copyBatch(client, direct ? copyLandedSql(o.schema, o.def) : copyStageSql(o.def, buf.format, reusable?.table), ctx, source, buf, filled);
    const counts = zeroCounts();
    let maxLastModified: Date | string | null;
    if (direct) {
      maxLastModified = await completeLanded(client, o, buf, counts);
    } else {
      if (buf.format === 'landed') await client.query(numberLinesSql(), [buf.lines]);
      const staged = { ...o, distinctIds: !buf.repeatedIds, ...(reusable ? { stageTable: reusable.table } : {}) };
      // Prepared only with the reusable table: a table created per batch is another relation every time.
      maxLastModified = await mergeStaged(client, staged, buf.records, counts, reusable !== undefined && ctx.lease.direct);
    }
    await recordBatch(client, ctx, buf, counts, maxLastModified);
    source.throwIfCancelled();
    await commitBatch(client, ctx, buf, counts);
    return { counts, maxLastModified };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * COMMITs a batch: the run's end with it when the batch ends the input and
 * the run allows it (LastBatch). `before`: a statement without values to
 * send ahead of the COMMIT, in the same round trip.
 */
export async function commitBatch(client: pg.PoolClient, ctx: BatchContext, buf: BatchBuffer, counts: RunCounts, before?: string): Promise<void> {
  if (ctx.lastBatch && buf.endsInput) await ctx.lastBatch.finish(client, counts, before);
  else await client.query(before ? `${before}; COMMIT` : 'COMMIT');
}

/**
 * The rest of a batch's transaction after its rows landed: its rejects and
 * problems, the run's counters, the batch recorded as committed, and the
 * lease's fence, the last three in one statement: a run that lost its lease
 * commits nothing.
 */
export async function recordBatch(
  client: pg.PoolClient,
  ctx: BatchContext,
  buf: BatchBuffer,
  counts: RunCounts,
  maxLastModified: Date | string | null,
): Promise<void> {
  const o = ctx.merge;
  await keepNotes(client, o, buf, counts);
  const { rows } = await client.query<{ renewed: string }>(
    preparedIf(
      recordBatchSql(o.schema, o.runId, counts, maxLastModified, ctx.batchNo, buf.rowsRead, (first) => ctx.lease.fenceCte(first)),
      ctx.lease.direct,
    ),
  );
  ctx.lease.fenceHeld(rows[0]?.renewed);
}

/** A batch's rejects and problems kept, and its own counters set (it is one batch of its run). */
export async function keepNotes(client: pg.ClientBase, o: Pick<MergeOptions, 'schema' | 'runId'>, buf: BatchBuffer, counts: RunCounts): Promise<void> {
  if (buf.rejects.length > 0) await client.query(insertRejectsSql(o.schema, o.runId, buf.rejects));
  if (buf.problems.length > 0) await client.query(insertProblemsSql(o.schema, o.runId, buf.problems));
  counts.batches = 1;
  counts.rowsRead = buf.rowsRead;
  counts.rejected = buf.rejects.length;
  counts.problems += buf.problems.length;
  counts.nulStripped = buf.stats.nulStripped;
}
