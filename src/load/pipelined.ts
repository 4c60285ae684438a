import type pg from 'pg';
import type { Logger } from 'pino';
import { isRetryable } from '../connection/retry.js';
import { begin, beginWith } from '../sql/transaction.js';
import { CancelledError, copyBatch, InputError, type BatchBuffer, type FillContext, type RecordSource } from './copy-writer.js';
import type { RunSession } from './session.js';

/**
 * What pipelined batches share, whether they merge into a landed table
 * (pipeline.ts) or into the customer's own table (src/into/run.ts): a helper
 * connection stages batch n+1 into one of the run's two staging tables and
 * commits it there, while the run's connection merges batch n from the other
 * one. Merges stay in input order, each after the previous one committed.
 */

/** The run's two staging tables, their names and their definition (for src/into, which does not import src/stage). */
export { createUnloggedStageSql, pipelineStageTables } from '../stage/stage.js';

/** How long a run waits for a free pool connection to pipeline with before it goes on alone. */
export const HELPER_WAIT_MS = 250;

/** How many times a batch's step is tried again after a transient failure, and where that is logged. */
export interface Retries {
  batchRetries: number;
  log: Logger;
}

/** The error ends the run: not retryable, or not after this many attempts. */
export function isFinal(r: Retries, err: unknown, attempt: number): boolean {
  return err instanceof InputError || err instanceof CancelledError || !isRetryable(err) || attempt >= r.batchRetries;
}

/**
 * Runs one step of a batch on a session's connection; after a transient
 * failure, reconnects (checking the lease on the run's connection) and runs
 * it again as a replay, up to batch_retries times.
 */
export async function retrying<T>(r: Retries, session: RunSession, batchNo: number, step: (client: pg.PoolClient, replay: boolean) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await step(session.client!, attempt > 0);
    } catch (err) {
      if (isFinal(r, err, attempt)) throw err;
      r.log.warn({ batchNo, attempt: attempt + 1, err: { message: (err as Error).message } }, 'batch failed on a transient error: replaying');
      await session.reopen(attempt + 1);
    }
  }
}

/**
 * Stages a batch on the helper and commits it there; stages it again (from
 * its kept bytes, then on from the input) on a new connection after a
 * transient failure. `replayed` is called before each attempt after the first.
 */
export async function stageOnHelper(
  r: Retries,
  helper: RunSession,
  batchNo: number,
  copySql: string,
  fill: FillContext,
  source: RecordSource,
  buf: BatchBuffer,
  replayed?: () => void,
): Promise<void> {
  await retrying(r, helper, batchNo, async (client, replay) => {
    if (replay) replayed?.();
    await begin(client);
    try {
      await copyBatch(client, copySql, fill, source, buf);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * In the merge's transaction, once the staging table's rows are counted
 * (`staged`, read with the BEGIN): makes it hold exactly the batch. It may
 * not (a server restart empties unlogged tables; a COMMIT whose answer was
 * lost and whose batch was staged again doubles it): the batch is then
 * COPYed again from its kept bytes. True when it was.
 */
export async function restageIfNeeded(
  client: pg.PoolClient,
  table: string,
  staged: number,
  copySql: string,
  fill: FillContext,
  source: RecordSource,
  buf: BatchBuffer,
): Promise<boolean> {
  if (staged === buf.records) return false;
  await client.query(`TRUNCATE ${table}`);
  await copyBatch(client, copySql, fill, source, buf);
  return true;
}

/** BEGIN and the count of a staging table's rows in one round trip (across a link each is a round trip a batch). */
export function beginCounting(client: pg.PoolClient, table: string): Promise<number> {
  return beginWith<{ n: string }>(client, `SELECT count(*) AS n FROM ${table}`).then((r) => Number(r.rows[0]!.n));
}

/**
 * The pipelined loop: `stage(batchNo)` reads and stages the next batch (on
 * the helper; undefined at the end of the input) while the merge of the one
 * before it runs; `merge` starts once the previous merge settled. A failure
 * is thrown in input order: the previous batch's merge ends first, whatever
 * happened to the batch being staged, and no later batch merges after it.
 */
export async function pipelineBatches<T>(
  firstBatchNo: number,
  stage: (batchNo: number) => Promise<T | undefined>,
  merge: (batchNo: number, staged: T) => Promise<void>,
  /** The merge of the batch before firstBatchNo, when it is still running (pipeline.ts, landStaged). */
  merging?: Promise<void>,
): Promise<void> {
  merging?.catch(() => undefined); // awaited below
  try {
    for (let batchNo = firstBatchNo; ; batchNo++) {
      let staged: T | undefined;
      let failure: unknown;
      try {
        staged = await stage(batchNo);
      } catch (err) {
        failure = err;
      }
      if (merging) await merging;
      merging = undefined;
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the batch's error, rethrown
      if (failure !== undefined) throw failure;
      if (staged === undefined) return;
      merging = merge(batchNo, staged);
      merging.catch(() => undefined); // awaited above, or below when the loop ends early
    }
  } finally {
    if (merging) await merging.catch(() => undefined);
  }
}
