import { once } from 'node:events';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import { newEncodeStats, type EncodeStats } from '../encode/copy-text.js';
import { encodeRecord, type Problem } from '../encode/record.js';
import type { Parsed, Reject } from '../input/envelope.js';
import { mergeSql, type MergeCounts, type MergeOptions } from '../merge/merge.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { copyLandedSql, copyStageSql, createStageSql, numberLinesSql, type RowFormat } from '../stage/stage.js';
import { LatestTimestamp } from './latest.js';
import { addRunCountsSql, insertProblemsSql, insertRejectsSql, zeroCounts, type RunCounts } from './runs.js';

/** Records come from the input one at a time; a batch takes what fits. */
export interface RecordSource {
  /** The next parsed line, or undefined at the end of input. Throws InputError when the input fails. */
  peek(): Promise<Parsed | undefined>;
  /** Consumes the line that peek() returned. */
  take(): void;
}

/** The input itself failed (a read error, a closed request): never retried. */
export class InputError extends Error {
  readonly code = 'input_failed';
}

export interface BatchContext {
  merge: MergeOptions;
  batchNo: number;
  batchSize: number;
  batchBytes: number;
  /** For landed-format rows: the tenant and run, encoded, ending in a tab (see stage.ts). */
  landedLead: string;
}

/**
 * What a batch has taken from the input so far. It outlives a failed attempt:
 * a batch replayed on a new connection sends the same rows again, then goes on
 * reading where it stopped.
 */
export interface BatchBuffer {
  /**
   * 'stage': rows for the staging table, merged. 'landed': rows COPYed
   * straight into the landed table (a first load, see loader.ts); such a
   * batch that meets a key already landed is replayed through a staging
   * table and the merge instead (`conflicted`).
   */
  format: RowFormat;
  conflicted: boolean;
  /** For landed-format rows: each row's input line, the ids of deleted records, the newest version. */
  lines: number[];
  deletedIds: string[];
  latest: LatestTimestamp;
  /** COPY data already sent, as UTF-8 bytes (kept for a replay). */
  chunks: Buffer[];
  /** The chunk being filled, and how many of its bytes are used. */
  pending: Buffer;
  used: number;
  records: number;
  bytes: number;
  rowsRead: number;
  rejects: Reject[];
  problems: Problem[];
  stats: EncodeStats;
  /** The batch is full or the input ended: nothing more to read. */
  complete: boolean;
}

export function newBatchBuffer(format: RowFormat = 'stage'): BatchBuffer {
  return {
    format,
    conflicted: false,
    lines: [],
    deletedIds: [],
    latest: new LatestTimestamp(),
    chunks: [],
    pending: Buffer.allocUnsafe(WRITE_CHUNK),
    used: 0,
    records: 0,
    bytes: 0,
    rowsRead: 0,
    rejects: [],
    problems: [],
    stats: newEncodeStats(),
    complete: false,
  };
}

/**
 * Rows are written as UTF-8 straight into chunks of this size, which go to the
 * socket whole: no string concatenation, and the bytes kept for a replay are
 * half the size of the strings they came from.
 */
const WRITE_CHUNK = 256 * 1024;

/**
 * Moves the chunk being filled to the kept chunks and starts a new one;
 * returns it for sending (undefined when it was empty).
 */
function seal(buf: BatchBuffer): Buffer | undefined {
  if (buf.used === 0) return undefined;
  const chunk = buf.pending.subarray(0, buf.used);
  buf.chunks.push(chunk);
  buf.pending = Buffer.allocUnsafe(WRITE_CHUNK);
  buf.used = 0;
  return chunk;
}

/** Sends the chunk being filled, and starts a new one. */
async function flush(buf: BatchBuffer, copy: CopyState): Promise<void> {
  const chunk = seal(buf);
  if (chunk) await write(copy, chunk);
}

/**
 * Appends one encoded row and returns its size in bytes; synchronous (no
 * promise per row) unless a chunk has to be sent first.
 */
function append(buf: BatchBuffer, copy: CopyState, row: string): number | Promise<number> {
  // A UTF-16 code unit takes at most 3 bytes of UTF-8: if it might not fit, flush first.
  if (buf.used + row.length * 3 > WRITE_CHUNK) return appendAfterFlush(buf, copy, row);
  const n = buf.pending.write(row, buf.used, 'utf8');
  buf.used += n;
  return n;
}

/**
 * The row is kept in the batch before anything is sent: when sending fails
 * (a lost connection), the batch is replayed from its kept bytes, and a row
 * that was only in flight would be lost (issue 8 regression).
 */
async function appendAfterFlush(buf: BatchBuffer, copy: CopyState, row: string): Promise<number> {
  const full = seal(buf);
  let big: Buffer | undefined;
  let n: number;
  if (row.length * 3 <= WRITE_CHUNK) {
    n = buf.pending.write(row, 0, 'utf8');
    buf.used = n;
  } else {
    big = Buffer.from(row, 'utf8');
    buf.chunks.push(big);
    n = big.length;
  }
  if (full) await write(copy, full);
  if (big) await write(copy, big);
  return n;
}

/** An open COPY and the first error it reported (the server's or the connection's). */
interface CopyState {
  stream: ReturnType<typeof copyFrom>;
  error?: Error;
}

async function write(copy: CopyState, chunk: Buffer): Promise<void> {
  // After the connection is lost, pg-copy-streams fails on write with a
  // TypeError; the error worth reporting (and retrying on) is the one the
  // stream emitted.
  if (copy.error) throw copy.error;
  let ok: boolean;
  try {
    ok = copy.stream.write(chunk);
  } catch (err) {
    throw copy.error ?? err;
  }
  if (ok) return;
  // Respect backpressure: wait for the socket to drain before encoding more.
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      copy.stream.off('error', onError);
      resolve();
    };
    const onError = (e: Error): void => {
      copy.stream.off('drain', onDrain);
      reject(e);
    };
    copy.stream.once('drain', onDrain);
    copy.stream.once('error', onError);
  });
}

/** Reads records into the batch (and the open COPY) until it is full or the input ends. */
async function fill(buf: BatchBuffer, ctx: BatchContext, source: RecordSource, copy: CopyState): Promise<void> {
  while (!buf.complete) {
    if (buf.records >= ctx.batchSize || buf.bytes >= ctx.batchBytes) break;
    const item = await source.peek();
    if (item === undefined) break;
    source.take();
    buf.rowsRead++;
    if ('reject' in item) {
      buf.rejects.push(item.reject);
      continue;
    }
    const record = item.record;
    let lead: string;
    if (buf.format === 'landed') {
      lead = ctx.landedLead;
      buf.lines.push(record.lineNumber);
      buf.latest.observe(record.lastModifiedAt);
      if (record.isDeleted) buf.deletedIds.push(record.id);
    } else {
      lead = `${record.lineNumber}\t`;
    }
    const row = encodeRecord(record, ctx.merge.def, buf.stats, buf.problems, lead);
    buf.records++;
    const n = append(buf, copy, row);
    buf.bytes += typeof n === 'number' ? n : await n;
  }
  buf.complete = true;
  await flush(buf, copy);
}

/**
 * Runs the merge of `records` staged records and adds what it did to the run
 * counters; returns the newest last-modified time staged.
 */
export async function mergeStaged(client: pg.ClientBase, o: MergeOptions, records: number, counts: RunCounts): Promise<Date | null> {
  if (records === 0) return null;
  const { rows } = await client.query<MergeCounts>(mergeSql(o));
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
async function alreadyCommitted(client: pg.PoolClient, ctx: BatchContext): Promise<boolean> {
  const { rowCount } = await client.query(
    `SELECT 1 FROM ${qualify(ctx.merge.schema, '_pgland_run_batches')} WHERE run_id = $1::uuid AND batch_no = $2`,
    [ctx.merge.runId, ctx.batchNo],
  );
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
async function completeLanded(client: pg.PoolClient, o: MergeOptions, buf: BatchBuffer, counts: RunCounts): Promise<Date | string | null> {
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
 * batch after a retryable failure with the same buffer.
 */
export async function runBatch(
  client: pg.PoolClient,
  ctx: BatchContext,
  source: RecordSource,
  buf: BatchBuffer,
  replay: boolean,
): Promise<BatchOutcome | 'already-committed'> {
  const o = ctx.merge;
  let copy: CopyState | undefined;
  if (replay && (await alreadyCommitted(client, ctx))) return 'already-committed';
  const direct = buf.format === 'landed' && !buf.conflicted;
  await client.query('BEGIN');
  try {
    if (!direct) await client.query(createStageSql(o.def, buf.format));
    const copySql = direct ? copyLandedSql(o.schema, o.def) : copyStageSql(o.def, buf.format);
    const state: CopyState = { stream: client.query(copyFrom(copySql)) };
    copy = state;
    state.stream.on('error', (e: Error) => (state.error ??= e));
    for (const chunk of buf.chunks) await write(state, chunk);
    await fill(buf, ctx, source, state);
    if (state.error) throw state.error;
    const finished = once(state.stream, 'finish');
    state.stream.end();
    await finished;
    copy = undefined;

    const counts = zeroCounts();
    let maxLastModified: Date | string | null;
    if (direct) {
      maxLastModified = await completeLanded(client, o, buf, counts);
    } else {
      if (buf.format === 'landed') await client.query(numberLinesSql(), [buf.lines]);
      maxLastModified = await mergeStaged(client, o, buf.records, counts);
    }
    if (buf.rejects.length > 0) await client.query(insertRejectsSql(o.schema, o.runId, buf.rejects));
    if (buf.problems.length > 0) await client.query(insertProblemsSql(o.schema, o.runId, buf.problems));
    counts.batches = 1;
    counts.rowsRead = buf.rowsRead;
    counts.rejected = buf.rejects.length;
    counts.problems += buf.problems.length;
    counts.nulStripped = buf.stats.nulStripped;
    await client.query(addRunCountsSql(o.schema, o.runId, counts, maxLastModified));
    await client.query(
      `INSERT INTO ${qualify(o.schema, '_pgland_run_batches')} (run_id, batch_no, rows_read) VALUES ($1::uuid, $2, $3)`,
      [o.runId, ctx.batchNo, buf.rowsRead],
    );
    await client.query('COMMIT');
    return { counts, maxLastModified };
  } catch (err) {
    if (copy && !copy.error && !copy.stream.destroyed) {
      // CopyFail makes the server abort the COPY; wait until the stream settles
      // so that the connection is in a known state before ROLLBACK. (When the
      // stream itself failed, the server already ended the COPY, or the
      // connection is gone.)
      const settled = once(copy.stream, 'close').catch(() => undefined);
      copy.stream.destroy(err as Error);
      // A connection that died without a word would never close the stream.
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    }
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
