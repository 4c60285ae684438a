import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ObjectDef } from '../catalog/definition.js';
import { copyText, newEncodeStats } from '../encode/copy-text.js';
import { describeError, PglandError } from '../errors.js';
import { checkMatchColumn, type DeleteMode, type MergeOptions, type SqlQuery, type WriteMode } from '../merge/merge.js';
import { PGLAND_VERSION } from '../package.js';
import type { EvolutionReport } from '../schema/apply.js';
import { claimTable, evolveTable, fullRefreshRequired } from '../schema/evolve.js';
import { CancelledError, InputError, type LastBatch } from './copy-writer.js';
import { lineSource } from './record-source.js';
import { finishInLastBatch, finishRun, prepareRun, prepareRunParts, type FinishedRun, type PreparedRun } from './finish.js';
import { landBatches } from './pipeline.js';
import { addCounts, insertRunSql, readRunCounts, zeroCounts, type RunCounts, type RunStart, type RunStatus, type SyncMode } from './runs.js';
import { checkedTable, forgetChecked, rememberChecked, startRunSql, stillUpToDate, type PrepareRunParts } from './checked-tables.js';
import { qualify } from '../sql/ident.js';
import { preparedIf } from '../sql/prepared.js';
import { ObjectLease } from './lease.js';
import { RunSession } from './session.js';

export interface LoadRequest {
  provider: string;
  customerId: string;
  def: ObjectDef;
  mode?: SyncMode;
  /** How records are applied (docs/sync-semantics.md). Default upsert. */
  write?: WriteMode;
  /** update and delete modes match on this column. Default id. */
  matchColumn?: string;
  /** Skip records flagged deleted instead of applying them (Grouparoo's Additive). */
  ignoreDeletes?: boolean;
  /** NDJSON records: a file stream, stdin, an HTTP body. */
  input: AsyncIterable<Buffer | string>;
  /** Called after every committed batch. */
  onProgress?: (counts: RunCounts) => void;
  /** Aborting cancels the run: the batch being read (and one still committing) rolls back, the run is recorded as cancelled. */
  signal?: AbortSignal;
  /** Recorded with the run's options (a protocol stream's key properties, for the next run to compare). */
  runOptions?: Record<string, unknown>;
}

export interface LoadResult {
  runId: string;
  status: RunStatus;
  table: string;
  counts: RunCounts;
  durationMs: number;
  error?: Error;
  /** What schema evolution did before the run, when it changed anything. */
  evolution?: EvolutionReport;
  /** Set when this tenant's next sync of the object must be a full refresh, with why. */
  fullRefreshRequired?: string;
  /**
   * How many batches were COPYed straight into the landed table (a first
   * load: the tenant had no rows yet); the others were staged and merged.
   */
  batchesCopiedDirect: number;
}

export interface LoaderContext {
  pool: pg.Pool;
  schema: string;
  log: Logger;
  batchSize: number;
  batchBytes: number;
  batchRetries: number;
  lockTimeoutMs: number;
  deleteMode: DeleteMode;
  /** Input lines longer than this are rejects, skipped unread (max_record_bytes). */
  maxRecordBytes: number;
}

/**
 * Whether the run can COPY its records straight into the landed table, with
 * no staging table and no merge: the tenant has no row in the table yet (a
 * first load, or a full refresh of a tenant with nothing landed), and every
 * record becomes a new row as it is (upsert or insert, deletions kept as soft
 * deletes). A key met twice in the input fails that batch's COPY, and the
 * batch is replayed through the merge, which picks the newest version. The
 * object's lease keeps other runs from adding rows meanwhile. The COPY runs
 * in the batch's transaction, fenced like a merge; no temporary table.
 * (Whether the tenant has a row is read by prepareRun, finish.ts.)
 */
function firstLoadPossible(o: MergeOptions): boolean {
  return (o.write === 'upsert' || o.write === 'insert') && o.deleteMode === 'soft' && !o.ignoreDeletes && o.matchColumn === 'id';
}

/** The lead of a landed-format row: tenant and run (see stage.ts). */
export function landedLead(o: MergeOptions): string {
  const stats = newEncodeStats();
  return `${copyText(o.provider, stats)}\t${copyText(o.customerId, stats)}\t${o.runId}\t`;
}

function statusOf(err: unknown): RunStatus {
  return err instanceof CancelledError ? 'cancelled' : 'failed';
}

function validate(req: LoadRequest, def: ObjectDef, write: WriteMode, mode: SyncMode): void {
  checkMatchColumn(def, write, req.matchColumn ?? 'id');
  if (mode === 'full' && (write === 'update' || write === 'delete')) {
    throw new PglandError('config_invalid', `a full refresh cannot use write mode ${write}`, {
      hint: 'a full refresh delivers every record: write upsert (or insert)',
    });
  }
  for (const [name, value] of [
    ['provider', req.provider],
    ['customer id', req.customerId],
  ] as const) {
    // They are key columns of every landed row: PostgreSQL text cannot hold NUL.
    if (value.length === 0 || value.includes('\0')) {
      throw new PglandError('config_invalid', `the ${name} must be a non-empty string without NUL characters`);
    }
  }
}

/**
 * Records the run and brings its table to the definition. A table this
 * process found up to date (`checked`) is read by the statement that records
 * the run, and checked only when it reads differently; any other goes
 * through the check under the table's lock (evolve.ts). Answers the table the
 * run lands in: the one it was recorded with, unless the plain name changed
 * hands since (then claimTable decides again, and the run's record follows).
 */
async function recordAndEvolve(
  ctx: LoaderContext,
  client: pg.PoolClient,
  wanted: ObjectDef,
  def: ObjectDef,
  run: RunStart,
  checked: ReturnType<typeof checkedTable>,
  prepare: boolean,
  parts: PrepareRunParts,
): Promise<{ def: ObjectDef; report: EvolutionReport; prepared?: PreparedRun }> {
  const { pool, schema } = ctx;
  // What prepareRun reads is read by the same statement: it holds only while the table needs no change.
  const read = checked ? await startRun(client, startRunSql(schema, run, wanted, def, parts), prepare) : undefined;
  if (!checked) {
    await client.query(insertRunSql(schema, run));
  } else {
    if (!read) await client.query(insertRunSql(schema, run));
    else if (stillUpToDate(checked, read.rows[0]!)) return { def, report: upToDateReport(def), prepared: read.rows[0]! };
    forgetChecked(pool, schema, wanted);
    const claimed = await claimTable(client, schema, wanted);
    if (claimed.table !== def.table) {
      await client.query(`UPDATE ${qualify(schema, '_pgland_runs')} SET table_name = $2 WHERE run_id = $1::uuid`, [run.runId, claimed.table]);
      def = claimed;
    }
  }
  const { report, upToDate } = await evolveTable(client, schema, def, run.runId);
  if (upToDate !== undefined) rememberChecked(pool, schema, wanted, def, upToDate);
  return { def, report };
}

/**
 * The statement that records a run of a remembered table. Undefined when the
 * table or one of pgland's columns is gone (dropped by hand): the statement
 * changed nothing, and the run goes through the whole check.
 */
async function startRun(
  client: pg.PoolClient,
  sql: SqlQuery,
  prepare: boolean,
): Promise<pg.QueryResult<{ shape: string; owner: string | null } & PreparedRun> | undefined> {
  try {
    return await client.query<{ shape: string; owner: string | null } & PreparedRun>(preparedIf(sql, prepare));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === '42P01' /* undefined_table */ || code === '42703' /* undefined_column */) return undefined;
    throw err;
  }
}

/** What evolveTable reports of a table it found up to date. */
function upToDateReport(def: ObjectDef): EvolutionReport {
  return { table: def.table, action: 'none', reasons: [], notRestored: [], fullRefreshReason: null, executed: [], problems: 0 };
}

/** The end of an incremental run in its last batch's transaction (LastBatch), and what it read back. */
interface RunEnding extends LastBatch {
  /** The statement was sent: its COMMIT may have landed even if its answer was lost. */
  sent: boolean;
  finished: FinishedRun | undefined;
}

function endInLastBatch(merge: MergeOptions, lease: ObjectLease, counts: RunCounts): RunEnding {
  const ending: RunEnding = {
    sent: false,
    finished: undefined,
    async finish(client, batch, before) {
      // The batches before this one committed and were counted: the run's status is known.
      const partial = counts.rejected + batch.rejected > 0 || counts.problems + batch.problems > 0;
      ending.sent = true;
      ending.finished = await finishInLastBatch(client, merge, partial ? 'partial' : 'succeeded', lease, before);
    },
  };
  return ending;
}

/**
 * After a last batch whose COMMIT's answer was lost: when the COMMIT landed,
 * the run ended with it, and so did its lease (a replay finds the batch
 * committed, or reconnecting finds the lease gone). Undefined when it did not
 * (the run finishes as usual).
 */
async function endedInLastBatch(client: pg.Pool, o: MergeOptions, lease: ObjectLease): Promise<FinishedRun | undefined> {
  const { rows } = await client.query<{ status: RunStatus }>(`SELECT status FROM ${qualify(o.schema, '_pgland_runs')} WHERE run_id = $1::uuid`, [o.runId]);
  if (rows[0] === undefined || rows[0].status === 'running') return undefined;
  lease.committedRelease();
  const counts = await readRunCounts(client, o.schema, o.runId);
  const refresh = await fullRefreshRequired(client, o.schema, { table: o.def.table, provider: o.provider, customerId: o.customerId });
  return { counts, ...(refresh ? { fullRefreshRequired: refresh } : {}) };
}

/**
 * One sync run: take the object's lease, record the run, make sure the table
 * exists, land the input batch by batch (each batch its own transaction,
 * replayed after a retryable failure), then record the outcome together with a
 * full refresh's deletions and the watermark.
 */
export async function load(ctx: LoaderContext, req: LoadRequest): Promise<LoadResult> {
  const started = Date.now();
  const runId = randomUUID();
  const { schema, pool, log } = ctx;
  // A table this process found up to date is checked again by the statement that records the run (checked-tables.ts).
  const checked = checkedTable(pool, schema, req.def);
  let def = checked?.def ?? (await claimTable(pool, schema, req.def));
  const mode = req.mode ?? 'incremental';
  const write = req.write ?? 'upsert';
  validate(req, def, write, mode);
  const merge: MergeOptions = {
    schema,
    def,
    provider: req.provider,
    customerId: req.customerId,
    runId,
    write,
    deleteMode: ctx.deleteMode,
    ignoreDeletes: req.ignoreDeletes ?? false,
    matchColumn: req.matchColumn ?? 'id',
    trackSeen: mode === 'full',
  };
  const runLog = log.child({ runId, object: def.object, table: def.table });
  const key = { schema, provider: req.provider, customerId: req.customerId, object: def.object };
  // The lease is asked for on the run's own connection, which it records as its holder in the same statement.
  const taken = await ObjectLease.takeOn(pool, await pool.connect(), key, runId, ctx.lockTimeoutMs, runLog);
  const lease = taken.lease;
  const session = new RunSession(pool, lease);
  let client: pg.PoolClient;
  try {
    client = await session.open(taken.client);
  } catch (err) {
    await lease.release();
    throw err;
  }
  let status: RunStatus = 'succeeded';
  let error: Error | undefined;
  let broken = false;
  const counts = zeroCounts();
  let copiedDirect = 0;
  let evolution: EvolutionReport | undefined;
  let ending: RunEnding | undefined;
  try {
    // The run is recorded first: a value the evolution cannot re-land is a problem of this run.
    const run: RunStart = {
      runId,
      provider: req.provider,
      customerId: req.customerId,
      object: def.object,
      objectKind: def.kind,
      table: def.table,
      mode,
      writeMode: write,
      version: PGLAND_VERSION,
      options: { ...req.runOptions, delete_mode: merge.deleteMode, match_column: merge.matchColumn, ignore_deletes: merge.ignoreDeletes },
    };
    const checkLanded = firstLoadPossible(merge);
    const started = await recordAndEvolve(ctx, client, req.def, def, run, checked, lease.direct, (first) => prepareRunParts(merge, checkLanded, first));
    // Another table only when the plain name changed hands since this process last checked (checked-tables.ts).
    def = merge.def = started.def;
    const report = started.report;
    if (report.action !== 'none') {
      evolution = report;
      runLog.info({ action: report.action, reasons: report.reasons, notRestored: report.notRestored }, 'table evolved');
      if (report.problems > 0) {
        counts.problems += report.problems;
        runLog.warn(
          { problems: report.problems },
          `${report.problems} landed values no longer fit their column after the table's ${report.action}: they are NULL now (see ${schema}._pgland_problems, line_number < 0)`,
        );
      }
    }
    const { abandoned, format } = await prepareRun(client, merge, checkLanded, lease.direct, started.prepared);
    if (abandoned) runLog.warn({ abandoned }, 'earlier runs of this object had stopped without finishing');
    runLog.info({ provider: req.provider, customerId: req.customerId, mode, write }, 'run started');

    // Nothing of this tenant is landed: a full refresh has nothing to delete.
    if (format === 'landed') merge.trackSeen = false;
    ending = mode === 'full' ? undefined : endInLastBatch(merge, lease, counts);
    await landBatches({
      pool,
      session,
      lease,
      merge,
      format,
      landedLead: landedLead(merge),
      batchSize: ctx.batchSize,
      batchBytes: ctx.batchBytes,
      batchRetries: ctx.batchRetries,
      source: lineSource(req.input, {
        ...(req.signal ? { signal: req.signal } : {}),
        maxLineBytes: ctx.maxRecordBytes,
        rawMembers: def.columns.some((c) => c.source.from !== 'data'),
      }),
      log: runLog,
      ...(ending ? { lastBatch: ending } : {}),
      committed(outcome, buf) {
        if (outcome === 'already-committed') return;
        addCounts(counts, outcome.counts);
        if (buf.format === 'landed' && !buf.conflicted) copiedDirect++;
        req.onProgress?.(counts);
      },
    });
    if (counts.rejected > 0 || counts.problems > 0) status = 'partial';
  } catch (err) {
    if (ending?.finished) {
      // Thrown after the run ended in its last batch (by onProgress): the run stands as committed.
      const c = ending.finished.counts;
      status = c.rejected > 0 || c.problems > 0 ? 'partial' : 'succeeded';
      runLog.warn({ err: { message: (err as Error).message } }, 'an error after the run ended: the run stands as recorded');
    } else {
      status = statusOf(err);
      error = err instanceof Error ? err : new Error(String(err));
      broken = !(err instanceof InputError || err instanceof CancelledError || err instanceof PglandError);
      runLog.error({ err: { message: error.message, code: (error as PglandError).code } }, `run ${status}`);
    }
  }

  // The outcome is recorded on a healthy connection, fenced by the lease,
  // unless the last batch's transaction recorded it.
  let finished: FinishedRun | undefined = ending?.finished;
  try {
    if (!finished && ending?.sent) {
      // The answer to the last batch's COMMIT was lost: what followed (a
      // replay that found the batch committed, or a lease that is gone) may
      // only say that the run ended with it.
      finished = await endedInLastBatch(pool, merge, lease);
      if (finished) {
        const c = finished.counts;
        status = c.rejected > 0 || c.problems > 0 ? 'partial' : 'succeeded';
        if (error) runLog.info({ err: { message: error.message } }, 'the run had ended with its last batch, whose answer was lost: it stands as recorded');
        error = undefined;
      }
    }
    if (!finished && (broken || !session.client)) {
      await session.close(true);
      await session.open();
    }
    finished ??= await finishRun(session.client!, merge, { full: mode === 'full', status, error: error ? describeError(error) : null }, lease);
  } catch (err) {
    runLog.warn({ err: { message: (err as Error).message } }, 'could not record the run outcome');
    if (!error) {
      status = 'failed';
      error = err as Error;
    }
  }
  let finalCounts = finished?.counts ?? counts;
  let refresh = finished?.fullRefreshRequired;
  if (!finished) {
    try {
      finalCounts = await readRunCounts(session.client ?? pool, schema, runId);
      refresh = await fullRefreshRequired(session.client ?? pool, schema, { table: def.table, provider: req.provider, customerId: req.customerId });
    } catch {
      // keep the in-memory counts
    }
  }
  await session.close(false);
  await lease.release();
  const durationMs = Date.now() - started;
  runLog.info({ status, counts: finalCounts, durationMs }, 'run finished');
  // The values landed changed: say so where a default log level shows it (issue 22).
  if (finalCounts.nulStripped > 0) {
    runLog.warn({ nulStripped: finalCounts.nulStripped }, `${finalCounts.nulStripped} NUL characters were stripped from values: PostgreSQL cannot store them`);
  }
  return {
    runId,
    status,
    table: def.table,
    counts: finalCounts,
    durationMs,
    batchesCopiedDirect: copiedDirect,
    ...(error ? { error } : {}),
    ...(evolution ? { evolution } : {}),
    ...(refresh ? { fullRefreshRequired: refresh } : {}),
  };
}
