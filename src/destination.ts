import type pg from 'pg';
import { resolveObject, type ObjectRequest } from './catalog/declared.js';
import { loadConfigFiles } from './config/files.js';
import { resolveDestination, type DestinationConfig } from './config/resolve.js';
import type { DestinationInput } from './config/schema.js';
import { endPool, openPool } from './connection/pool.js';
import type { ConnectionGate } from './connection/gate.js';
import { openTunnelFor } from './connection/open-tunnel.js';
import pLimit from 'p-limit';
import { isFileChunks } from './input/file-chunks.js';
import { load, type LoaderContext, type LoadResult } from './load/loader.js';
import type { IntoRequest, IntoResult } from './into/run.js';
// The mapping parser of loadInto's callers (the service's POST /destinations/{id}/into), with the Destination it serves.
export { mappingsFromObject } from './into/mapping.js';
export type { IntoRequest } from './into/run.js';
import type { WriteMode } from './merge/merge.js';
import { qualify } from './sql/ident.js';
import { planEvolution, planRecorded, type EvolutionPlan } from './schema/plan.js';
import { claimTable } from './schema/evolve.js';
import { listRuns, type RunCounts, type RunRow, type SyncMode } from './load/runs.js';
import { silentLogger, type Logger } from './log.js';
import { migrate } from './schema/migrate.js';

export interface OpenOptions {
  log?: Logger;
  /** Environment variables to read (PGLAND_*); none unless given, so a library call depends only on its arguments. */
  env?: NodeJS.ProcessEnv;
  /** Keys that win over the config and the environment (the CLI's flags). */
  overrides?: Record<string, unknown>;
  /** Connections in the pool. */
  poolSize?: number;
  /** Bounds this destination's open connections across processes (the service's connection budget). */
  connectionGate?: ConnectionGate;
}

export interface LoadStreamOptions extends ObjectRequest {
  customerId: string;
  mode?: SyncMode;
  /** upsert (default), insert, update or delete; docs/sync-semantics.md. */
  write?: WriteMode;
  /** update and delete modes match landed rows on this column (default id). */
  matchColumn?: string;
  /** Skip records flagged deleted instead of applying them. */
  ignoreDeletes?: boolean;
  input: AsyncIterable<Buffer | string>;
  onProgress?: (counts: RunCounts) => void;
  /** Abort to cancel: the batch being read (and one still committing) rolls back and the run is recorded as cancelled. */
  signal?: AbortSignal;
}

/** Where a tenant's object stands: the newest last-modified time landed by a completed run. */
export interface Watermark {
  provider: string;
  customerId: string;
  object: string;
  highWaterMark: Date;
  runId: string;
  updatedAt: Date;
}

/** An open destination: a pool on the customer's database with pgland's metadata in place. */
export interface Destination {
  readonly config: DestinationConfig;
  readonly pool: pg.Pool;
  readonly schema: string;
  /** Lands one run's records for one tenant and object. */
  load(options: LoadStreamOptions): Promise<LoadResult>;
  /** Lands records into one of the customer's own tables through mappings (docs/own-tables.md). */
  loadInto(options: IntoRequest): Promise<IntoResult>;
  /** Several runs, different objects in parallel (bounded by max_parallel_objects). */
  loadMany(options: LoadStreamOptions[]): Promise<LoadResult[]>;
  /** Where the last completed run of an object stopped; undefined before the first. */
  watermark(key: { provider: string; customerId: string; object: string }): Promise<Watermark | undefined>;
  /** The statements the next run of this object would execute to evolve its table; changes nothing. */
  plan(object: ObjectRequest): Promise<EvolutionPlan>;
  /** Plans for every table pgland has recorded (common objects against the catalog, others against their recorded definition). */
  plans(): Promise<EvolutionPlan[]>;
  /** The latest runs, newest first. */
  runs(filter?: { provider?: string; customerId?: string; object?: string; limit?: number }): Promise<RunRow[]>;
  close(): Promise<void>;
}

/**
 * Opens a destination: connects, creates the schema when it is missing and
 * applies pgland's metadata migrations. The CLI is a thin layer over this.
 */
export async function openDestination(config: DestinationInput, options: OpenOptions = {}): Promise<Destination> {
  const cfg = await loadConfigFiles(resolveDestination(config as Record<string, unknown>, options.env ?? {}, options.overrides ?? {}));
  const log = options.log ?? silentLogger();
  // The tunnel opens first and closes last; every pool connection is a channel of it.
  const tunnel = await openTunnelFor(cfg, log);
  // The first use of the pool: a failure ends it (pool.ts, openPool).
  const migrated = async (pool: pg.Pool): Promise<void> => {
    const client = await pool.connect();
    try {
      await migrate(client, cfg.schema);
    } finally {
      client.release();
    }
  };
  const pool = await openPool(cfg, log, options.poolSize ?? 4, tunnel, options.connectionGate, migrated).catch(async (err: unknown) => {
    await tunnel?.close();
    throw err;
  });
  const ctx: LoaderContext = {
    pool,
    schema: cfg.schema,
    log,
    batchSize: cfg.batch_size,
    batchBytes: cfg.batch_bytes,
    batchRetries: cfg.batch_retries,
    lockTimeoutMs: cfg.lock_timeout_ms,
    deleteMode: cfg.delete_mode,
    maxRecordBytes: cfg.max_record_bytes,
  };
  const loadOne = (o: LoadStreamOptions): Promise<LoadResult> =>
    closingInput(o.input, () =>
      load(ctx, {
        provider: o.provider,
        customerId: o.customerId,
        def: resolveObject(o),
        ...(o.mode ? { mode: o.mode } : {}),
        ...(o.write ? { write: o.write } : {}),
        ...(o.matchColumn ? { matchColumn: o.matchColumn } : {}),
        ...(o.ignoreDeletes ? { ignoreDeletes: o.ignoreDeletes } : {}),
        input: o.input,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      }),
    );
  const limit = pLimit(cfg.max_parallel_objects);
  return {
    config: cfg,
    pool,
    schema: cfg.schema,
    load: loadOne,
    // Loaded when first used: a landed load is spared the own-table modules.
    loadInto: (o) => closingInput(o.input, async () => (await import('./into/run.js')).loadInto(ctx, o)),
    loadMany: (list) => Promise.all(list.map((o) => limit(() => loadOne(o)))),
    watermark: (key) => readWatermark(pool, cfg.schema, key),
    plan: (object) => withClient(pool, async (c) => planEvolution(c, cfg.schema, await claimTable(c, cfg.schema, resolveObject(object)))),
    plans: () => withClient(pool, (c) => planRecorded(c, cfg.schema)),
    runs: (filter) => listRuns(pool, cfg.schema, filter),
    close: async () => {
      await endPool(pool);
      await tunnel?.close();
    },
  };
}

async function readWatermark(pool: pg.Pool, schema: string, key: { provider: string; customerId: string; object: string }): Promise<Watermark | undefined> {
  const { rows } = await pool.query<{ high_water_mark: Date; run_id: string; updated_at: Date }>(
    `SELECT high_water_mark, run_id, updated_at FROM ${qualify(schema, '_pgland_watermarks')}
      WHERE provider = $1 AND customer_id = $2 AND object = $3`,
    [key.provider, key.customerId, key.object],
  );
  const r = rows[0];
  return r && { ...key, highWaterMark: r.high_water_mark, runId: r.run_id, updatedAt: r.updated_at };
}

/**
 * Runs a load of `input`, then closes the input when it is a file the
 * library opened (fileInput): a load that fails or is refused before
 * reading it to its end leaves no file open. Other inputs are the caller's.
 */
async function closingInput<T>(input: unknown, run: () => Promise<T>): Promise<T> {
  try {
    // async: an object that cannot be resolved is a rejected promise, not a synchronous throw.
    return await run();
  } finally {
    if (isFileChunks(input)) await input.return();
  }
}

async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}
