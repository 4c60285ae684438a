import pg from 'pg';
import type { Logger } from 'pino';
import type { DestinationConfig } from '../config/resolve.js';
import { tlsOptions } from './tls.js';

function poolConfig(cfg: DestinationConfig, ssl: pg.PoolConfig['ssl'], max: number): pg.PoolConfig {
  return {
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    password: cfg.password,
    ssl,
    max,
    connectionTimeoutMillis: cfg.connect_timeout_ms,
    statement_timeout: cfg.statement_timeout_ms || undefined,
    application_name: cfg.application_name,
    // Timestamps without an offset are read as UTC, whatever the server's default.
    options: '-c TimeZone=UTC',
  };
}

function refusesTls(err: unknown): boolean {
  return /does not support SSL/i.test(String((err as Error)?.message));
}

/**
 * Opens a pool. With sslmode=prefer, one probe connection tries TLS first and
 * falls back to a plain connection when the server does not offer TLS, as
 * libpq does.
 */
export async function openPool(cfg: DestinationConfig, log: Logger, max = 4): Promise<pg.Pool> {
  let ssl = tlsOptions(cfg);
  if (cfg.sslmode === 'prefer') {
    const probe = new pg.Client(poolConfig(cfg, ssl, 1));
    try {
      await probe.connect();
    } catch (err) {
      if (!refusesTls(err)) throw err;
      ssl = false;
    } finally {
      await probe.end().catch(() => undefined);
    }
  }
  const pool = new pg.Pool(poolConfig(cfg, ssl, max));
  // An idle client whose backend goes away emits 'error' on the pool; without a
  // listener that would crash the process. The next checkout reconnects.
  pool.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'idle connection lost'));
  return pool;
}
