import type pg from 'pg';
import type { Logger } from 'pino';
import type { MergeOptions } from '../merge/merge.js';
import { copyLandedSql, copyStageSql, createPipelineStageSql, pipelineStageTables, type RowFormat } from '../stage/stage.js';
import { ChunkPool, copyBatch, newBatchBuffer, type BatchBuffer, type BatchContext, type LastBatch, type RecordSource } from './copy-writer.js';
import { alreadyCommitted, commitBatch, completeLanded, isKeyConflict, mergeStaged, recordBatch, runBatch, type BatchOutcome } from './batch.js';
import { beginWith } from '../sql/transaction.js';
import { IdSet } from './id-set.js';
import type { ObjectLease } from './lease.js';
import { connectIfFree, RunSession } from './session.js';
import { beginCounting, HELPER_WAIT_MS, isFinal, pipelineBatches, restageIfNeeded, retrying, stageOnHelper } from './pipelined.js';
import { zeroCounts } from './runs.js';

/**
 * After this many batches of a first load met keys that were already landed
 * (ids repeated in the input), the rest of the run goes through the merge:
 * each such batch is COPYed twice.
 */
const MAX_KEY_CONFLICTS = 3;

/** What the batch loop needs of its run. */
export interface BatchLoop {
  pool: pg.Pool;
  /** The run's connection: every write to the landed table goes through it, fenced by the lease. */
  session: RunSession;
  lease: ObjectLease;
  merge: MergeOptions;
  /** The row format the run starts with (see loader.ts). */
  format: RowFormat;
  landedLead: string;
  batchSize: number;
  batchBytes: number;
  batchRetries: number;
  source: RecordSource;
  log: Logger;
  /** Called once per committed batch, in input order. */
  committed(outcome: BatchOutcome | 'already-committed', buf: BatchBuffer): void;
  /** The run's end, in the transaction of the batch that ends the input (copy-writer.ts, LastBatch). */
  lastBatch?: LastBatch;
}

/** The loop's own state beside what the run gave it. */
type Loop = BatchLoop & { chunks: ChunkPool; ids: IdSet; keyConflicts: number };

/** A batch committed: counted by the run, its chunks reused by the next batches. */
function done(loop: Loop, outcome: BatchOutcome | 'already-committed', buf: BatchBuffer): void {
  loop.committed(outcome, buf);
  loop.chunks.release(buf);
}

function batchContext(loop: BatchLoop, batchNo: number, merge = loop.merge): BatchContext {
  return {
    merge,
    batchNo,
    batchSize: loop.batchSize,
    batchBytes: loop.batchBytes,
    landedLead: loop.landedLead,
    lease: loop.lease,
    ...(loop.lastBatch ? { lastBatch: loop.lastBatch } : {}),
  };
}

/**
 * One batch in one transaction on the run's connection (batch.ts); false at
 * the end of the input. `kept`: a batch that an overlapped first load could
 * not commit, replayed from its kept bytes (it may have committed: its
 * COMMIT's answer may have been lost).
 */
async function landOne(loop: Loop, batchNo: number, format: RowFormat, kept?: BatchBuffer, filled?: () => void): Promise<boolean> {
  if (!kept && (await loop.source.peek()) === undefined) return false;
  const buf = kept ?? newBatchBuffer(format, loop.chunks, loop.ids);
  const ctx = batchContext(loop, batchNo);
  const outcome = await retrying(loop, loop.session, batchNo, async (client, replay) => {
    try {
      return await runBatch(client, ctx, loop.source, buf, replay || kept !== undefined, filled);
    } catch (err) {
      if (!isKeyConflict(err, buf)) throw err;
      // Rolled back on a healthy connection: the same batch again, through the merge.
      buf.conflicted = true;
      loop.keyConflicts++;
      loop.log.debug({ batchNo }, 'a key of this batch is already landed: replaying it through the merge');
      return runBatch(client, ctx, loop.source, buf, replay || kept !== undefined, filled);
    }
  });
  done(loop, outcome, buf);
  loop.log.debug({ batchNo }, 'batch committed');
  return true;
}

/**
 * Lands the input batch by batch, each batch its own transaction, in input
 * order. A first load's batches are COPYed straight into the landed table on
 * two connections in turn (landFirstLoad). The first batch of other runs, and
 * runs that cannot have a second connection, go one batch at a time on the
 * run's connection. Otherwise the
 * batches are pipelined: while batch n merges on the run's connection, batch
 * n+1 is read, encoded and COPYed on a helper connection, so that Node's
 * encoding and two server backends work at once.
 */
export async function landBatches(run: BatchLoop): Promise<void> {
  const loop: Loop = { ...run, chunks: new ChunkPool(), ids: new IdSet(run.batchSize), keyConflicts: 0 };
  try {
    await landAll(loop);
  } finally {
    loop.chunks.retire();
  }
}

async function landAll(loop: Loop): Promise<void> {
  if (loop.format !== 'landed') return landStaged(loop);
  let batchNo = await landFirstLoad(loop);
  if (batchNo === undefined) return;
  while (loop.format === 'landed' && loop.keyConflicts < MAX_KEY_CONFLICTS) {
    if (!(await landOne(loop, batchNo++, 'landed'))) return;
  }
  if ((await loop.source.peek()) === undefined) return;
  const helper = await helperSession(loop);
  if (!helper) {
    while (await landOne(loop, batchNo++, 'stage'));
    return;
  }
  await pipelineOn(helper, () => landPipelined(loop, helper, batchNo));
}

/**
 * A run whose batches are staged and merged. Batch 1 lands on the run's
 * connection; once it has taken its last record, if the input goes on, the
 * helper connection is opened and batch 2 staged while batch 1 merges and
 * commits: across a link, the helper's connection, the staging tables and
 * batch 2's COPY are no longer round trips after batch 1's. A run of one
 * batch opens no second connection.
 */
async function landStaged(loop: Loop): Promise<void> {
  let setFilled!: (filled: boolean) => void;
  const filled = new Promise<boolean>((resolve) => (setFilled = resolve));
  const first = landOne(loop, 1, loop.format, undefined, () => setFilled(true));
  // Settles `filled` when batch 1 ends without taking a record (an empty input) or fails first.
  void first.then(
    () => setFilled(false),
    () => setFilled(false),
  );
  // The run's connection belongs to batch 1 until `first` settles: nothing else may queue a query on it.
  const more = (await filled) && (await peekAfter(loop, first)) !== undefined;
  const helper = more ? await helperSession(loop) : undefined;
  if (!helper) {
    if (!(await first)) return;
    for (let batchNo = 2; await landOne(loop, batchNo, 'stage'); batchNo++);
    return;
  }
  await pipelineOn(helper, () =>
    landPipelined(
      loop,
      helper,
      2,
      first.then(() => undefined),
    ),
  );
}

/** The next record, once batch 1 has taken its last; undefined when the input ended (or batch 1 failed: `first` says why). */
async function peekAfter(loop: Loop, first: Promise<boolean>): Promise<unknown> {
  try {
    return await loop.source.peek();
  } catch (err) {
    // The input's error: batch 1 settles first (it took no part of the failed line), then the error ends the run.
    await first.catch(() => undefined);
    throw err;
  }
}

/** A helper connection for the pipeline, if the pool has one free within HELPER_WAIT_MS (a role's connection limit may leave none). */
async function helperSession(loop: Loop): Promise<RunSession | undefined> {
  const client = await connectIfFree(loop.pool, HELPER_WAIT_MS);
  if (!client) return undefined;
  const helper = new RunSession(loop.pool);
  await helper.open(client);
  return helper;
}

/** Runs the pipeline with its helper, then gives the helper back; after a failure its state is in doubt and its connection is not reused. */
async function pipelineOn(helper: RunSession, run: () => Promise<void>): Promise<void> {
  let failed = true;
  try {
    await run();
    failed = false;
  } finally {
    await helper.close(failed);
  }
}

/**
 * Pipelined batches. Staging tables are the run's own two (stage.ts), used in
 * turn: the helper COPYs batch n into one and commits; the run's connection
 * merges it, records it and empties the table in the batch's transaction,
 * while the helper fills the other. Merges stay in input order, each after
 * the previous one committed; in a merged run only the run's connection writes the
 * landed table, each time fenced by the object's lease. The staging tables
 * are regular tables, not temporary ones: they outlive a transaction, and
 * through a transaction-mode pooler a temporary table would stay on one
 * server connection.
 */
async function landPipelined(loop: Loop, helper: RunSession, firstBatchNo: number, merging?: Promise<void>): Promise<void> {
  const tables = pipelineStageTables(loop.merge.schema, loop.merge.runId);
  try {
    // Both tables in one round trip (a simple query with two statements), on
    // the helper: the run's connection may still be merging batch 1.
    await helper.client!.query(tables.map((t) => createPipelineStageSql(t, loop.merge.def)).join(';\n'));
  } catch (err) {
    await merging?.catch(() => undefined);
    throw err;
  }
  const state: Pipelined = { tables, endedBefore: undefined, dropped: false };
  try {
    await pipelineBatches<{ buf: BatchBuffer; table: string }>(
      firstBatchNo,
      async (batchNo) => {
        // Reading the input, staging: overlaps the previous batch's merge.
        if ((await loop.source.peek()) === undefined) {
          state.endedBefore = batchNo;
          return undefined;
        }
        const buf = newBatchBuffer('stage', loop.chunks, loop.ids);
        const table = tables[batchNo % 2]!;
        await stageOnHelper(loop, helper, batchNo, copyStageSql(loop.merge.def, 'stage', table), batchContext(loop, batchNo), loop.source, buf);
        return { buf, table };
      },
      (batchNo, { buf, table }) => mergeOnRun(loop, state, batchNo, buf, table),
      merging,
    );
  } finally {
    // Left behind when this fails (a lost connection): the next run of the schema drops them (finish.ts).
    if (!state.dropped) await loop.session.client?.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`).catch(() => undefined);
  }
}

/** What the merges of a pipelined run share. */
interface Pipelined {
  tables: string[];
  /** The batch number at which the input was found ended (no record for it): the batch before it is the run's last. */
  endedBefore: number | undefined;
  /** The last batch's transaction dropped the staging tables. */
  dropped: boolean;
}

/** Merges a staged batch on the run's connection, replaying after a transient failure. */
async function mergeOnRun(loop: Loop, state: Pipelined, batchNo: number, buf: BatchBuffer, table: string): Promise<void> {
  const ctx = batchContext(loop, batchNo, { ...loop.merge, stageTable: table });
  const outcome = await retrying(loop, loop.session, batchNo, (client, replay) => mergeStagedBatch(client, ctx, loop.source, buf, table, replay, state));
  done(loop, outcome, buf);
  loop.log.debug({ batchNo }, 'batch committed');
}

/**
 * One pipelined batch's transaction: the merge of what the helper staged
 * (staged again first when the table does not hold exactly the batch, see
 * restageIfNeeded), the batch's records, and the staging table emptied for
 * the batch after next. The batch that ends the input ends the run with it
 * (LastBatch) and drops both staging tables: the helper found no record for
 * the batch after it while it merged, or the batch itself read the end.
 */
async function mergeStagedBatch(
  client: pg.PoolClient,
  ctx: BatchContext,
  source: RecordSource,
  buf: BatchBuffer,
  table: string,
  replay: boolean,
  state: Pipelined,
): Promise<BatchOutcome | 'already-committed'> {
  if (replay && (await alreadyCommitted(client, ctx))) return 'already-committed';
  // BEGIN and the count in one round trip, the TRUNCATE with the COMMIT: across a link each is 40 ms a batch.
  const counted = beginCounting(client, table);
  try {
    await restageIfNeeded(client, table, await counted, copyStageSql(ctx.merge.def, 'stage', table), ctx, source, buf);
    const counts = zeroCounts();
    const maxLastModified = await mergeStaged(client, { ...ctx.merge, distinctIds: !buf.repeatedIds }, buf.records, counts);
    await recordBatch(client, ctx, buf, counts, maxLastModified);
    source.throwIfCancelled();
    // Known only now for a batch that filled up just as the input ended: the helper's read of the next one found nothing.
    if (state.endedBefore === ctx.batchNo + 1) buf.endsInput = true;
    const last = ctx.lastBatch !== undefined && buf.endsInput;
    await commitBatch(client, ctx, buf, counts, last ? `DROP TABLE IF EXISTS ${state.tables.join(', ')}` : `TRUNCATE ${table}`);
    if (last) state.dropped = true;
    return { counts, maxLastModified };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** A first-load batch that rolled back because the batch before it did not commit. */
class EarlierBatchFailed extends Error {}

/** A first load's second connection: not asked for yet, or none to be had (null). */
interface Turns {
  helper: RunSession | null | undefined;
}

/** A first-load batch in flight on one of the two connections. */
interface InFlight {
  batchNo: number;
  buf: BatchBuffer;
  /** True once the batch took its last record from the input; false when it failed before. */
  filled: Promise<boolean>;
  /** Settles once the batch committed (undefined) or rolled back (its error). */
  landed: Promise<unknown>;
}

/**
 * A batch's turn: an advisory lock of the batch's transaction, keyed by the
 * run and the batch's number modulo 3. Batch n takes its own exclusively
 * when it begins; after its COPY, batch n+1 waits for batch n's in shared
 * mode, that is until batch n committed or rolled back. The wait is the
 * server's, so that its deadlock detector sees it: batch n's COPY waits for
 * batch n+1's when both insert one key and n+1's came first.
 */
function turnSql(runId: string, batchNo: number, mode: 'own' | 'after'): string {
  const run = Number.parseInt(runId.slice(0, 8), 16) | 0;
  return `SELECT pg_advisory_xact_lock${mode === 'after' ? '_shared' : ''}(${run}, ${batchNo % 3})`;
}

/**
 * A first load, batch by batch: COPY straight into the landed table, on two
 * connections in turn (the run's and a helper), so that one batch's COPY
 * overlaps the end of the one before it (its COPY's answer, deletion times,
 * records, fence and COMMIT: round trips that, across a link, would
 * otherwise leave Node and the server idle). Returns the next batch's
 * number, or undefined at the end of the input. After MAX_KEY_CONFLICTS
 * batches met a key already landed, or without a second connection, the
 * caller goes on one batch at a time.
 */
async function landFirstLoad(loop: Loop): Promise<number | undefined> {
  const turns: Turns = { helper: undefined };
  let batchNo = 1;
  let broken = true;
  try {
    do {
      const next = await landOverlapped(loop, turns, batchNo);
      if (next === undefined) {
        broken = false;
        return undefined;
      }
      batchNo = next;
    } while (turns.helper !== null && loop.keyConflicts < MAX_KEY_CONFLICTS);
    broken = false;
    return batchNo;
  } finally {
    await turns.helper?.close(broken);
  }
}

/** The helper connection of a first load, if the pool has one free (a role's connection limit may leave none). */
async function helperOf(loop: Loop, turns: Turns): Promise<RunSession | null> {
  if (turns.helper !== undefined) return turns.helper;
  const client = await connectIfFree(loop.pool, HELPER_WAIT_MS);
  if (!client) {
    loop.log.debug('no second connection for the first load: one batch at a time');
    return (turns.helper = null);
  }
  const helper = new RunSession(loop.pool);
  await helper.open(client);
  return (turns.helper = helper);
}

/**
 * Overlapped batches until the input ends (undefined), a batch fails, or no
 * helper can be had (the next batch's number). Batch n+1 starts reading the
 * input once batch n has read its last record, on the connection batch n-1
 * used, once that one is done; it commits only after batch n committed, and
 * rolls back if batch n did not: batches commit in input order, and a failed
 * batch leaves no later batch landed. After a failure, the batches in flight
 * settle; the first failure that is final ends the run, as it would one batch
 * at a time; otherwise the failed batches are replayed from their kept bytes
 * one at a time on the run's connection (a key already landed goes through
 * the merge, which keeps the newest version).
 */
async function landOverlapped(loop: Loop, turns: Turns, firstBatchNo: number): Promise<number | undefined> {
  const flight: InFlight[] = [];
  let batchNo = firstBatchNo;
  let stopped: unknown;
  let ended = false;
  for (; ; batchNo++) {
    const prev = flight.at(-1);
    if (prev && !(await prev.filled)) break;
    try {
      ended = (await loop.source.peek()) === undefined;
    } catch (err) {
      stopped = err;
      break;
    }
    if (ended) break;
    let session = loop.session;
    if (flight.length % 2 === 1) {
      const helper = await helperOf(loop, turns);
      if (!helper) break;
      session = helper;
    }
    // The connection is free once the batch before the previous one is done.
    const before = flight.at(-2);
    if (before && (await before.landed) !== undefined) break;
    flight.push(startOverlapped(loop, session, batchNo, prev));
  }
  const failures = await Promise.all(flight.map((f) => f.landed));
  let failed = false;
  for (const [i, f] of flight.entries()) {
    const err = failures[i];
    if (err === undefined) continue;
    failed = true;
    if (isKeyConflict(err, f.buf)) {
      f.buf.conflicted = true;
      loop.keyConflicts++;
    } else if (!(err instanceof EarlierBatchFailed) && isFinal(loop, err, 0)) {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the batch's error, rethrown
      throw err;
    }
    loop.log.debug({ batchNo: f.batchNo, err: { message: (err as Error).message } }, 'overlapped batch rolled back: replaying it alone');
    await landOne(loop, f.batchNo, 'landed', f.buf);
  }
  if (failed && turns.helper) {
    // Its connection may be the one that failed: the next overlapped batches get a new one.
    await turns.helper.close(true);
    turns.helper = undefined;
  }
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the input's error, rethrown
  if (stopped !== undefined) throw stopped;
  return ended ? undefined : batchNo;
}

function startOverlapped(loop: Loop, session: RunSession, batchNo: number, prev: InFlight | undefined): InFlight {
  const buf = newBatchBuffer('landed', loop.chunks, loop.ids);
  let setFilled!: (ok: boolean) => void;
  const filled = new Promise<boolean>((resolve) => (setFilled = resolve));
  const landed = landAlongside(loop, session.client!, batchNo, buf, prev, () => setFilled(true)).then(
    () => undefined,
    (err: unknown) => err ?? new Error('batch failed'),
  );
  void landed.then(() => setFilled(false));
  return { batchNo, buf, filled, landed };
}

/** One overlapped batch's transaction; done() once it committed, in input order. */
async function landAlongside(
  loop: Loop,
  client: pg.PoolClient,
  batchNo: number,
  buf: BatchBuffer,
  prev: InFlight | undefined,
  filled: () => void,
): Promise<void> {
  const ctx = batchContext(loop, batchNo);
  const o = loop.merge;
  try {
    await beginWith(client, turnSql(o.runId, batchNo, 'own'));
    await copyBatch(client, copyLandedSql(o.schema, o.def), ctx, loop.source, buf, filled);
    const counts = zeroCounts();
    const maxLastModified = await completeLanded(client, o, buf, counts);
    if (prev) {
      await client.query(turnSql(o.runId, prev.batchNo, 'after'));
      if ((await prev.landed) !== undefined) throw new EarlierBatchFailed(`batch ${prev.batchNo} did not commit`);
    }
    await recordBatch(client, ctx, buf, counts, maxLastModified);
    loop.source.throwIfCancelled();
    await commitBatch(client, ctx, buf, counts);
    done(loop, { counts, maxLastModified }, buf);
    loop.log.debug({ batchNo }, 'batch committed');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
