import type pg from 'pg';
import type { Logger } from 'pino';
import { ChunkPool, copyBatch, newBatchBuffer, readAhead, type BatchBuffer, type FillContext, type RecordSource } from '../load/copy-writer.js';
import { IdSet } from '../load/id-set.js';
import type { RecordEnvelope, Reject } from '../input/envelope.js';
import {
  beginCounting,
  HELPER_WAIT_MS,
  pipelineBatches,
  pipelineStageTables,
  restageIfNeeded,
  retrying,
  stageOnHelper,
  type Retries,
} from '../load/pipelined.js';
import { addCounts, insertRejectsSql, recordBatchSql, zeroCounts, type RunCounts } from '../load/runs.js';
import type { ObjectLease } from '../load/lease.js';
import { connectIfFree, RunSession } from '../load/session.js';
import { begin } from '../sql/transaction.js';
import { qualify } from '../sql/ident.js';
import { KeptLines } from './kept-lines.js';
import { applyStaged, type PartCounts, type PartRunner } from './bisect.js';
import { groupsOfDeletedSql, setGroupsSql } from './groups.js';
import { mergeIntoSql, type MergeShape } from './merge-into.js';
import { copyIntoStageSql, createIntoPipeStageSql, createIntoStageSql, TEMP_STAGE, type IntoRowEncoder } from './stage.js';
import type { IntoPlan } from './validate.js';

/**
 * The batches of a load into an own table, each its own transaction, in
 * input order. The first batch lands alone on the run's connection (a
 * temporary staging table, the next batch read ahead meanwhile); so do all
 * of them when the pool has no second connection free. Otherwise the rest
 * are pipelined (load/pipelined.ts): a helper connection stages batch n+1
 * into one of two staging tables in pgland's schema and commits it, while
 * the run's connection merges batch n into the customer's table, so that
 * Node's reading and encoding, the helper's COPY and the merge run at once.
 */

export interface RunState {
  runId: string;
  schema: string;
  plan: IntoPlan;
  hadRows: boolean;
  counts: RunCounts;
  groups: { added: number; removed: number };
  insertedKey: unknown;
  encoder: IntoRowEncoder;
  /** The table's lease (src/load/lease.ts): its fence ends every batch's transaction. */
  lease: ObjectLease;
}

/** What the batch loop needs of its run. */
export interface IntoLoop extends Retries {
  st: RunState;
  pool: pg.Pool;
  /** The run's connection: every write to the customer's tables goes through it, fenced by the lease. */
  session: RunSession;
  source: RecordSource;
  batchSize: number;
  batchBytes: number;
  log: Logger;
  /** Called once per committed batch, in input order. */
  committed(): void;
}

type Loop = IntoLoop & { chunks: ChunkPool; keys: IdSet };

/** A batch's buffer, and whether two of its records share a matching value. */
interface Batch {
  buf: BatchBuffer;
  repeated: boolean;
  /** Some of its rows were sent again (a replay): their keys were not seen twice, so repeats are assumed. */
  replayed: boolean;
  /** The batch was read ahead (readAhead): settles when its records are encoded. */
  ready?: Promise<void>;
  /** The input lines of its staged records, for those the table refuses. */
  lines: KeptLines;
}

function newBatch(loop: Loop): Batch {
  const buf = newBatchBuffer('stage', loop.chunks);
  // The landed tables' check for repeated record ids: a load into an own table checks its matching values instead.
  buf.ids = undefined;
  return { buf, repeated: false, replayed: false, lines: new KeptLines(loop.chunks) };
}

/** Once the batch committed: its chunks, and those of its lines, back to the run's pool. */
function releaseBatch(loop: Loop, batch: Batch): void {
  loop.chunks.release(batch.buf);
  batch.lines.release();
}

/** How a batch reads its records: the run's encoder, and the check for repeated matching values. */
function fillContext(loop: Loop, batch: Batch): FillContext {
  const { st, keys } = loop;
  const encoder = st.encoder;
  const matching = st.plan.match !== undefined;
  // One batch is encoded at a time: the previous one's keys are no longer needed.
  keys.clear();
  // Each staged record's line is kept, its bytes counted with the batch's rows against batch_bytes.
  const staged = (record: RecordEnvelope, b: BatchBuffer): void => {
    if (matching && !batch.repeated && encoder.repeats(keys, record)) batch.repeated = true;
    b.bytes += batch.lines.add(record);
  };
  return {
    batchSize: loop.batchSize,
    batchBytes: loop.batchBytes,
    landedLead: '',
    encodeRow: (record, b, lead) => {
      const row = encoder.encode(record, b, lead);
      if (row !== '') staged(record, b);
      return row;
    },
    encodeBytes: (record, b, lead, out, at) => {
      const end = encoder.encodeBytes(record, b, lead, out, at);
      if (end >= 0) staged(record, b);
      return end;
    },
  };
}

/** For a batch whose records were all read: sends its kept rows, reads none. */
function keptOnly(loop: Loop): FillContext {
  const { encode, encodeBytes } = loop.st.encoder;
  return { batchSize: loop.batchSize, batchBytes: loop.batchBytes, landedLead: '', encodeRow: encode, encodeBytes };
}

/** The run's statements for one part of a staged batch (bisect.ts). */
function partRunner(client: pg.ClientBase, plan: IntoPlan, shape: MergeShape): PartRunner {
  const dedup = !shape.distinctKeys;
  const before = groupsOfDeletedSql(plan, shape.stage, dedup, shape.deletes);
  const merge = mergeIntoSql(plan, shape);
  const after = setGroupsSql(plan, shape.stage, dedup);
  return async (lo, hi, staged) => {
    let removed = 0;
    let added = 0;
    if (before) removed += (await client.query(before, [lo, hi])).rowCount ?? 0;
    const { rows } = await client.query<Record<string, string | null> & { first_key: unknown }>(merge, [lo, hi]);
    if (after) {
      const g = (await client.query<{ removed: string; added: string }>(after, [lo, hi])).rows[0]!;
      removed += Number(g.removed);
      added += Number(g.added);
    }
    const r = rows[0]!;
    return {
      records: r.records === null ? staged : Number(r.records),
      inserted: Number(r.inserted),
      updated: Number(r.updated),
      deleted: Number(r.deleted),
      skipped: Number(r.skipped),
      firstKey: r.first_key,
      groupsAdded: added,
      groupsRemoved: removed,
    };
  };
}

async function committedBefore(client: pg.PoolClient, st: RunState, batchNo: number): Promise<boolean> {
  const { rowCount } = await client.query(`SELECT 1 FROM ${qualify(st.schema, '_pgland_run_batches')} WHERE run_id = $1::uuid AND batch_no = $2`, [
    st.runId,
    batchNo,
  ]);
  return rowCount === 1;
}

/** What a batch's transaction adds to the run once it commits. */
interface Applied {
  counts: RunCounts;
  part: PartCounts;
}

/**
 * In the batch's open transaction, its records staged in `stage`: applies
 * them (bisecting around the records the table refuses), records rejects,
 * counters and the batch, and checks the lease last.
 */
async function applyBatch(client: pg.PoolClient, st: RunState, batchNo: number, batch: Batch, stage: string): Promise<Applied> {
  const buf = batch.buf;
  const shape: MergeShape = { stage, distinctKeys: !(batch.repeated || batch.replayed), prefilter: st.hadRows, deletes: st.encoder.deletions(buf) > 0 };
  // Records the table refused: kept apart from the encoder's rejects, which a replay does not encode again.
  const refused: Reject[] = [];
  // The table holds exactly the batch's rows: COPYed just now, or checked by restageIfNeeded.
  const part = await applyStaged(client, st.plan, stage, buf.records, partRunner(client, st.plan, shape), refused, (line) => batch.lines.get(line));
  const rejects = [...buf.rejects, ...refused];
  const counts = zeroCounts();
  counts.batches = 1;
  counts.rowsRead = buf.rowsRead;
  counts.rejected = rejects.length;
  counts.inserted = part.inserted;
  counts.updated = part.updated;
  counts.deleted = part.deleted;
  counts.skipped = part.skipped + st.encoder.skipped(buf);
  counts.superseded = buf.records - part.records - refused.length;
  counts.unchanged = part.records - part.inserted - part.updated - part.deleted - part.skipped;
  counts.nulStripped = buf.stats.nulStripped;
  if (rejects.length > 0) await client.query(insertRejectsSql(st.schema, st.runId, rejects));
  await client.query(recordBatchSql(st.schema, st.runId, counts, null, batchNo, buf.rowsRead));
  await st.lease.fence(client);
  return { counts, part };
}

function settle(st: RunState, { counts, part }: Applied): void {
  addCounts(st.counts, counts);
  st.groups.added += part.groupsAdded;
  st.groups.removed += part.groupsRemoved;
  if (st.insertedKey === undefined) st.insertedKey = part.firstKey;
}

/**
 * One batch alone in one transaction on the run's connection: stage with
 * COPY into a temporary table, apply, commit. `staged` is called once the
 * batch's records are staged: the run then reads the next batch while the
 * server merges this one.
 */
async function landAloneOnce(
  client: pg.PoolClient,
  loop: Loop,
  batchNo: number,
  batch: Batch,
  fill: FillContext,
  replay: boolean,
  staged: () => void,
): Promise<void> {
  const st = loop.st;
  if (replay && (await committedBefore(client, st, batchNo))) return;
  if (replay) batch.replayed = true;
  await begin(client);
  try {
    await client.query(createIntoStageSql(st.plan));
    await copyBatch(client, copyIntoStageSql(), fill, loop.source, batch.buf);
    staged();
    const applied = await applyBatch(client, st, batchNo, batch, TEMP_STAGE);
    await client.query('COMMIT');
    settle(st, applied);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Lands `batch` alone (see landAloneOnce), replaying it after a transient
 * failure; returns the next batch, read ahead, or undefined at the end of
 * the input.
 */
async function landAlone(loop: Loop, batchNo: number, batch: Batch): Promise<Batch | undefined> {
  if (batch.ready) {
    // Read ahead: an input error or a cancellation surfaces here, after the previous batch committed.
    await batch.ready;
    if (batch.buf.rowsRead === 0) return undefined;
  } else if ((await loop.source.peek()) === undefined) return undefined;
  const fill = batch.ready ? keptOnly(loop) : fillContext(loop, batch);
  let next: Batch | undefined;
  const readNext = (): void => {
    if (next) return;
    next = newBatch(loop);
    next.ready = readAhead(next.buf, fillContext(loop, next), loop.source);
    next.ready.catch(() => undefined);
  };
  try {
    await retrying(loop, loop.session, batchNo, (client, replay) => landAloneOnce(client, loop, batchNo, batch, fill, replay, readNext));
  } catch (err) {
    // A run that failed leaves no read-ahead behind it still reading the input.
    await next?.ready?.catch(() => undefined);
    throw err;
  }
  releaseBatch(loop, batch);
  loop.committed();
  return next ?? newBatch(loop);
}

/**
 * One pipelined batch's transaction on the run's connection: what the
 * helper staged in `table` (staged again first when the table does not hold
 * exactly the batch, see restageIfNeeded), applied to the customer's tables,
 * the table emptied for the batch after next, the batch recorded.
 */
async function mergeStaged(client: pg.PoolClient, loop: Loop, batchNo: number, batch: Batch, table: string, replay: boolean): Promise<void> {
  const st = loop.st;
  if (replay && (await committedBefore(client, st, batchNo))) return;
  // BEGIN with the count, the TRUNCATE with the COMMIT: a round trip fewer each, as in pipeline.ts.
  const counted = beginCounting(client, table);
  try {
    if (await restageIfNeeded(client, table, await counted, copyIntoStageSql(table), keptOnly(loop), loop.source, batch.buf)) batch.replayed = true;
    const applied = await applyBatch(client, st, batchNo, batch, table);
    loop.source.throwIfCancelled();
    await client.query(`TRUNCATE ${table}; COMMIT`);
    settle(st, applied);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Batches from `firstBatchNo` on, the first of them possibly read ahead already, pipelined with the helper. */
async function landPipelined(loop: Loop, helper: RunSession, firstBatchNo: number, first: Batch): Promise<void> {
  const tables = pipelineStageTables(loop.st.schema, loop.st.runId);
  // Both tables in one round trip, as for landed tables (src/load/pipeline.ts).
  await loop.session.client!.query(tables.map((t) => createIntoPipeStageSql(loop.st.plan, t)).join(';\n'));
  let pending: Batch | undefined = first;
  try {
    await pipelineBatches<{ batch: Batch; table: string }>(
      firstBatchNo,
      async (batchNo) => {
        // Reading the input, staging: overlaps the previous batch's merge.
        const batch = pending ?? newBatch(loop);
        pending = undefined;
        if (batch.ready) {
          await batch.ready;
          if (batch.buf.rowsRead === 0) return undefined;
        } else if ((await loop.source.peek()) === undefined) return undefined;
        const fill = batch.ready ? keptOnly(loop) : fillContext(loop, batch);
        const table = tables[batchNo % 2]!;
        await stageOnHelper(loop, helper, batchNo, copyIntoStageSql(table), fill, loop.source, batch.buf, () => (batch.replayed = true));
        return { batch, table };
      },
      async (batchNo, { batch, table }) => {
        await retrying(loop, loop.session, batchNo, (client, replay) => mergeStaged(client, loop, batchNo, batch, table, replay));
        releaseBatch(loop, batch);
        loop.committed();
      },
    );
  } finally {
    // A read-ahead batch never staged still reads the input: it settles first.
    await pending?.ready?.catch(() => undefined);
    // Left behind when this fails (a lost connection): the next run in the schema drops them (finish.ts).
    await loop.session.client?.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`).catch(() => undefined);
  }
}

/** Lands the input batch by batch (see the top of this file). */
export async function landIntoBatches(run: IntoLoop): Promise<void> {
  const loop: Loop = { ...run, chunks: new ChunkPool(), keys: new IdSet(run.batchSize) };
  try {
    await landAll(loop);
  } finally {
    // The run's free chunks go to the process's next runs (copy-writer.ts).
    loop.chunks.retire();
  }
}

async function landAll(loop: Loop): Promise<void> {
  let batch = await landAlone(loop, 1, newBatch(loop));
  if (!batch) return;
  const client = await connectIfFree(loop.pool, HELPER_WAIT_MS);
  if (!client) {
    loop.log.debug('no second connection: one batch at a time');
    for (let batchNo = 2; batch; batchNo++) batch = await landAlone(loop, batchNo, batch);
    return;
  }
  const helper = new RunSession(loop.pool);
  await helper.open(client);
  let failed = true;
  try {
    await landPipelined(loop, helper, 2, batch);
    failed = false;
  } finally {
    // After a failure the helper's state is in doubt: its connection is not reused.
    await helper.close(failed);
  }
}
