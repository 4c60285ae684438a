import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { Logger } from 'pino';
import type { DestinationConfig } from '../config/resolve.js';
import { loadConfigFiles } from '../config/files.js';
import { GuardedClient, type GuardedClientConfig } from './client.js';
import { explain, type ConnectTarget } from './diagnose.js';
import { tlsOptions, tlsServerName } from './tls.js';
import type { Tunnel } from './tunnel.js';

/**
 * A socket that connects to a fixed address whatever node-postgres asks for:
 * node-postgres sends its `host` as the TLS server name, so when that name
 * must differ from the address (sslservername), `host` carries the name and
 * this socket the address.
 */
class RedirectedSocket extends Socket {
  constructor(private readonly to: { host: string; port: number }) {
    super();
  }

  override connect(..._args: unknown[]): this {
    return super.connect(this.to.port, this.to.host);
  }
}

/** What an error message should name: the database as configured, and the bastion when there is one. */
export function connectTarget(cfg: DestinationConfig): ConnectTarget {
  return {
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    sslmode: cfg.sslmode,
    connect_timeout_ms: cfg.connect_timeout_ms,
    statement_timeout_ms: cfg.statement_timeout_ms,
    ...(cfg.ssh_tunnel ? { bastion: `${cfg.ssh_tunnel.host}:${cfg.ssh_tunnel.port}` } : {}),
  };
}

/** node-postgres client settings for a config: TLS as given, through the tunnel when there is one. */
export function clientConfig(cfg: DestinationConfig, ssl: false | pg.ClientConfig['ssl'], tunnel?: Tunnel): GuardedClientConfig {
  let stream: (() => Duplex) | undefined;
  let host = cfg.host;
  if (tunnel) {
    stream = () => tunnel.socket();
    host = tlsServerName(cfg);
  } else if (cfg.sslservername && ssl) {
    stream = () => new RedirectedSocket({ host: cfg.host, port: cfg.port });
    host = tlsServerName(cfg);
  }
  return {
    host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    // An explicit empty string: node-postgres would otherwise fall back to PGPASSWORD and ~/.pgpass.
    password: cfg.password ?? '',
    allowCleartextPassword: cfg.allow_cleartext_password,
    target: `${cfg.host}:${cfg.port}`,
    ssl,
    ...(stream ? { stream } : {}),
    connectionTimeoutMillis: cfg.connect_timeout_ms,
    ...(cfg.statement_timeout_ms ? { statement_timeout: cfg.statement_timeout_ms } : {}),
    application_name: cfg.application_name,
    keepAlive: true,
    // Timestamps without an offset are read as UTC, whatever the server's
    // default; work_mem is validated as a plain size (no spaces to inject options).
    // jit=off: a batch's merge is costed high enough to be JIT-compiled on a
    // server built with LLVM (most managed ones), and compiling it again for
    // every batch cost more than it saved (about 10% of a 1M increment).
    options: `-c TimeZone=UTC -c work_mem=${cfg.work_mem.replace(/\s+/g, '')} -c jit=off`,
  };
}

/**
 * The failures after which libpq's sslmode=prefer tries again without TLS: the
 * server refuses TLS, the handshake fails, or pg_hba rejects the TLS
 * connection (a hostnossl-only server).
 */
function preferFallsBack(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const msg = String(e?.message ?? '');
  if (/does not support SSL|error establishing an SSL connection/i.test(msg)) return true;
  if (e?.code === '28000' && /no pg_hba\.conf entry/i.test(msg)) return true;
  return typeof e?.code === 'string' && (e.code.startsWith('ERR_SSL') || e.code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO/.test(e.code));
}

async function tryConnect(config: GuardedClientConfig): Promise<void> {
  const client = new GuardedClient(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Settles the TLS options with one probe connection, which also turns a
 * failure to connect into an explained error (wrong password, unknown
 * database, TLS required…) before a pool exists. With sslmode=prefer the
 * probe tries TLS first and falls back to a plain connection as libpq does;
 * the pool keeps what the probe found.
 */
export async function probeConnection(cfg: DestinationConfig, tunnel?: Tunnel): Promise<false | pg.ClientConfig['ssl']> {
  const ssl = tlsOptions(cfg);
  try {
    await tryConnect(clientConfig(cfg, ssl, tunnel));
    return ssl;
  } catch (err) {
    if (cfg.sslmode === 'prefer' && preferFallsBack(err)) {
      try {
        await tryConnect(clientConfig(cfg, false, tunnel));
        return false;
      } catch (plainErr) {
        throw explain(plainErr, connectTarget(cfg));
      }
    }
    throw explain(err, connectTarget(cfg));
  }
}

/**
 * Opens a pool (through the tunnel when one is given: every connection is a
 * channel of that one SSH connection). Connection failures come back as
 * explained PglandErrors (src/connection/diagnose.ts).
 */
export async function openPool(given: DestinationConfig, log: Logger, max = 4, tunnel?: Tunnel): Promise<pg.Pool> {
  const cfg = await loadConfigFiles(given);
  const ssl = await probeConnection(cfg, tunnel);
  if (cfg.sslmode === 'prefer' && ssl === false) log.warn({ host: cfg.host }, 'the server does not offer TLS: connected without encryption (sslmode=prefer)');
  const pool = new pg.Pool({ ...clientConfig(cfg, ssl, tunnel), max, Client: GuardedClient });
  // An idle client whose backend goes away emits 'error' on the pool; without a
  // listener that would crash the process. The next checkout reconnects.
  pool.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'idle connection lost'));
  return pool;
}

/**
 * Ends a pool and resolves once every connection of it has closed. pg's
 * pool.end() resolves as soon as it has asked its clients to end, before their
 * sockets close: a server stopped right after (the embedded one, at the end of
 * `pgland load` or `pgland serve`) then terminates backends that have not yet
 * read the Terminate message, and each reports 57P01 ("terminating connection
 * due to administrator command") as an idle client's error: a warning on a
 * successful run. Bounded: a client that never closes stops the wait after
 * `timeoutMs`.
 */
export async function endPool(pool: pg.Pool, timeoutMs = 10_000): Promise<void> {
  if (pool.ending) return;
  // A client whose socket has closed is removed from the pool with a 'remove' event.
  let open = pool.totalCount;
  let onRemove = (): void => undefined;
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    onRemove = () => {
      if (--open <= 0) resolve();
    };
    pool.on('remove', onRemove);
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await pool.end();
    await closed;
  } finally {
    clearTimeout(timer);
    pool.off('remove', onRemove);
  }
}
