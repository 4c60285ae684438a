import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ObjectDef } from '../catalog/definition.js';
import { traitsOf } from '../connection/pool.js';
import { PglandError } from '../errors.js';
import type { DeleteMode, MergeOptions, SqlQuery, WriteMode } from '../merge/merge.js';
import { PGLAND_VERSION } from '../package.js';
import type { EvolutionReport } from '../schema/apply.js';
import { claimTable, evolveInTransaction } from '../schema/evolve.js';
import { qualify } from '../sql/ident.js';
import { begin } from '../sql/transaction.js';
import { copyStageSql, reusableStageSql } from '../stage/stage.js';
import { keepNotes, mergeStaged } from './batch.js';
import { ChunkPool, copyBatch, newBatchBuffer, type BatchBuffer, type RecordSource } from './copy-writer.js';
import { IdSet } from './id-set.js';
import { ObjectLease, takeLeaseInTransaction, type ObjectKey } from './lease.js';
import { lineSource } from './record-source.js';
import { addRunCountsSql, insertRunSql, zeroCounts, type RunCounts, type RunStatus } from './runs.js';

export interface WriteThroughRequest {
  schema: string;
  def: ObjectDef;
  provider: string;
  customerId: string;
  write: WriteMode;
  matchColumn: string;
  ignoreDeletes: boolean;
  deleteMode: DeleteMode;
  /** The records, as NDJSON (one small set: the API bounds it). */
  input: AsyncIterable<Buffer | string>;
}

export interface WriteThroughResult {
  runId: string;
  status: RunStatus;
  table: string;
  counts: RunCounts;
  /** What schema evolution did to the table first (action 'none' when nothing). */
  evolution: EvolutionReport;
}

/**
 * Write-through (docs/service.md): a small set of records for one tenant and
 * object lands at once, so that the landed table reflects a write the
 * platform just made to the provider. In ONE transaction: the object's lease
 * is taken (a running sync of the object goes first), the run is recorded,
 * the records are COPYed with the load path's writer and merged with the
 * batch merge statement (newest wins: an older version changes nothing),
 * rejects and problems are kept, the run is finished and the lease released.
 * It is not a sync: it moves no watermark and deletes nothing beyond the
 * records it carries.
 *
 * Its latency is round trips and commits: the lease is taken and released
 * inside the transaction (lease.ts, takeLeaseInTransaction), so the call
 * commits once; only while another run holds the lease does it wait for it
 * as every run does, and land under that lease.
 */
export async function writeThrough(pool: pg.Pool, lockTimeoutMs: number, req: WriteThroughRequest): Promise<WriteThroughResult> {
  const runId = randomUUID();
  const key: ObjectKey = { schema: req.schema, provider: req.provider, customerId: req.customerId, object: req.def.object };
  const source = lineSource(req.input);
  const chunks = new ChunkPool();
  // Ids told apart up to the most records a write-through may carry (write-through-limits.ts): no sort by id in the merge.
  const buf = newBatchBuffer('stage', chunks, new IdSet(10_000), false);
  const { leaseTtlMs, pooler } = traitsOf(pool);
  const own = { token: runId, ttlMs: leaseTtlMs };
  const prepare = pooler.mode === 'none';
  const landed = await withConnection(pool, async (client) => landOnce(client, req, await mergeOptions(client, req, runId), source, buf, own, prepare));
  if (landed) {
    // Its COPY ended: the chunk is kept for the next call (copy-writer.ts, ChunkPool.retire).
    chunks.release(buf);
    chunks.retire();
    return { runId, ...landed };
  }
  // Another run holds the object: wait for it, without holding a connection meanwhile.
  const lease = await ObjectLease.take(pool, key, runId, lockTimeoutMs);
  try {
    const result = await withConnection(pool, async (client) => {
      await lease.bind(client);
      return landOnce(client, req, await mergeOptions(client, req, runId), source, buf, lease, prepare);
    });
    chunks.release(buf);
    chunks.retire();
    return { runId, ...result! };
  } finally {
    await lease.release();
  }
}

async function mergeOptions(client: pg.PoolClient, req: WriteThroughRequest, runId: string): Promise<MergeOptions> {
  return {
    schema: req.schema,
    def: await claimTable(client, req.schema, req.def),
    provider: req.provider,
    customerId: req.customerId,
    runId,
    write: req.write,
    deleteMode: req.deleteMode,
    ignoreDeletes: req.ignoreDeletes,
    matchColumn: req.matchColumn,
    trackSeen: false,
  };
}

async function withConnection<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    return await fn(client);
  } catch (err) {
    // pgland's own refusals leave the connection sound; anything else may not have.
    broken = !(err instanceof PglandError);
    throw err;
  } finally {
    client.release(broken);
  }
}

type Landed = Omit<WriteThroughResult, 'runId'>;

/**
 * The write-through's transaction. With `own` (a lease to take in it), it
 * answers undefined, having changed nothing, when another run holds the
 * object; with an ObjectLease already held, the transaction ends with its
 * fence.
 */
async function landOnce(
  client: pg.PoolClient,
  req: WriteThroughRequest,
  merge: MergeOptions,
  source: RecordSource,
  buf: BatchBuffer,
  lease: ObjectLease | { token: string; ttlMs: number },
  prepare: boolean,
): Promise<Landed | undefined> {
  const def = merge.def;
  const key: ObjectKey = { schema: req.schema, provider: req.provider, customerId: req.customerId, object: def.object };
  const held = lease instanceof ObjectLease ? lease : undefined;
  const own = lease instanceof ObjectLease ? undefined : lease;
  const counts = zeroCounts();
  await begin(client);
  try {
    if (own && !(await takeLeaseInTransaction(client, key, own.token, own.ttlMs))) {
      await client.query('ROLLBACK');
      return undefined;
    }
    await client.query(
      insertRunSql(req.schema, {
        runId: merge.runId,
        provider: req.provider,
        customerId: req.customerId,
        object: def.object,
        objectKind: def.kind,
        table: def.table,
        mode: 'incremental',
        writeMode: req.write,
        version: PGLAND_VERSION,
        options: { delete_mode: req.deleteMode, match_column: req.matchColumn, ignore_deletes: req.ignoreDeletes, write_through: true },
      }),
    );
    const evolution = await evolveInTransaction(client, req.schema, def, merge.runId);
    const stage = reusableStageSql(def);
    await client.query(stage.text);
    await copyBatch(client, copyStageSql(def, 'stage', stage.table), { merge, batchSize: Infinity, batchBytes: Infinity, landedLead: '' }, source, buf);
    const maxLastModified = await mergeStaged(client, { ...merge, stageTable: stage.table, distinctIds: !buf.repeatedIds }, buf.records, counts, prepare);
    await keepNotes(client, merge, buf, counts);
    const status: RunStatus = counts.rejected > 0 || counts.problems > 0 ? 'partial' : 'succeeded';
    // The counters, the batch, the status and the lease in one statement: a round trip is most of a write-through.
    await client.query(finishWriteThroughSql(req.schema, merge.runId, counts, maxLastModified, status, held ? undefined : key));
    // Last before COMMIT: a lease taken before the transaction must still be this run's (lease.ts).
    if (held) await held.fence(client);
    await client.query('COMMIT');
    return { status, table: def.table, counts, evolution };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * The end of a write-through, one statement: its counters and status, its
 * one batch; with `key`, the lease it took in its transaction is released.
 */
function finishWriteThroughSql(
  schema: string,
  runId: string,
  c: RunCounts,
  maxLastModified: Date | string | null,
  status: RunStatus,
  key: ObjectKey | undefined,
): SqlQuery {
  const counted = addRunCountsSql(schema, runId, c, maxLastModified, status);
  const n = counted.values.length;
  const released = key
    ? `, released AS (DELETE FROM ${qualify(schema, '_pgland_leases')}
        WHERE provider = $${n + 3} AND customer_id = $${n + 4} AND object = $${n + 5} AND token = $1::uuid)`
    : '';
  return {
    text: `WITH counted AS (${counted.text})${released}
      INSERT INTO ${qualify(schema, '_pgland_run_batches')} (run_id, batch_no, rows_read) VALUES ($1::uuid, $${n + 1}, $${n + 2})`,
    values: [...counted.values, 1, c.rowsRead, ...(key ? [key.provider, key.customerId, key.object] : [])],
  };
}
