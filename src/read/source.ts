import type pg from 'pg';
import { resolveDestination, type DestinationConfig } from '../config/resolve.js';
import { openTunnelFor } from '../connection/open-tunnel.js';
import { openPool } from '../connection/pool.js';
import { silentLogger, type Logger } from '../log.js';

/*
 * A connection to a customer's database for reading from it (pgland read,
 * query, exec). Unlike openDestination it creates nothing and migrates
 * nothing: a reading role needs only CONNECT, USAGE on the schema and SELECT
 * on what it reads (docs/reading.md, "Least privilege").
 */

export interface SourceOptions {
  log?: Logger;
  /** Environment variables to read (PGLAND_*); none unless given. */
  env?: NodeJS.ProcessEnv;
  /** Keys that win over the config and the environment (the CLI's flags). */
  overrides?: Record<string, unknown>;
  /** Connections in the pool: a read uses one, a query action one more to cancel with. */
  poolSize?: number;
}

export interface SourceConnection {
  readonly config: DestinationConfig;
  readonly pool: pg.Pool;
  readonly log: Logger;
  close(): Promise<void>;
}

/** Connects (through the tunnel when the config has one); connection failures come back explained. */
export async function connectSource(config: Record<string, unknown>, options: SourceOptions = {}): Promise<SourceConnection> {
  const cfg = resolveDestination(config, options.env ?? {}, options.overrides ?? {});
  const log = options.log ?? silentLogger();
  const tunnel = await openTunnelFor(cfg, log);
  const pool = await openPool(cfg, log, options.poolSize ?? 2, tunnel).catch(async (err: unknown) => {
    await tunnel?.close();
    throw err;
  });
  return {
    config: cfg,
    pool,
    log,
    close: async () => {
      await pool.end();
      await tunnel?.close();
    },
  };
}
