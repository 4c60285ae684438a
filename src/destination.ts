import type pg from 'pg';
import { resolveObject, type ObjectRequest } from './catalog/declared.js';
import { resolveDestination, type DestinationConfig } from './config/resolve.js';
import type { DestinationInput } from './config/schema.js';
import { openPool } from './connection/pool.js';
import { load, type LoadResult } from './load/loader.js';
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
}

export interface LoadStreamOptions extends ObjectRequest {
  customerId: string;
  mode?: SyncMode;
  input: AsyncIterable<Buffer | string>;
  onProgress?: (counts: RunCounts) => void;
}

/** An open destination: a pool on the customer's database with pgland's metadata in place. */
export interface Destination {
  readonly config: DestinationConfig;
  readonly pool: pg.Pool;
  readonly schema: string;
  /** Lands one run's records for one tenant and object. */
  load(options: LoadStreamOptions): Promise<LoadResult>;
  /** The latest runs, newest first. */
  runs(filter?: { provider?: string; customerId?: string; object?: string; limit?: number }): Promise<RunRow[]>;
  close(): Promise<void>;
}

/**
 * Opens a destination: connects, creates the schema when it is missing and
 * applies pgland's metadata migrations. The CLI is a thin layer over this.
 */
export async function openDestination(config: DestinationInput, options: OpenOptions = {}): Promise<Destination> {
  const cfg = resolveDestination(config as Record<string, unknown>, options.env ?? {}, options.overrides ?? {});
  const log = options.log ?? silentLogger();
  const pool = await openPool(cfg, log, options.poolSize ?? 4);
  try {
    const client = await pool.connect();
    try {
      await migrate(client, cfg.schema);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const ctx = { pool, schema: cfg.schema, log, batchSize: cfg.batch_size, batchBytes: cfg.batch_bytes };
  return {
    config: cfg,
    pool,
    schema: cfg.schema,
    load: (o) =>
      load(ctx, {
        provider: o.provider,
        customerId: o.customerId,
        def: resolveObject(o),
        ...(o.mode ? { mode: o.mode } : {}),
        input: o.input,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      }),
    runs: (filter) => listRuns(pool, cfg.schema, filter),
    close: () => pool.end(),
  };
}
