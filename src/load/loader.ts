import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ObjectDef } from '../catalog/definition.js';
import { describeError, PglandError } from '../errors.js';
import { parseEnvelope, type Parsed } from '../input/envelope.js';
import { readLines } from '../input/lines.js';
import { PGLAND_VERSION } from '../package.js';
import { createLandedTableSql } from '../schema/landed.js';
import { qualify } from '../sql/ident.js';
import { runBatch, type RecordSource } from './batch.js';
import { addCounts, finishRunSql, insertRunSql, zeroCounts, type RunCounts, type RunStatus, type SyncMode } from './runs.js';

export interface LoadRequest {
  provider: string;
  customerId: string;
  def: ObjectDef;
  mode?: SyncMode;
  /** NDJSON records: a file stream, stdin, an HTTP body. */
  input: AsyncIterable<Buffer | string>;
  /** Called after every committed batch. */
  onProgress?: (counts: RunCounts) => void;
}

export interface LoadResult {
  runId: string;
  status: RunStatus;
  table: string;
  counts: RunCounts;
  durationMs: number;
  error?: Error;
}

export interface LoaderContext {
  pool: pg.Pool;
  schema: string;
  log: Logger;
  batchSize: number;
  batchBytes: number;
}

/** Turns the input into a peekable source of parsed lines. */
function recordSource(input: AsyncIterable<Buffer | string>): RecordSource {
  const lines = readLines(input);
  let head: Parsed | undefined;
  let done = false;
  return {
    async peek() {
      if (head !== undefined || done) return head;
      const next = await lines.next();
      if (next.done) {
        done = true;
        return undefined;
      }
      head = parseEnvelope(next.value);
      return head;
    },
    take() {
      head = undefined;
    },
  };
}

/**
 * Creates the landed table when it is missing. Concurrent loaders serialise on
 * an advisory lock so that two CREATE TABLE IF NOT EXISTS cannot race into a
 * duplicate-type error.
 */
export async function ensureLandedTable(client: pg.PoolClient, schema: string, def: ObjectDef): Promise<void> {
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS ok', [qualify(schema, def.table)]);
  if ((exists.rows[0] as { ok: boolean }).ok) return;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('pgland.table.' || $1::text, 0))`, [schema + '.' + def.table]);
    await client.query(createLandedTableSql(schema, def));
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * One sync run: record it, make sure the table exists, land the input batch by
 * batch (each batch its own transaction), and record the outcome. A failed
 * batch leaves nothing of itself behind; batches committed before it stay, and
 * the run says so.
 */
export async function load(ctx: LoaderContext, req: LoadRequest): Promise<LoadResult> {
  const started = Date.now();
  const runId = randomUUID();
  const { schema, pool, log } = ctx;
  const def = req.def;
  const counts = zeroCounts();
  const mode = req.mode ?? 'incremental';
  const runLog = log.child({ runId, object: def.object, table: def.table });

  await pool.query(
    insertRunSql(schema, {
      runId,
      provider: req.provider,
      customerId: req.customerId,
      object: def.object,
      objectKind: def.kind,
      table: def.table,
      mode,
      writeMode: 'upsert',
      version: PGLAND_VERSION,
    }),
  );
  runLog.info({ provider: req.provider, customerId: req.customerId, mode }, 'run started');

  let status: RunStatus = 'succeeded';
  let error: Error | undefined;
  const client = await pool.connect();
  let broken = false;
  try {
    await ensureLandedTable(client, schema, def);
    const source = recordSource(req.input);
    while ((await source.peek()) !== undefined) {
      const batch = await runBatch(
        client,
        { schema, def, provider: req.provider, customerId: req.customerId, runId, batchSize: ctx.batchSize, batchBytes: ctx.batchBytes },
        source,
      );
      addCounts(counts, batch);
      runLog.debug({ batch }, 'batch committed');
      req.onProgress?.(counts);
    }
    if (counts.rejected > 0 || counts.problems > 0) status = 'partial';
  } catch (err) {
    status = 'failed';
    error = err instanceof Error ? err : new Error(String(err));
    // A connection that failed mid-statement is not reused.
    broken = true;
    runLog.error({ err: { message: error.message, code: (error as PglandError).code } }, 'run failed');
  } finally {
    client.release(broken);
  }

  try {
    await pool.query(finishRunSql(schema, runId, status, error ? describeError(error) : null));
  } catch (err) {
    // The run row is bookkeeping: failing to update it must not hide the run's own error.
    runLog.warn({ err: { message: (err as Error).message } }, 'could not record the run outcome');
    if (!error) {
      status = 'failed';
      error = err as Error;
    }
  }
  const durationMs = Date.now() - started;
  runLog.info({ status, counts, durationMs }, 'run finished');
  return { runId, status, table: def.table, counts, durationMs, ...(error ? { error } : {}) };
}
