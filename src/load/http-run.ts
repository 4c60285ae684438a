import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { isRetryable } from '../connection/retry.js';
import { describeError, PglandError } from '../errors.js';
import { insertFromSrc } from '../merge/fragments.js';
import type { DeleteMode, MergeOptions, WriteMode } from '../merge/merge.js';
import { PGLAND_VERSION } from '../package.js';
import { qualify, quoteIdent } from '../sql/ident.js';
import { createStageSql, STAGE_TABLE } from '../stage/stage.js';
import { mergeStaged } from './batch.js';
import { abandonStaleRuns, finishRun, recordOutcome } from './finish.js';
import { ObjectLease, type ObjectKey } from './lease.js';
import type { EvolutionReport } from '../schema/apply.js';
import { evolveInTransaction } from '../schema/evolve.js';
import { addRunCountsSql, finishRunSql, insertRunSql, readRunCounts, zeroCounts, type RunCounts, type RunStatus, type SyncMode } from './runs.js';
import { inTransaction } from '../sql/transaction.js';

/**
 * An HTTP run (docs/service.md, "Ingest"): a run whose records arrive in several requests (service
 * mode) and land only when it is committed. Each request's records are COPYed
 * into the run's own staging table (an UNLOGGED table in the destination
 * schema, the same columns as the per-batch temp table); nothing touches the
 * landed table until commit, which merges the whole run in ONE transaction
 * with the same merge statement as a batch, then records the outcome (a full
 * refresh's deletions, the watermark) as every run does. Abort drops the
 * staging tables: an aborted run changes nothing that readers see.
 *
 * Line numbers continue from one request to the next (as if the bodies were
 * one file), so "on equal timestamps the later line wins" holds across them.
 */
export interface HttpRun {
  runId: string;
  schema: string;
  def: ObjectDef;
  provider: string;
  customerId: string;
  mode: SyncMode;
  write: WriteMode;
  matchColumn: string;
  ignoreDeletes: boolean;
  deleteMode: DeleteMode;
}

/** The three tables an HTTP run stages into, quoted and qualified. */
export function stagingTables(run: Pick<HttpRun, 'schema' | 'runId'>): { stage: string; batches: string; notes: string; stageName: string } {
  const base = `_pgland_stage_${run.runId.replace(/-/g, '')}`;
  return {
    stageName: base,
    stage: qualify(run.schema, base),
    batches: qualify(run.schema, `${base}_batches`),
    notes: qualify(run.schema, `${base}_notes`),
  };
}

/**
 * The table a held run stages batch `batchNo` in (held-run.ts): an unlogged
 * table of the destination schema, filled and committed on another
 * connection, then merged in the run's open transaction.
 */
export function heldBatchTable(run: Pick<HttpRun, 'schema' | 'runId'>, batchNo: number): string {
  return qualify(run.schema, `${stagingTables(run).stageName}_h${batchNo}`);
}

/**
 * Drops the run's held batch tables, in the caller's transaction: at its
 * end (commit, failure, abort), those of its holders, the one committing
 * and any that died before dropping theirs.
 */
export async function dropHeldBatchTables(client: pg.Pool | pg.ClientBase, run: Pick<HttpRun, 'schema' | 'runId'>): Promise<void> {
  const pattern = `${stagingTables(run).stageName.replace(/_/g, '\\_')}\\_h%`;
  const { rows } = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname LIKE $2`,
    [run.schema, pattern],
  );
  if (rows.length > 0) await client.query(`DROP TABLE IF EXISTS ${rows.map((r) => qualify(run.schema, r.relname)).join(', ')}`);
}

export function mergeOptionsOf(run: HttpRun): MergeOptions {
  return {
    schema: run.schema,
    def: run.def,
    provider: run.provider,
    customerId: run.customerId,
    runId: run.runId,
    write: run.write,
    deleteMode: run.deleteMode,
    ignoreDeletes: run.ignoreDeletes,
    matchColumn: run.matchColumn,
    trackSeen: run.mode === 'full',
    stageTable: stagingTables(run).stage,
  };
}

/** The run is no longer open for batches: committed, aborted, or never staged. */
export class RunClosedError extends PglandError {
  constructor(runId: string) {
    super('run_closed', `run ${runId} is not open: it was committed or aborted`, { hint: 'open a new run', context: { runId } });
  }
}

/**
 * What the client says it sent: how many batches (numbered 1 to N, as POST
 * numbers them), or their numbers (as it gave them to PUT).
 */
export type SentBatches = number | number[];

/** The commit names other batches than were staged: nothing is decided, the run stays open. */
export class BatchesDifferError extends PglandError {
  constructor(runId: string, missing: number[], unexpected: number[]) {
    const list = (ns: number[]): string => (ns.length > 10 ? `${ns.slice(0, 10).join(', ')} … (${ns.length})` : ns.join(', '));
    const parts = [
      ...(missing.length
        ? [`batch${missing.length > 1 ? 'es' : ''} ${list(missing)} named by the commit ${missing.length > 1 ? 'were' : 'was'} not staged`]
        : []),
      ...(unexpected.length ? [`batch${unexpected.length > 1 ? 'es' : ''} ${list(unexpected)} staged but not named by the commit`] : []),
    ];
    super('batches_differ', `run ${runId} was not committed: ${parts.join('; ')}`, {
      hint: 'stage the missing batches (PUT /runs/{id}/batches/{n}) and commit again, or abort the run; nothing of it landed',
      context: { runId, missing, unexpected },
    });
  }
}

/** Throws BatchesDifferError unless the staged batch numbers are exactly the ones the client sent. */
export function checkSentBatches(runId: string, staged: number[], sent: SentBatches): void {
  const expected = new Set(typeof sent === 'number' ? Array.from({ length: sent }, (_, i) => i + 1) : sent);
  const have = new Set(staged);
  const missing = [...expected].filter((n) => !have.has(n)).sort((a, b) => a - b);
  const unexpected = staged.filter((n) => !expected.has(n));
  if (missing.length + unexpected.length > 0) throw new BatchesDifferError(runId, missing, unexpected);
}

/** Serialises the requests of one run: batches take turns, commit and abort wait for the batch in flight. */
export async function lockStage(client: pg.PoolClient, runId: string): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('pgland.stage.' || $1::text, 0))`, [runId]);
}

export async function staged(client: pg.PoolClient, run: HttpRun): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [stagingTables(run).stage]);
  return rows[0]!.ok;
}

/**
 * Creates the run's staging tables. The stage is created LIKE the per-batch
 * temp table, so both always have the same columns in the order encodeRecord
 * writes them.
 */
export async function openHttpRun(pool: pg.Pool, run: HttpRun): Promise<void> {
  const t = stagingTables(run);
  const client = await pool.connect();
  try {
    // The temporary table only lends its columns, within this transaction (ON COMMIT DROP).
    await inTransaction(client, async () => {
      await client.query(createStageSql(run.def));
      await client.query(`CREATE UNLOGGED TABLE ${t.stage} (LIKE pg_temp.${quoteIdent(STAGE_TABLE)})`);
      // The ledger and the notes are logged tables: after a server crash empties
      // the unlogged stage, the ledger still says what was staged, and the
      // commit refuses to land a run that lost records.
      await client.query(`CREATE TABLE ${t.batches} (
        batch_no      integer PRIMARY KEY,
        first_line    bigint NOT NULL,   -- line numbers before this batch's
        lines         bigint NOT NULL,
        rows_read     bigint NOT NULL,
        records       bigint NOT NULL,
        rejected      bigint NOT NULL,
        problems      bigint NOT NULL,
        nul_stripped  bigint NOT NULL,
        received_at   timestamptz NOT NULL DEFAULT now(),
        held_by       uuid,              -- landed in this holder's open transaction (held-ledger.ts)
        lost          boolean NOT NULL DEFAULT false)`);
      await client.query(`CREATE TABLE ${t.notes} (
        kind           text NOT NULL CHECK (kind IN ('reject', 'problem')),
        line_number    bigint NOT NULL,
        record_id      text,
        field          text,
        column_name    text,
        reason         text NOT NULL,
        value_excerpt  text,
        raw_text       text)`);
    });
  } finally {
    client.release();
  }
}

export interface HttpRunOutcome {
  status: RunStatus;
  counts: RunCounts;
  /** The tenant's object's watermark after the run (moved only by a completed run). */
  watermark: Date | null;
  error?: string;
  /** What schema evolution did at commit, when it changed anything. */
  evolution?: EvolutionReport;
}

export async function runStatus(client: pg.PoolClient, run: HttpRun): Promise<RunStatus | undefined> {
  const { rows } = await client.query<{ status: RunStatus }>(`SELECT status FROM ${qualify(run.schema, '_pgland_runs')} WHERE run_id = $1::uuid`, [run.runId]);
  return rows[0]?.status;
}

export async function watermarkOf(client: pg.Pool | pg.ClientBase, run: HttpRun): Promise<Date | null> {
  const { rows } = await client.query<{ high_water_mark: Date }>(
    `SELECT high_water_mark FROM ${qualify(run.schema, '_pgland_watermarks')} WHERE provider = $1 AND customer_id = $2 AND object = $3`,
    [run.provider, run.customerId, run.def.object],
  );
  return rows[0]?.high_water_mark ?? null;
}

export function runRow(run: HttpRun): Parameters<typeof insertRunSql>[1] {
  return {
    runId: run.runId,
    provider: run.provider,
    customerId: run.customerId,
    object: run.def.object,
    objectKind: run.def.kind,
    table: run.def.table,
    mode: run.mode,
    writeMode: run.write,
    version: PGLAND_VERSION,
    options: { delete_mode: run.deleteMode, match_column: run.matchColumn, ignore_deletes: run.ignoreDeletes, deferred: true },
  };
}

/**
 * Whether the run can land its stage with a plain INSERT, as `pgland load`
 * COPYs a first load straight into the table (loader.ts): every record
 * becomes a new row as it is (upsert or insert, deletions kept as soft
 * deletes) and the tenant has no row in the table yet. Asked under the
 * object's lease, in the commit's transaction.
 */
export async function firstLoad(client: pg.PoolClient, o: MergeOptions): Promise<boolean> {
  const everyRecordInserted = (o.write === 'upsert' || o.write === 'insert') && o.deleteMode === 'soft' && !o.ignoreDeletes && o.matchColumn === 'id';
  if (!everyRecordInserted) return false;
  const { rowCount } = await client.query(
    `SELECT 1 FROM ${qualify(o.schema, o.def.table)} WHERE ${quoteIdent(P.provider)} = $1 AND ${quoteIdent(P.customerId)} = $2 LIMIT 1`,
    [o.provider, o.customerId],
  );
  return rowCount === 0;
}

/**
 * A first load's stage INSERTed as it is, with no sort and no lookup, in a
 * savepoint: a key staged twice fails it on the primary key (as a first
 * load's COPY fails in `pgland load`), and the stage then goes through the
 * merge, which keeps the newest version. Undefined when it did.
 */
async function insertStage(client: pg.PoolClient, o: MergeOptions, counts: RunCounts): Promise<{ maxLastModified: Date | null } | undefined> {
  await client.query('SAVEPOINT pgland_first_load');
  try {
    const { rows } = await client.query<{ inserted: string; max_lm: Date | null }>({
      text: `WITH landed AS (${insertFromSrc(o, 'true', o.stageTable)} RETURNING ${quoteIdent(P.lastModifiedAt)} AS lm)
        SELECT count(*) AS inserted, max(lm) AS max_lm FROM landed`,
      values: [o.provider, o.customerId, o.runId],
    });
    await client.query('RELEASE SAVEPOINT pgland_first_load');
    counts.inserted += Number(rows[0]!.inserted);
    return { maxLastModified: rows[0]!.max_lm };
  } catch (err) {
    if ((err as { code?: unknown }).code !== '23505') throw err;
    await client.query('ROLLBACK TO SAVEPOINT pgland_first_load');
    return undefined;
  }
}

/**
 * Whether no id was staged twice. The merge then reads the stage as it is,
 * without its "one version per key" sort of every staged row (a million rows
 * of 700 bytes, on disk); counting distinct ids sorts the ids alone.
 */
export async function stagedOnce(client: pg.PoolClient, stage: string): Promise<boolean> {
  const { rows } = await client.query<{ once: boolean }>(`SELECT count(*) = count(DISTINCT "id") AS once FROM ${stage}`);
  return rows[0]!.once;
}

/**
 * Lands what the run's stage holds, in the caller's transaction: checks that
 * the stage still holds every record the ledger says was staged (a server
 * restart empties unlogged tables), lands them (with `firstLoad`, INSERTed as
 * they are when the tenant has no rows, otherwise merged with the batch
 * merge statement), records their rejects, problems, counters and batches.
 * With `stagedOnly`, the ledger's batches landed elsewhere (held-run.ts) are
 * left out. Answers whether the stage was INSERTed as it is.
 */
export async function landStagedRows(
  client: pg.PoolClient,
  run: HttpRun,
  o: MergeOptions,
  options: { firstLoad?: boolean; stagedOnly?: boolean },
): Promise<{ direct: boolean }> {
  const t = stagingTables(run);
  const where = options.stagedOnly ? 'WHERE held_by IS NULL' : '';
  const totals = (
    await client.query<{ batches: string; rows_read: string; records: string; nul: string; in_stage: string }>(
      `SELECT count(*) AS batches, coalesce(sum(rows_read), 0) AS rows_read, coalesce(sum(records), 0) AS records,
              coalesce(sum(nul_stripped), 0) AS nul, (SELECT count(*) FROM ${t.stage}) AS in_stage FROM ${t.batches} ${where}`,
    )
  ).rows[0]!;
  const counts = zeroCounts();
  counts.batches = Number(totals.batches);
  counts.rowsRead = Number(totals.rows_read);
  counts.nulStripped = Number(totals.nul);
  const records = Number(totals.records);
  if (Number(totals.in_stage) !== records) {
    throw new PglandError(
      'stage_lost',
      `run ${run.runId} staged ${records} records but ${totals.in_stage} are left (the destination server restarted, which empties unlogged tables)`,
      {
        hint: 'nothing of the run landed: open a new run and send its batches again',
        context: { runId: run.runId },
      },
    );
  }
  let maxLastModified: Date | null;
  const direct = options.firstLoad && records > 0 && (await firstLoad(client, o)) ? await insertStage(client, o, counts) : undefined;
  if (direct) {
    maxLastModified = direct.maxLastModified;
  } else {
    maxLastModified = await mergeStaged(client, { ...o, distinctIds: o.matchColumn === 'id' && (await stagedOnce(client, t.stage)) }, records, counts);
  }
  const rejected = await client.query(
    `INSERT INTO ${qualify(run.schema, '_pgland_rejects')} (run_id, line_number, record_id, reason, raw_text)
     SELECT $1::uuid, line_number, record_id, reason, raw_text FROM ${t.notes} WHERE kind = 'reject'`,
    [run.runId],
  );
  const problems = await client.query(
    `INSERT INTO ${qualify(run.schema, '_pgland_problems')} (run_id, line_number, record_id, field, column_name, reason, value_excerpt)
     SELECT $1::uuid, line_number, record_id, field, column_name, reason, value_excerpt FROM ${t.notes} WHERE kind = 'problem'`,
    [run.runId],
  );
  counts.rejected = rejected.rowCount ?? 0;
  counts.problems += problems.rowCount ?? 0;
  await client.query(addRunCountsSql(run.schema, run.runId, counts, maxLastModified));
  await client.query(
    `INSERT INTO ${qualify(run.schema, '_pgland_run_batches')} (run_id, batch_no, rows_read)
     SELECT $1::uuid, batch_no, rows_read FROM ${t.batches} ${where}`,
    [run.runId],
  );
  return { direct: direct !== undefined };
}

/**
 * The commit: under the object's lease, in ONE transaction, the run is
 * recorded, the landed table evolved (a value it cannot re-land is a problem
 * of the run), the whole stage landed (a first load INSERTed as it is,
 * otherwise merged with the batch merge statement), its rejects, problems,
 * counters and batches recorded, the staging tables dropped, and the outcome
 * recorded as every run's is (a full refresh's deletions, the watermark, the
 * status); the lease's fence ends it. Readers see all of the run or none of
 * it. Returns what the evolution did, and the status.
 */
async function landStage(
  client: pg.PoolClient,
  run: HttpRun,
  lease: ObjectLease,
  sent: SentBatches | undefined,
): Promise<{ evolution: EvolutionReport; status: RunStatus }> {
  const t = stagingTables(run);
  const o = mergeOptionsOf(run);
  return inTransaction(client, async () => {
    await lockStage(client, run.runId);
    if (!(await staged(client, run))) throw new RunClosedError(run.runId);
    if (sent !== undefined) {
      const { rows } = await client.query<{ batch_no: number }>(`SELECT batch_no FROM ${t.batches} ORDER BY batch_no`);
      checkSentBatches(
        run.runId,
        rows.map((r) => r.batch_no),
        sent,
      );
    }
    await client.query(insertRunSql(run.schema, runRow(run)));
    const evolution = await evolveInTransaction(client, run.schema, run.def, run.runId);
    await abandonStaleRuns(client, o, run.def.object);
    const { direct } = await landStagedRows(client, run, o, { firstLoad: true });
    // Nothing of the tenant was landed: a full refresh has nothing to delete.
    if (direct) o.trackSeen = false;
    await client.query(`DROP TABLE ${t.stage}, ${t.batches}, ${t.notes}`);
    await dropHeldBatchTables(client, run);
    const merged = await readRunCounts(client, run.schema, run.runId);
    const status: RunStatus = merged.rejected > 0 || merged.problems > 0 ? 'partial' : 'succeeded';
    await recordOutcome(client, o, { full: run.mode === 'full', status, error: null });
    await lease.fence(client);
    return { evolution, status };
  });
}

/** A commit that failed for good: the run is recorded as failed and its stage dropped; nothing landed. */
export async function recordFailure(client: pg.PoolClient, run: HttpRun, error: string, lease: ObjectLease): Promise<void> {
  const t = stagingTables(run);
  await inTransaction(client, async () => {
    await lockStage(client, run.runId);
    if ((await runStatus(client, run)) === undefined) await client.query(insertRunSql(run.schema, runRow(run)));
    await client.query(`DROP TABLE IF EXISTS ${t.stage}, ${t.batches}, ${t.notes}`);
    await dropHeldBatchTables(client, run);
    await client.query(`DELETE FROM ${qualify(run.schema, '_pgland_full_refresh_seen')} WHERE run_id = $1::uuid`, [run.runId]);
    await client.query(finishRunSql(run.schema, run.runId, 'failed', error));
    await lease.fence(client);
  });
}

/**
 * Commits an HTTP run: takes the object's lease (waiting up to
 * lockTimeoutMs, then object_locked), checks that the batches staged are the
 * ones the client sent (`sent`, when given: a batch lost on the way must not
 * let a full refresh delete its records), merges the stage in one transaction,
 * then records the outcome with finishRun: a full refresh's deletions, the
 * watermark, the status. Safe to call again after a lost answer or a crash:
 * a run already merged is only finished, a finished one only reported.
 * Transient failures (a lost connection) are thrown and leave the run
 * committable; any other failure records the run as failed.
 */
export async function commitHttpRun(ctx: { pool: pg.Pool; lockTimeoutMs: number }, run: HttpRun, sent?: SentBatches): Promise<HttpRunOutcome> {
  const key: ObjectKey = { schema: run.schema, provider: run.provider, customerId: run.customerId, object: run.def.object };
  // A lease has one holder: a commit sent again while the first is still merging waits for it.
  const lease = await ObjectLease.take(ctx.pool, key, randomUUID(), ctx.lockTimeoutMs);
  const client = await ctx.pool.connect().catch(async (err: unknown) => {
    await lease.release();
    throw err;
  });
  if (client.listenerCount('error') === 0) client.on('error', () => undefined);
  let broken = false;
  try {
    await lease.bind(client);
    let status = await runStatus(client, run);
    let error: string | undefined;
    let evolution: EvolutionReport | undefined;
    if (status === undefined) {
      try {
        const landed = await landStage(client, run, lease, sent);
        if (landed.evolution.action !== 'none') evolution = landed.evolution;
        status = landed.status;
      } catch (err) {
        if (isRetryable(err) || err instanceof RunClosedError || err instanceof BatchesDifferError) throw err;
        error = describeError(err);
        await recordFailure(client, run, error, lease);
        status = 'failed';
      }
    }
    if (status === 'running') {
      // Merged by an earlier version of pgland, which finished in a transaction of its own.
      const merged = await readRunCounts(client, run.schema, run.runId);
      const outcome: RunStatus = merged.rejected > 0 || merged.problems > 0 ? 'partial' : 'succeeded';
      await finishRun(client, mergeOptionsOf(run), { full: run.mode === 'full', status: outcome, error: null }, lease);
      status = outcome;
    }
    const counts = await readRunCounts(client, run.schema, run.runId);
    if (status === 'failed' && error === undefined) {
      const { rows } = await client.query<{ error: string | null }>(`SELECT error FROM ${qualify(run.schema, '_pgland_runs')} WHERE run_id = $1::uuid`, [
        run.runId,
      ]);
      error = rows[0]?.error ?? undefined;
    }
    const watermark = await watermarkOf(client, run);
    return { status: status!, counts, watermark, ...(evolution ? { evolution } : {}), ...(error !== undefined ? { error } : {}) };
  } catch (err) {
    broken = !(err instanceof PglandError);
    throw err;
  } finally {
    // A connection whose state is in doubt is destroyed.
    client.release(broken);
    await lease.release();
  }
}

/**
 * Aborts an HTTP run: drops its staging tables and records it as
 * cancelled with what it had read. The landed table, the watermark and the
 * full-refresh bookkeeping are not touched.
 */
export async function abortHttpRun(pool: pg.Pool, run: HttpRun): Promise<RunCounts> {
  const t = stagingTables(run);
  const client = await pool.connect();
  try {
    return await inTransaction(client, async () => {
      await lockStage(client, run.runId);
      const counts = zeroCounts();
      if (await staged(client, run)) {
        const { rows } = await client.query<{ batches: string; rows_read: string }>(
          `SELECT count(*) AS batches, coalesce(sum(rows_read), 0) AS rows_read FROM ${t.batches}`,
        );
        counts.batches = Number(rows[0]!.batches);
        counts.rowsRead = Number(rows[0]!.rows_read);
      }
      await client.query(`DROP TABLE IF EXISTS ${t.stage}, ${t.batches}, ${t.notes}`);
      await dropHeldBatchTables(client, run);
      if ((await runStatus(client, run)) === undefined) {
        await client.query(insertRunSql(run.schema, runRow(run)));
        await client.query(addRunCountsSql(run.schema, run.runId, counts, null));
        await client.query(finishRunSql(run.schema, run.runId, 'cancelled', 'aborted before commit: nothing of it landed'));
      }
      return counts;
    });
  } finally {
    client.release();
  }
}
