import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { traitsOf } from '../connection/pool.js';
import { isRetryable } from '../connection/retry.js';
import { describeError, PglandError } from '../errors.js';
import type { MergeOptions } from '../merge/merge.js';
import type { EvolutionReport } from '../schema/apply.js';
import { evolveInTransaction } from '../schema/evolve.js';
import { qualify, quoteIdent } from '../sql/ident.js';
import { begin, inTransaction } from '../sql/transaction.js';
import { copyLandedSql, copyStageSql, createStageSql, STAGE_TABLE } from '../stage/stage.js';
import { completeLanded, keepNotes, mergeStaged } from './batch.js';
import { ChunkPool, copyBatch, newBatchBuffer, type BatchBuffer, type FillContext, type RecordSource } from './copy-writer.js';
import type { Parsed } from '../input/envelope.js';
import { abandonStaleRuns, recordOutcome } from './finish.js';
import { batchOf, stageHeldBatch, type BatchRow, type StagedBatch } from './http-batch.js';
import {
  checkSentBatches,
  dropHeldBatchTables,
  firstLoad,
  landStagedRows,
  mergeOptionsOf,
  recordFailure,
  RunClosedError,
  runRow,
  stagingTables,
  watermarkOf,
  type HttpRun,
  type HttpRunOutcome,
  type SentBatches,
} from './http-run.js';
import { checkHeldBatches, ensureHeldColumns, holderLockSql, markLost } from './held-ledger.js';
import { IdSet } from './id-set.js';
import { ObjectLease } from './lease.js';
import { landedLead } from './loader.js';
import { readAhead } from './read-ahead.js';
import { lineSource, type LineSource } from './record-source.js';
import { addRunCountsSql, insertRunSql, readRunCounts, zeroCounts, type RunCounts, type RunStatus } from './runs.js';

/** How many ids a held first load keeps the hashes of (16 bytes each at most); past them, its batches are merged. */
const RUN_IDS = 2 ** 21;

/**
 * How many ids of one batch a held run tells apart (16 bytes each at most,
 * the table growing as ids come): a batch with no id twice is merged
 * without sorting it by id first (DISTINCT ON), which on batches of 100,000
 * records cost the server about a third of each merge. A batch past this
 * many records is merged with the sort.
 */
const BATCH_IDS = 2 ** 18;

/** Which batches of a held run that merges are staged in tables of their own, their merges overlapped (stageHeld). */
export interface HeldOverlap {
  /**
   * A batch body up to this many bytes is merged before its answer, as a
   * first load's is: for a small batch, a table of its own (created, its
   * init fork synced, dropped) costs more than overlapping its merge saves.
   */
  smallBatchBytes: number;
  /**
   * How many tables a run stages in. The run's transaction keeps a lock on
   * each table it merged from until it ends, and the server's lock table is
   * shared by every session: past this many, the run's batches are merged
   * before their answers.
   */
  maxTables: number;
}

export const HELD_OVERLAP: HeldOverlap = { smallBatchBytes: 1024 * 1024, maxTables: 100 };

/** A batch staged for a held run whose merge failed: the commit fails with it (or, when the failure is transient, the run's batches are lost). */
export class HeldMergeError extends Error {
  constructor(batchNo: number, cause: unknown) {
    super(`batch ${batchNo} was staged but could not be merged in the held run: ${describeError(cause)}`, { cause });
  }
}

/** One part of a batch landed in the run's transaction (a first load's batch may have two: COPYed, then merged). */
interface LandedPart {
  buf: BatchBuffer;
  counts: RunCounts;
  maxLastModified: Date | string | null;
}

/**
 * The input up to the first record whose id the run has landed already (or
 * may have: an id that is not well-formed UTF-16 may land equal to another):
 * a first load's COPY ends there, and the rest goes through the merge.
 */
class UntilRepeat implements RecordSource {
  repeated = false;
  constructor(
    private readonly inner: LineSource,
    private readonly seen: IdSet,
  ) {}

  peek(): Parsed | undefined | Promise<Parsed | undefined> {
    if (this.repeated) return undefined;
    const item = this.inner.peek();
    return item instanceof Promise ? item.then((i) => this.check(i)) : this.check(item);
  }

  private check(item: Parsed | undefined): Parsed | undefined {
    if (item === undefined || 'reject' in item) return item;
    const id = item.record.id;
    if (!id.isWellFormed() || this.seen.addRepeats(id)) {
      this.repeated = true;
      return undefined;
    }
    return item;
  }

  take(): void {
    this.inner.take();
  }

  throwIfCancelled(): void {
    this.inner.throwIfCancelled();
  }
}

/**
 * The run is no longer held by this process (it ended, or was let go): the
 * caller takes the staged path, with `input` when the body was read ahead
 * (it yields the whole body again).
 */
export class RunNotHeldError extends Error {
  constructor(readonly input?: AsyncIterable<Buffer | string>) {
    super('the run is not held by this process');
  }
}

export interface HeldRunContext {
  pool: pg.Pool;
  /** The service's name of the destination, to count the runs held on its pool. */
  destinationId: string;
  /** A held run that gets no batch and no commit for this long is rolled back; its batches are lost. */
  idleMs: number;
  overlap: HeldOverlap;
  log: Logger;
  /** Called once when the run is no longer held (committed, failed, rolled back). */
  onEnd: () => void;
}

/** The advisory lock key lockStage (http-run.ts) takes per transaction, here for the session: batches take turns across processes. */
const stageLockSql = (fn: 'pg_advisory_lock' | 'pg_advisory_unlock', runId: string): { text: string; values: unknown[] } => ({
  text: `SELECT ${fn}(hashtextextended('pgland.stage.' || $1::text, 0))`,
  values: [runId],
});

/**
 * An HTTP run held in ONE open transaction by the serve process its batches
 * reach (docs/service.md, "Ingest: how a run is held"). The process takes
 * the object's lease, evolves the table in a transaction of its own, then
 * opens the run's transaction on a dedicated connection and lands each
 * batch in it with the engine of `pgland load`: a first load COPYs straight
 * into the landed table, any other run COPYs into a temporary staging table
 * and merges per batch. Each batch is a savepoint: one that fails leaves
 * nothing and the run goes on. Nothing is visible to readers until the
 * commit, which lands what other processes staged the old way, records the
 * outcome and COMMITs: every row is written once, and the commit's work is
 * spread over the batches. The ledger (held-ledger.ts) records each held
 * batch as it lands, so that a holder that dies leaves its batches named as
 * lost rather than silently missing.
 */
export class HeldRun {
  private tail: Promise<unknown> = Promise.resolve();
  /** The merges of batches staged in tables of their own, in turn on the run's connection; never rejects. */
  private merges: Promise<void> = Promise.resolve();
  /** Every merge but the last one: the next batch is staged once they are done, beside the last one. */
  private mergesButLast: Promise<void> = Promise.resolve();
  /** The first merge that failed (its batch rolled back to its savepoint): the commit fails with it. */
  private mergeFailure: HeldMergeError | undefined;
  private heldTables = 0;
  private ended = false;
  private idle: NodeJS.Timeout | undefined;
  private readonly chunks = new ChunkPool();
  private readonly ids = new IdSet(BATCH_IDS);
  /** A first load's landed ids, hashed (id-set.ts): up to about two million, then the run merges. */
  private readonly runIds = new IdSet(RUN_IDS, RUN_IDS * 2);
  private readonly lead: string;
  /** The merge of held batches: the temporary staging table, not the run's stage. */
  private readonly heldMerge: MergeOptions;

  private constructor(
    private readonly ctx: HeldRunContext,
    readonly run: HttpRun,
    private readonly o: MergeOptions,
    private readonly lease: ObjectLease,
    private readonly client: pg.PoolClient,
    private readonly token: string,
    /** 'landed' while the run is a first load whose batches met no key twice. */
    private format: 'landed' | 'stage',
    private readonly evolution: EvolutionReport,
  ) {
    this.lead = landedLead(o);
    this.heldMerge = { ...o };
    delete this.heldMerge.stageTable;
    // A connection lost while idle: the run's transaction is gone, its batches with it.
    client.on('error', () => void this.rollback('its connection was lost'));
    this.armIdle();
  }

  /**
   * Holds the run, or answers undefined when it cannot be held here: the
   * destination is reached through a pooler (a session lock and a long
   * transaction need a connection of their own), or another run or
   * write-through holds the object's lease.
   */
  static async start(ctx: HeldRunContext, run: HttpRun): Promise<HeldRun | undefined> {
    if (traitsOf(ctx.pool).pooler.mode !== 'none') return undefined;
    const token = randomUUID();
    const key = { schema: run.schema, provider: run.provider, customerId: run.customerId, object: run.def.object };
    let lease: ObjectLease;
    try {
      lease = await ObjectLease.take(ctx.pool, key, token, 0, ctx.log);
    } catch (err) {
      if (err instanceof PglandError && err.code === 'object_locked') return undefined;
      throw err;
    }
    let client: pg.PoolClient | undefined;
    try {
      client = await ctx.pool.connect();
      if (client.listenerCount('error') === 0) client.on('error', () => undefined);
      // The lease's holder is this connection: once it is gone, the next run takes the lease at once.
      await lease.bind(client);
      await client.query(holderLockSql(token));
      const { rows } = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [stagingTables(run).stage]);
      if (!rows[0]!.ok) throw new RunClosedError(run.runId);
      await ensureHeldColumns(client, run);
      // As `pgland load` does at run start, in a transaction of its own: no
      // ACCESS EXCLUSIVE lock is kept across the run.
      const c = client;
      const evolution = await inTransaction(c, () => evolveInTransaction(c, run.schema, run.def, run.runId));
      await begin(client);
      await client.query(insertRunSql(run.schema, runRow(run)));
      const o = mergeOptionsOf(run);
      await abandonStaleRuns(client, o, run.def.object);
      await client.query(createStageSql(run.def));
      if (evolution.problems > 0) await client.query(addRunCountsSql(run.schema, run.runId, { ...zeroCounts(), problems: evolution.problems }, null));
      const first = await firstLoad(client, o);
      // Nothing of the tenant is landed: a full refresh has nothing to delete.
      if (first) o.trackSeen = false;
      ctx.log.info({ runId: run.runId, firstLoad: first }, 'run held: its batches land in one open transaction');
      return new HeldRun(ctx, run, o, lease, client, token, first ? 'landed' : 'stage', evolution);
    } catch (err) {
      client?.release(true);
      await lease.release();
      throw err;
    }
  }

  get destinationId(): string {
    return this.ctx.destinationId;
  }

  /** One request at a time: batches land in turn, the commit after them. */
  private queued<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(() => {
      if (this.ended) throw new RunNotHeldError();
      return fn();
    });
    this.tail = next.catch(() => undefined);
    return next;
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.rollback('no batch and no commit came within the idle timeout'), this.ctx.idleMs);
    this.idle.unref();
  }

  /** Lands one request's records in the run's transaction (see stageBatch for the answer and a batch number sent again). */
  land(input: AsyncIterable<Buffer | string>, options: { batchNo?: number; maxRecordBytes?: number } = {}): Promise<StagedBatch> {
    return this.queued(async () => {
      if (this.format === 'landed' || this.heldTables >= this.ctx.overlap.maxTables) return this.landNow(input, options);
      await this.mergesButLast;
      if (this.ended) throw new RunNotHeldError();
      const ahead = await readAhead(input, this.ctx.overlap.smallBatchBytes);
      try {
        return await (ahead.whole ? this.landNow(ahead.input, options) : this.stageHeld(ahead.input, options));
      } catch (err) {
        // Thrown before either read the input: the staged path gets it whole.
        if (err instanceof RunNotHeldError) throw new RunNotHeldError(ahead.input);
        throw err;
      }
    });
  }

  /**
   * A batch of a run that merges, overlapped as `pgland load` pipelines its
   * batches (pipeline.ts): staged on a pool connection into a table of its
   * own and committed there (with its ledger row), answered, then merged in
   * the run's transaction while the next batch is staged. One merge at most
   * runs beside a batch being staged: the batch waits for the merges before
   * the last one. A merge that fails is the commit's failure (mergeHeld).
   */
  private async stageHeld(input: AsyncIterable<Buffer | string>, options: { batchNo?: number; maxRecordBytes?: number }): Promise<StagedBatch> {
    clearTimeout(this.idle);
    try {
      await this.mergesButLast;
      if (this.ended) throw new RunNotHeldError();
      const { staged, table, buf } = await stageHeldBatch(this.ctx.pool, this.run, input, options, { token: this.token, chunks: this.chunks, ids: this.ids });
      if (table !== undefined && buf !== undefined) {
        this.heldTables++;
        this.mergesButLast = this.merges;
        this.merges = this.merges.then(() => this.mergeHeld(staged.batchNo, table, buf));
      }
      return staged;
    } finally {
      if (!this.ended) this.armIdle();
    }
  }

  /**
   * Merges a batch staged by stageHeld in the run's transaction, in a
   * savepoint, and records it there as landBatch does. A failure rolls the
   * batch back to its savepoint and is kept for the commit, which fails with
   * it: the batch's answer was given, so the run cannot land without it.
   * The later batches are not merged. When the transaction itself is gone,
   * the run ends and its batches are lost (the commit names them).
   */
  private async mergeHeld(batchNo: number, table: string, buf: BatchBuffer): Promise<void> {
    if (this.ended || this.mergeFailure) return;
    const c = this.client;
    try {
      await this.savepoint('SAVEPOINT pgland_held_batch');
      const counts = zeroCounts();
      const maxLastModified = await mergeStaged(c, { ...this.heldMerge, stageTable: table, distinctIds: !buf.repeatedIds }, buf.records, counts);
      await this.recordParts(batchNo, [{ buf, counts, maxLastModified }]);
      await this.savepoint('RELEASE SAVEPOINT pgland_held_batch');
    } catch (err) {
      if (this.ended) return;
      try {
        await c.query('ROLLBACK TO SAVEPOINT pgland_held_batch');
      } catch {
        await this.end(true);
        return;
      }
      this.mergeFailure = new HeldMergeError(batchNo, err);
      this.ctx.log.warn({ runId: this.run.runId, batchNo, err: { message: (err as Error).message } }, 'a held batch could not be merged: the commit will fail');
    }
  }

  private async landNow(input: AsyncIterable<Buffer | string>, options: { batchNo?: number; maxRecordBytes?: number }): Promise<StagedBatch> {
    clearTimeout(this.idle);
    // The run's connection is free once the batches staged before are merged.
    await this.merges;
    if (this.ended) throw new RunNotHeldError();
    const c = this.client;
    const t = stagingTables(this.run);
    // The ledger's connection is had before the stage's lock is taken: a
    // holder never waits for a pool connection while batches staged
    // elsewhere (each holding a connection of their process) wait for it.
    const ledger = await this.ledgerConnection();
    try {
      await c.query(stageLockSql('pg_advisory_lock', this.run.runId));
    } catch (err) {
      ledger.release();
      await this.end(true);
      throw err;
    }
    try {
      // The ledger is read and written on other connections, in their own
      // transactions: the run's transaction takes no lock on it, so an abort
      // elsewhere can drop it.
      if (!(await ledger.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [t.batches])).rows[0]!.ok) throw new RunClosedError(this.run.runId);
      if (options.batchNo !== undefined) {
        const { rows } = await ledger.query<BatchRow & { lost: boolean }>(`SELECT * FROM ${t.batches} WHERE batch_no = $1`, [options.batchNo]);
        if (rows[0] && !rows[0].lost) return { ...batchOf(rows[0]), alreadyStaged: true };
        if (rows[0]) await ledger.query(`DELETE FROM ${t.batches} WHERE batch_no = $1 AND lost`, [options.batchNo]);
      }
      const { rows } = await ledger.query<{ next_no: number; offset: string }>(
        `SELECT coalesce(max(batch_no), 0) + 1 AS next_no, coalesce(max(first_line + lines), 0) AS offset FROM ${t.batches}`,
      );
      const batchNo = options.batchNo ?? rows[0]!.next_no;
      const offset = Number(rows[0]!.offset);
      await this.savepoint('SAVEPOINT pgland_held_batch');
      try {
        const b = await this.landBatch(input, batchNo, offset, options.maxRecordBytes);
        // Recorded before the savepoint is released: a batch the ledger does not name never lands.
        const inserted = await ledger.query<BatchRow>(
          `INSERT INTO ${t.batches} (batch_no, first_line, lines, rows_read, records, rejected, problems, nul_stripped, held_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::uuid) RETURNING *`,
          [batchNo, offset, b.lines, b.rowsRead, b.records, b.rejected, b.problems, b.nulStripped, this.token],
        );
        await this.savepoint('RELEASE SAVEPOINT pgland_held_batch');
        return { ...batchOf(inserted.rows[0]!), alreadyStaged: false };
      } catch (err) {
        await this.savepoint('ROLLBACK TO SAVEPOINT pgland_held_batch');
        throw err;
      }
    } finally {
      if (!this.ended) {
        await c.query(stageLockSql('pg_advisory_unlock', this.run.runId)).catch(() => undefined);
        this.armIdle();
      }
      ledger.release();
    }
  }

  /** A pool connection for the ledger; a failure of it reaches the query in flight, not an unheard 'error'. */
  private async ledgerConnection(): Promise<pg.PoolClient> {
    const ledger = await this.ctx.pool.connect();
    if (ledger.listenerCount('error') === 0) ledger.on('error', () => undefined);
    return ledger;
  }

  /** A statement on the run's connection that must not fail: when it does, the run's transaction is gone and the run ends (its batches lost). */
  private async savepoint(sql: string): Promise<void> {
    try {
      await this.client.query(sql);
    } catch (err) {
      await this.end(true);
      throw err;
    }
  }

  /**
   * A batch in the run's transaction, as `pgland load` lands one: a first
   * load COPYs straight into the landed table, other runs stage and merge.
   * A first load keeps the hashes of the ids it landed (runIds): its COPY
   * stops before an id already landed (sent twice), and the rest of the
   * batch, from that record on, is staged and merged; so are the run's later
   * batches. The body is read once.
   */
  private async landBatch(
    input: AsyncIterable<Buffer | string>,
    batchNo: number,
    offset: number,
    maxLineBytes: number | undefined,
  ): Promise<{ rowsRead: number; records: number; rejected: number; problems: number; nulStripped: number; lines: number }> {
    const c = this.client;
    const o = this.o;
    const fill: FillContext = { merge: o, batchSize: Infinity, batchBytes: Infinity, landedLead: this.lead };
    const source = lineSource(input, { lineOffset: offset, ...(maxLineBytes === undefined ? {} : { maxLineBytes }) });
    const parts: LandedPart[] = [];
    try {
      if (this.format === 'landed') {
        const buf = newBatchBuffer('landed', this.chunks, this.ids, false);
        const upToRepeat = new UntilRepeat(source, this.runIds);
        try {
          await copyBatch(c, copyLandedSql(o.schema, o.def), fill, upToRepeat, buf);
        } catch (err) {
          // A key landed already that the hashes did not see: the batch fails (the client sends it again) and the run merges from now on.
          if ((err as { code?: unknown }).code === '23505') this.format = 'stage';
          throw err;
        }
        const counts = zeroCounts();
        parts.push({ buf, counts, maxLastModified: await completeLanded(c, o, buf, counts) });
        if (upToRepeat.repeated) {
          this.ctx.log.debug({ runId: o.runId, batchNo }, 'an id of this held first load is already landed: the rest of the run is merged');
          this.format = 'stage';
        }
      }
      if (this.format === 'stage' && (parts.length === 0 || (await source.peek()) !== undefined)) {
        const buf = newBatchBuffer('stage', this.chunks, this.ids, false);
        await copyBatch(c, copyStageSql(o.def, 'stage'), fill, source, buf);
        const counts = zeroCounts();
        parts.push({ buf, counts, maxLastModified: await mergeStaged(c, { ...this.heldMerge, distinctIds: !buf.repeatedIds }, buf.records, counts) });
        await c.query(`TRUNCATE ${quoteIdent(STAGE_TABLE)}`);
      }
      await this.recordParts(batchNo, parts);
      const total = { rowsRead: 0, records: 0, rejected: 0, problems: 0, nulStripped: 0, lines: source.lastLine };
      for (const { buf } of parts) {
        total.rowsRead += buf.rowsRead;
        total.records += buf.records;
        total.rejected += buf.rejects.length;
        total.problems += buf.problems.length;
        total.nulStripped += buf.stats.nulStripped;
      }
      return total;
    } finally {
      for (const part of parts) this.chunks.release(part.buf);
    }
  }

  /** A landed batch's rejects, problems and counters, and the batch itself, recorded in the run's transaction. */
  private async recordParts(batchNo: number, parts: LandedPart[]): Promise<void> {
    const c = this.client;
    const o = this.o;
    let rowsRead = 0;
    for (const [i, part] of parts.entries()) {
      await keepNotes(c, o, part.buf, part.counts);
      if (i > 0) part.counts.batches = 0; // one batch, in two parts
      await c.query(addRunCountsSql(o.schema, o.runId, part.counts, part.maxLastModified));
      rowsRead += part.buf.rowsRead;
    }
    await c.query(`INSERT INTO ${qualify(o.schema, '_pgland_run_batches')} (run_id, batch_no, rows_read) VALUES ($1::uuid, $2, $3)`, [
      o.runId,
      batchNo,
      rowsRead,
    ]);
  }
  /**
   * Commits the run: checks the client's batch list against the ledger (a
   * difference, or batches another holder lost, refuses the commit and the
   * run stays held, so that the corrected upload can still land), lands
   * what other processes staged, records the outcome (a full refresh's
   * deletions only now, the watermark, the status) and COMMITs, the lease's
   * fence last. A failure past the checks ends the run: a transient one
   * leaves its held batches lost (the client sends them again), any other
   * records the run as failed.
   */
  commit(sent: SentBatches | undefined): Promise<HttpRunOutcome> {
    return this.queued(() => this.commitNow(sent));
  }

  private async commitNow(sent: SentBatches | undefined): Promise<HttpRunOutcome> {
    clearTimeout(this.idle);
    // The batches answered before are merged first (one that failed fails the commit, below).
    await this.merges;
    if (this.ended) throw new RunNotHeldError();
    const { pool } = this.ctx;
    const c = this.client;
    const run = this.run;
    const t = stagingTables(run);
    const ledger = await this.ledgerConnection(); // before the stage's lock, as in landNow
    try {
      // Batches staged elsewhere and still in flight finish first.
      await c.query(stageLockSql('pg_advisory_lock', run.runId));
      if (!(await ledger.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [t.batches])).rows[0]!.ok) throw new RunClosedError(run.runId);
      await checkHeldBatches(ledger, run, this.token);
      if (sent !== undefined) {
        const { rows } = await ledger.query<{ batch_no: number }>(`SELECT batch_no FROM ${t.batches} ORDER BY batch_no`);
        checkSentBatches(
          run.runId,
          rows.map((r) => r.batch_no),
          sent,
        );
      }
    } catch (err) {
      ledger.release();
      if (err instanceof RunClosedError || !(err instanceof PglandError)) {
        await this.end(true);
      } else {
        await c.query(stageLockSql('pg_advisory_unlock', run.runId)).catch(() => undefined);
        this.armIdle();
      }
      throw err;
    }
    ledger.release();
    let status: RunStatus;
    let error: string | undefined;
    try {
      status = await this.landAndFinish();
    } catch (err) {
      if (isRetryable(err) || !(err instanceof Error) || (err as { code?: unknown }).code === 'lease_lost') {
        await this.end(true);
        throw err;
      }
      error = describeError(err);
      try {
        await c.query('ROLLBACK');
        await recordFailure(c, run, error, this.lease);
      } catch (failed) {
        await this.end(true);
        throw failed;
      }
      status = 'failed';
    }
    await this.end(false);
    const counts = await readRunCounts(pool, run.schema, run.runId);
    const watermark = await watermarkOf(pool, run);
    return {
      status,
      counts,
      watermark,
      ...(this.evolution.action !== 'none' ? { evolution: this.evolution } : {}),
      ...(error !== undefined ? { error } : {}),
    };
  }

  /** The commit's work in the run's transaction; answers the status it recorded. */
  private async landAndFinish(): Promise<RunStatus> {
    const c = this.client;
    const o = this.o;
    const run = this.run;
    const t = stagingTables(run);
    if (this.mergeFailure) throw this.mergeFailure;
    // Batches staged by other processes: landed as the staged path lands them.
    await landStagedRows(c, run, o, { stagedOnly: true });
    await c.query(`DROP TABLE ${t.stage}, ${t.batches}, ${t.notes}`);
    await dropHeldBatchTables(c, run);
    const merged = await readRunCounts(c, run.schema, run.runId);
    const status: RunStatus = merged.rejected > 0 || merged.problems > 0 ? 'partial' : 'succeeded';
    await recordOutcome(c, o, { full: run.mode === 'full', status, error: null });
    const fence = await this.lease.releasingFenceCte(1);
    const { rows } = await c.query<{ renewed: string }>({ text: `WITH ${fence.text} SELECT count(*) AS renewed FROM fence`, values: fence.values });
    this.lease.fenceHeld(rows[0]!.renewed);
    await c.query('COMMIT');
    this.lease.committedRelease();
    return status;
  }

  /**
   * Rolls the run back (idle timeout, shutdown, abort): its held batches are
   * marked lost in the ledger, and the client sends them again.
   */
  async rollback(reason: string): Promise<void> {
    await this.queued(async () => {
      await this.merges;
      this.ctx.log.warn({ runId: this.run.runId, reason }, 'held run rolled back: its batches are lost until sent again');
      await this.end(true);
    }).catch((err: unknown) => {
      if (!(err instanceof RunNotHeldError)) throw err;
    });
  }

  /** Ends the hold: with `lost`, the transaction is rolled back and its batches marked lost (before the holder's lock goes with the connection). */
  private async end(lost: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idle);
    if (lost) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      await markLost(this.ctx.pool, this.run, this.token).catch((err: unknown) =>
        this.ctx.log.warn(
          { runId: this.run.runId, err: { message: (err as Error).message } },
          'could not mark held batches lost: the next commit finds their holder gone',
        ),
      );
      // The tables its batches were staged in: the run's end drops them otherwise.
      await dropHeldBatchTables(this.ctx.pool, this.run).catch(() => undefined);
    }
    // Destroyed: its session locks (the holder's, the stage's) go with it.
    this.client.release(true);
    await this.lease.release();
    this.ctx.onEnd();
  }
}
