import { once } from 'node:events';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { newEncodeStats, type EncodeStats } from '../encode/copy-text.js';
import { encodeRecord, type Problem } from '../encode/record.js';
import { ROW_SLOW, writeRecordBytes } from '../encode/record-bytes.js';
import { BytesRecord } from '../input/bytes-record.js';
import type { ErrorCode } from '../errors.js';
import type { Parsed, RecordEnvelope, Reject } from '../input/envelope.js';
import type { MergeOptions } from '../merge/merge.js';
import type { RunCounts } from './runs.js';
import type { ObjectDef } from '../catalog/definition.js';
import type { RowFormat } from '../stage/stage.js';
import { IdSet } from './id-set.js';
import type { ObjectLease } from './lease.js';
import { LatestTimestamp } from './latest.js';

/** Records come from the input one at a time; a batch takes what fits. */
export interface RecordSource {
  /**
   * The next parsed line, or undefined at the end of input; a promise of it
   * when the input must be read first. Throws (or rejects with) InputError
   * when the input fails, CancelledError when the run is cancelled.
   *
   * A record is valid until the next line is peeked at: its bytes may be in
   * an input chunk that is then read into again (file-chunks.ts), its scan in
   * arrays the next line's scan reuses (envelope-bytes.ts). Encode it, or copy
   * what is kept of it (texts, numbers), before asking for the next.
   */
  peek(): Parsed | undefined | Promise<Parsed | undefined>;
  /** Consumes the line that peek() returned. */
  take(): void;
  /**
   * Throws CancelledError once the run is cancelled. Called before a batch
   * commits: a batch still merging when the signal comes rolls back.
   */
  throwIfCancelled(): void;
}

/** The input itself failed (a read error, a closed request): never retried. */
export class InputError extends Error {
  readonly code = 'input_failed' satisfies ErrorCode;
}

/** The run was cancelled (SIGTERM, SIGINT, an aborted request). */
export class CancelledError extends Error {
  readonly code = 'cancelled' satisfies ErrorCode;
}

export interface BatchContext {
  merge: MergeOptions;
  batchNo: number;
  batchSize: number;
  batchBytes: number;
  /** For landed-format rows: the tenant and run, encoded, ending in a tab (see stage.ts). */
  landedLead: string;
  /** The object's lease: its fence ends every write transaction of the batch (lease.ts). */
  lease: ObjectLease;
  /** Ends the run in the transaction of the batch that ends the input, when the run allows it (loader.ts). */
  lastBatch?: LastBatch;
}

/**
 * A run's end in its last batch's transaction: one COMMIT for both (a small
 * run's second transaction was a fifth of its round trips, and a commit
 * flushed to disk). finish() runs after the batch's fence, in its
 * transaction, and sends the COMMIT itself.
 */
export interface LastBatch {
  /** `before`: a statement without values that the batch sends ahead of its COMMIT. */
  finish(client: pg.PoolClient, batch: RunCounts, before?: string): Promise<void>;
}

/**
 * What filling a batch needs. A load into the customer's own table
 * (src/into/) stages other rows than a landed object's: it brings its own
 * encoder, which returns '' for a record it rejected (kept in buf.rejects).
 */
export type FillContext = Pick<BatchContext, 'batchSize' | 'batchBytes' | 'landedLead'> &
  ({ merge: Pick<MergeOptions, 'def'>; encodeRow?: undefined; encodeBytes?: undefined } | { encodeRow: RowEncoder; encodeBytes?: BytesRowWriter });

/** A record's row as a string; '' when it is not staged. */
export type RowEncoder = (record: RecordEnvelope, buf: BatchBuffer, lead: string) => string;

/**
 * A record read as bytes written as its row straight into `out` at `at`
 * (record-bytes.ts): the position past the row, ROW_FULL when `out` has no
 * room for it, ROW_SLOW when the row encoder must take the record; nothing
 * written nor counted for either.
 */
export type BytesRowWriter = (record: BytesRecord, buf: BatchBuffer, lead: string, out: Buffer, at: number) => number;

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
  /**
   * For staged rows: the ids seen so far, until one repeats (`repeatedIds`).
   * A batch without repeats skips the merge's sort (merge/fragments.ts).
   */
  ids: IdSet | undefined;
  repeatedIds: boolean;
  /** For landed-format rows: each row's input line, the ids of deleted records, the newest version. */
  lines: number[];
  deletedIds: string[];
  latest: LatestTimestamp;
  /**
   * Whether the batch keeps what it sent, to replay it on a new connection.
   * An HTTP batch is not replayed (its client sends it again), and keeping a
   * body of up to max_batch_bytes would hold it whole in memory.
   */
  replayable: boolean;
  /** COPY data already sent, as UTF-8 bytes (kept for a replay). */
  chunks: Buffer[];
  /** The chunk being filled, and how many of its bytes are used. */
  pending: Buffer;
  /** Where the chunks come from, and go back to when the batch is done. */
  pool: ChunkPool;
  /** The whole buffers behind `chunks` that came from the pool. */
  owned: Buffer[];
  used: number;
  records: number;
  bytes: number;
  rowsRead: number;
  rejects: Reject[];
  problems: Problem[];
  stats: EncodeStats;
  /** The batch is full or the input ended: nothing more to read. */
  complete: boolean;
  /**
   * The input ended while this batch read it: no batch comes after it, and
   * it may end the run in its own transaction (BatchContext.lastBatch).
   */
  endsInput: boolean;
}

/**
 * A batch's buffer; `ids` is shared by the batches of a run, one filling at a
 * time, and cleared here.
 */
export function newBatchBuffer(format: RowFormat = 'stage', pool = new ChunkPool(), ids = new IdSet(0), replayable = true): BatchBuffer {
  if (format === 'stage') ids.clear();
  return {
    format,
    replayable,
    conflicted: false,
    ids: format === 'stage' ? ids : undefined,
    repeatedIds: format !== 'stage',
    lines: [],
    deletedIds: [],
    latest: new LatestTimestamp(),
    chunks: [],
    pending: pool.take(),
    pool,
    owned: [],
    used: 0,
    records: 0,
    bytes: 0,
    rowsRead: 0,
    rejects: [],
    problems: [],
    stats: newEncodeStats(),
    complete: false,
    endsInput: false,
  };
}

/**
 * Rows are written as UTF-8 straight into chunks of this size, which go to the
 * socket whole: no string concatenation, and the bytes kept for a replay are
 * half the size of the strings they came from.
 */
const WRITE_CHUNK = 256 * 1024;

/** Chunks kept between runs (ChunkPool.retire): 4 MB at most. */
const MAX_SPARE_CHUNKS = 16;
const spareChunks: Buffer[] = [];

/**
 * Chunks reused from one batch to the next. A batch's chunks live until it
 * commits (for a replay), long enough to reach V8's old generation, where
 * buffers are freed only by a full collection: allocating new ones for every
 * batch made the loader's memory grow with the garbage not yet collected.
 * Reused, the run holds the chunks of the batches in flight, and no more.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? spareChunks.pop() ?? Buffer.allocUnsafe(WRITE_CHUNK);
  }

  /**
   * At the end of a run: its free chunks are kept for the process's next
   * runs, up to MAX_SPARE_CHUNKS. A run of ten records allocated a chunk of
   * its own, and at hundreds of runs a second those buffers were a quarter of
   * the process's CPU in garbage collection. Only chunks given back by
   * release() are kept: no socket write still reads them.
   */
  retire(): void {
    while (this.free.length > 0 && spareChunks.length < MAX_SPARE_CHUNKS) spareChunks.push(this.free.pop()!);
    this.free.length = 0;
  }

  /** Takes back chunks that never went to a socket (src/into/kept-lines.ts). */
  give(chunks: Buffer[]): void {
    this.free.push(...chunks);
  }

  /**
   * Takes back a batch's chunks once it is committed: the COPY that sent
   * them has ended, so no socket write still reads them.
   */
  release(buf: BatchBuffer): void {
    this.free.push(...buf.owned, buf.pending);
    buf.owned = [];
    buf.chunks = [];
    buf.pending = Buffer.alloc(0);
    buf.used = 0;
  }
}

/**
 * Moves the chunk being filled to the kept chunks and starts a new one;
 * returns it for sending (undefined when it was empty).
 */
function seal(buf: BatchBuffer): Buffer | undefined {
  if (buf.used === 0) return undefined;
  const chunk = buf.pending.subarray(0, buf.used);
  if (buf.replayable) {
    buf.chunks.push(chunk);
    buf.owned.push(buf.pending);
  }
  // Not kept, a chunk may still sit in the socket's queue: it is left to the
  // garbage collector rather than reused.
  buf.pending = buf.pool.take();
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
async function appendAfterFlush(buf: BatchBuffer, copy: CopyState, row: string, full = seal(buf)): Promise<number> {
  let big: Buffer | undefined;
  let n: number;
  if (row.length * 3 <= WRITE_CHUNK) {
    n = buf.pending.write(row, 0, 'utf8');
    buf.used = n;
  } else {
    big = Buffer.from(row, 'utf8');
    if (buf.replayable) buf.chunks.push(big);
    n = big.length;
  }
  if (full) await write(copy, full);
  if (big) await write(copy, big);
  return n;
}

/** How a batch's records become rows: as a string, and (when it can) straight from a record read as bytes. */
interface Encoders {
  row: RowEncoder;
  bytes: BytesRowWriter | undefined;
}

/**
 * Writes a record read as bytes straight into the chunk (`bytes`) and counts
 * it; false when `row` must take it. A row that does not fit the chunk goes
 * into the next one, and only then is the full one sent (as appendAfterFlush
 * does, for a replay): the record is counted as soon as its row is kept.
 */
function appendBytes(buf: BatchBuffer, copy: CopyState, record: BytesRecord, enc: Encoders, lead: string): boolean | Promise<void> {
  const end = enc.bytes!(record, buf, lead, buf.pending, buf.used);
  if (end >= 0) {
    buf.records++;
    buf.bytes += end - buf.used;
    buf.used = end;
    return true;
  }
  if (end === ROW_SLOW || buf.used === 0) return false;
  return appendBytesAfterFlush(buf, copy, record, enc, lead);
}

async function appendBytesAfterFlush(buf: BatchBuffer, copy: CopyState, record: BytesRecord, enc: Encoders, lead: string): Promise<void> {
  const full = seal(buf);
  const end = enc.bytes!(record, buf, lead, buf.pending, 0);
  if (end >= 0) {
    buf.records++;
    buf.bytes += end;
    buf.used = end;
    if (full) await write(copy, full);
    return;
  }
  const row = enc.row(record, buf, lead);
  if (row === '') {
    if (full) await write(copy, full);
    return;
  }
  buf.records++;
  buf.bytes += await appendAfterFlush(buf, copy, row, full);
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

/** A landed object's rows: record.ts's encoder, and record-bytes.ts's for records read as bytes. */
function landedEncoders(def: ObjectDef): Encoders {
  return {
    row: (record, b, lead) => encodeRecord(record, def, b.stats, b.problems, lead),
    bytes: (record, b, lead, out, at) => writeRecordBytes(record, def, b.stats, b.problems, lead, out, at),
  };
}

/** Reads records into the batch (and the open COPY) until it is full or the input ends. */
async function fill(buf: BatchBuffer, ctx: FillContext, source: RecordSource, copy: CopyState): Promise<void> {
  const enc: Encoders = ctx.encodeRow ? { row: ctx.encodeRow, bytes: ctx.encodeBytes } : landedEncoders(ctx.merge.def);
  while (!buf.complete) {
    if (buf.records >= ctx.batchSize || buf.bytes >= ctx.batchBytes) break;
    // Awaited only when the input must be read: a promise per record cost more than encoding it.
    let item = source.peek();
    if (item instanceof Promise) item = await item;
    if (item === undefined) {
      buf.endsInput = true;
      break;
    }
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
      if (buf.ids) {
        // Ids that are not well-formed UTF-16 land with U+FFFD in place of a
        // lone surrogate: two of them may land equal, so they count as repeats.
        if (!record.id.isWellFormed() || buf.ids.addRepeats(record.id)) {
          buf.repeatedIds = true;
          buf.ids = undefined;
        }
      }
    }
    if (record instanceof BytesRecord && enc.bytes) {
      const done = appendBytes(buf, copy, record, enc, lead);
      if (done instanceof Promise) await done;
      if (done !== false) continue;
    }
    const row = enc.row(record, buf, lead);
    if (row === '') continue;
    buf.records++;
    const n = append(buf, copy, row);
    buf.bytes += typeof n === 'number' ? n : await n;
  }
  buf.complete = true;
  buf.ids = undefined; // the answer is in repeatedIds
  await flush(buf, copy);
}

/**
 * Reads and encodes a whole batch before its COPY opens; the rows are kept in
 * the buffer as for a replay, and copyBatch sends them. A load into an own
 * table (src/into/run.ts) reads the next batch so while the server merges
 * the previous one.
 */
export async function readAhead(buf: BatchBuffer, ctx: FillContext, source: RecordSource): Promise<void> {
  const kept = { stream: { write: () => true } } as unknown as CopyState;
  await fill(buf, ctx, source, kept);
}

/**
 * One COPY of a batch: the rows it already sent (a replay), then what the
 * source gives until the batch is full, then the end of the COPY. When
 * anything fails (the input, the connection, the server) the COPY stream is
 * destroyed, so that the server aborts the COPY, and the error is thrown; the
 * caller rolls back. `filled` is called once the batch has taken its last
 * record from the source, before the server has answered the COPY: the next
 * batch may read the source from then on (pipeline.ts, first loads).
 */
export async function copyBatch(
  client: pg.PoolClient,
  sql: string,
  ctx: FillContext,
  source: RecordSource,
  buf: BatchBuffer,
  filled?: () => void,
): Promise<void> {
  const state: CopyState = { stream: client.query(copyFrom(sql)) };
  state.stream.on('error', (e: Error) => (state.error ??= e));
  try {
    for (const chunk of buf.chunks) await write(state, chunk);
    await fill(buf, ctx, source, state);
    if (state.error) throw state.error;
    filled?.();
    const finished = once(state.stream, 'finish');
    state.stream.end();
    await finished;
  } catch (err) {
    if (!state.error && !state.stream.destroyed) {
      // CopyFail makes the server abort the COPY; wait until the stream settles
      // so that the connection is in a known state before ROLLBACK. (When the
      // stream itself failed, the server already ended the COPY, or the
      // connection is gone.)
      const settled = once(state.stream, 'close').catch(() => undefined);
      state.stream.destroy(err as Error);
      // A connection that died without a word would never close the stream.
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    }
    throw err;
  }
}
