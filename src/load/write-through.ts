import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ObjectDef } from '../catalog/definition.js';
import { PglandError } from '../errors.js';
import type { DeleteMode, MergeOptions, WriteMode } from '../merge/merge.js';
import { PGLAND_VERSION } from '../package.js';
import type { EvolutionReport } from '../schema/apply.js';
import { claimTable, evolveInTransaction } from '../schema/evolve.js';
import { inTransaction } from '../sql/transaction.js';
import { copyStageSql, createStageSql } from '../stage/stage.js';
import { mergeStaged, recordBatch } from './batch.js';
import { ChunkPool, copyBatch, newBatchBuffer, type BatchContext } from './copy-writer.js';
import { IdSet } from './id-set.js';
import { ObjectLease, type ObjectKey } from './lease.js';
import { lineSource } from './record-source.js';
import { finishRunSql, insertRunSql, zeroCounts, type RunCounts, type RunStatus } from './runs.js';

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
 * platform just made to the provider. Under the object's lease (a running
 * sync of the object goes first), in ONE transaction: the run is recorded,
 * the records are COPYed with the load path's writer and merged with the
 * batch merge statement (newest wins: an older version changes nothing),
 * rejects and problems are kept, the run is finished. It is not a sync: it
 * moves no watermark and deletes nothing beyond the records it carries.
 */
export async function writeThrough(pool: pg.Pool, lockTimeoutMs: number, req: WriteThroughRequest): Promise<WriteThroughResult> {
  const runId = randomUUID();
  const key: ObjectKey = { schema: req.schema, provider: req.provider, customerId: req.customerId, object: req.def.object };
  // The object's lease, as every run takes it: a running sync of the object goes first.
  const lease = await ObjectLease.take(pool, key, runId, lockTimeoutMs);
  const client = await pool.connect().catch(async (err: unknown) => {
    await lease.release();
    throw err;
  });
  let broken = false;
  try {
    await lease.bind(client);
    const def = await claimTable(client, req.schema, req.def);
    const merge: MergeOptions = {
      schema: req.schema,
      def,
      provider: req.provider,
      customerId: req.customerId,
      runId,
      write: req.write,
      deleteMode: req.deleteMode,
      ignoreDeletes: req.ignoreDeletes,
      matchColumn: req.matchColumn,
      trackSeen: false,
    };
    const ctx: BatchContext = { merge, batchNo: 1, batchSize: Infinity, batchBytes: Infinity, landedLead: '', lease };
    const buf = newBatchBuffer('stage', new ChunkPool(), new IdSet(0), false);
    const counts = zeroCounts();
    const { status, evolution } = await inTransaction(client, async () => {
      await client.query(
        insertRunSql(req.schema, {
          runId,
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
      const evolved = await evolveInTransaction(client, req.schema, def, runId);
      await client.query(createStageSql(def));
      await copyBatch(client, copyStageSql(def), ctx, lineSource(req.input), buf);
      const maxLastModified = await mergeStaged(client, { ...merge, distinctIds: !buf.repeatedIds }, buf.records, counts);
      await recordBatch(client, ctx, buf, counts, maxLastModified);
      const outcome: RunStatus = counts.rejected > 0 || counts.problems > 0 ? 'partial' : 'succeeded';
      await client.query(finishRunSql(req.schema, runId, outcome, null));
      // Last before COMMIT: the lease must still be this run's (lease.ts).
      await lease.fence(client);
      return { status: outcome, evolution: evolved };
    });
    return { runId, status, table: def.table, counts, evolution };
  } catch (err) {
    // pgland's own refusals leave the connection sound; anything else may not have.
    broken = !(err instanceof PglandError);
    throw err;
  } finally {
    client.release(broken);
    await lease.release();
  }
}
