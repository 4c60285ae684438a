import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { Logger } from 'pino';
import type { DestinationConfig } from '../config/resolve.js';
import { loadConfigFiles } from '../config/files.js';
import { setTransactionSettings } from '../sql/transaction.js';
import { GuardedClient, type GuardedClientConfig } from './client.js';
import { explain, type ConnectTarget } from './diagnose.js';
import { preTaken, type ConnectionGate } from './gate.js';
import { detectPooler, directConnectionHint, isStartupParameterRejected, refusePooler, type PoolerReport } from './pooler.js';
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

/**
 * node-postgres client settings for a config: TLS as given, through the
 * tunnel when there is one. `startupOptions: false` leaves out the session
 * settings sent at connection time, which PgBouncer refuses; every
 * transaction sets them again anyway (transactionSettingsSql).
 */
export function clientConfig(cfg: DestinationConfig, ssl: false | pg.ClientConfig['ssl'], tunnel?: Tunnel, startupOptions = true): GuardedClientConfig {
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
    application_name: cfg.application_name,
    keepAlive: true,
    ...(startupOptions
      ? {
          ...(cfg.statement_timeout_ms ? { statement_timeout: cfg.statement_timeout_ms } : {}),
          options: `-c TimeZone=UTC -c work_mem=${workMem(cfg)} -c jit=off`,
        }
      : {}),
  };
}

/** work_mem is validated as a plain size (src/config/schema.ts): digits and a unit, no quotes or spaces left. */
function workMem(cfg: DestinationConfig): string {
  return cfg.work_mem.replace(/\s+/g, '');
}

/**
 * The session settings pgland's statements rely on, set for one transaction:
 * through a transaction-mode pooler a session setting would stay on a server
 * connection that other clients get next, and would not follow this one.
 * Timestamps without an offset are read as UTC, whatever the server's
 * default. jit=off: a batch's merge is costed high enough to be JIT-compiled
 * on a server built with LLVM (most managed ones), and compiling it again for
 * every batch cost more than it saved (about 10% of a 1M increment).
 * statement_timeout only when configured: 0 would lift a limit set on the
 * role or the database.
 */
export function transactionSettingsSql(cfg: DestinationConfig): string {
  return [
    `SET LOCAL TimeZone = 'UTC'`,
    `SET LOCAL work_mem = '${workMem(cfg)}'`,
    `SET LOCAL jit = off`,
    ...(cfg.statement_timeout_ms ? [`SET LOCAL statement_timeout = ${Math.trunc(cfg.statement_timeout_ms)}`] : []),
  ].join('; ');
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

/**
 * The client class of a pool whose connections each hold a slot of a gate
 * while they are open. The slot is taken before the connection opens, so the
 * pool's own connect timeout must not count the wait: the pool gets none, and
 * each client gets the configured one back for its own connecting.
 */
function gatedClient(gate: ConnectionGate, connectTimeoutMs: number): typeof GuardedClient {
  return class GatedClient extends GuardedClient {
    private release: (() => void) | undefined;

    constructor(config: GuardedClientConfig = {}) {
      // pg-pool hides the password as a property that a spread does not copy: it is passed on by name.
      super({ ...config, password: config.password, connectionTimeoutMillis: connectTimeoutMs });
      // Given back once, whichever way the connection ends.
      this.once('end', () => this.giveBack());
    }

    private giveBack(): void {
      const release = this.release;
      this.release = undefined;
      release?.();
    }

    // pg-pool connects with a callback, a caller of the client with a promise: both wait for the slot.
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | void {
      const connected = this.gatedConnect().then(() => this as pg.Client);
      if (!callback) return connected;
      connected.then(
        (c) => callback(null, c),
        (err: Error) => callback(err),
      );
    }

    private async gatedConnect(): Promise<void> {
      this.release = await gate.acquire();
      try {
        await super.connect();
      } catch (err) {
        this.giveBack();
        throw err;
      }
    }
  };
}

/** Connects; the connection is ended unless `keep` (then it is the caller's). */
async function tryConnect(config: GuardedClientConfig, Client: typeof GuardedClient = GuardedClient, keep = false): Promise<pg.Client | undefined> {
  const client = new Client(config);
  client.on('error', () => undefined);
  let kept = false;
  try {
    await client.connect();
    kept = keep;
    return keep ? client : undefined;
  } finally {
    if (!kept) await client.end().catch(() => undefined);
  }
}

/** Connects once with the startup settings, once more without them when a pooler refuses them. */
async function tryConnectSettling(
  cfg: DestinationConfig,
  ssl: false | pg.ClientConfig['ssl'],
  tunnel?: Tunnel,
  Client?: typeof GuardedClient,
  keep = false,
): Promise<{ startupOptions: boolean; client?: pg.Client }> {
  try {
    const client = await tryConnect(clientConfig(cfg, ssl, tunnel), Client, keep);
    return { startupOptions: true, ...(client ? { client } : {}) };
  } catch (err) {
    if (!isStartupParameterRejected(err)) throw err;
    const client = await tryConnect(clientConfig(cfg, ssl, tunnel, false), Client, keep);
    return { startupOptions: false, ...(client ? { client } : {}) };
  }
}

/**
 * What the probe found: the TLS options, and whether the startup settings
 * were accepted; with `keep`, its connection, open (the pooler check's
 * first: a connection fewer to open, several round trips across a link).
 */
export interface Probed {
  ssl: false | pg.ClientConfig['ssl'];
  startupOptions: boolean;
  client?: pg.Client;
}

/**
 * Settles the TLS options with one probe connection, which also turns a
 * failure to connect into an explained error (wrong password, unknown
 * database, TLS required…) before a pool exists. With sslmode=prefer the
 * probe tries TLS first and falls back to a plain connection as libpq does;
 * the pool keeps what the probe found.
 */
export async function probeConnection(cfg: DestinationConfig, tunnel?: Tunnel, Client?: typeof GuardedClient, keep = false): Promise<Probed> {
  const ssl = tlsOptions(cfg);
  try {
    return { ssl, ...(await tryConnectSettling(cfg, ssl, tunnel, Client, keep)) };
  } catch (err) {
    if (cfg.sslmode === 'prefer' && preferFallsBack(err)) {
      try {
        return { ssl: false, ...(await tryConnectSettling(cfg, false, tunnel, Client, keep)) };
      } catch (plainErr) {
        throw explain(plainErr, connectTarget(cfg));
      }
    }
    throw explain(err, connectTarget(cfg));
  }
}

/** What the loader needs to know of a destination's pool beyond its connections. */
export interface PoolTraits {
  pooler: PoolerReport;
  /** How long a run's lease on its object lasts without renewal (src/load/lease.ts). */
  leaseTtlMs: number;
  /**
   * Settings for a connection of its own, outside the pool: a lease's
   * heartbeat must not wait for a pool whose connections the runs hold.
   */
  clientConfig?: GuardedClientConfig;
}

const traits = new WeakMap<pg.Pool, PoolTraits>();

/** The traits of a pool opened by openPool; a pool from elsewhere counts as pooled, the safe side. */
export function traitsOf(pool: pg.Pool): PoolTraits {
  return traits.get(pool) ?? { pooler: { mode: 'transaction', evidence: ['not opened by pgland: assumed pooled'] }, leaseTtlMs: 30_000 };
}

/**
 * Opens a pool (through the tunnel when one is given: every connection is a
 * channel of that one SSH connection). Connection failures come back as
 * explained PglandErrors (src/connection/diagnose.ts). A transaction-mode
 * pooler in front of the database is said once, in this log; a statement-mode
 * one is refused before anything is written. max_connections caps the pool;
 * a gate (the service's connection budget) bounds the connections of every
 * process together: each connection, the probe's too, waits for a slot
 * before it opens; the pooler check's two take their slots together.
 * `firstUse` (a destination's migrations) runs once the pool is ready; its
 * failure ends the pool.
 */
export async function openPool(
  given: DestinationConfig,
  log: Logger,
  max = 4,
  tunnel?: Tunnel,
  gate?: ConnectionGate,
  firstUse?: (pool: pg.Pool) => Promise<void>,
): Promise<pg.Pool> {
  const cfg = await loadConfigFiles(given);
  const Client = gate ? gatedClient(gate, cfg.connect_timeout_ms) : GuardedClient;
  // Without a gate the probe's connection stays open for the pooler check (under one, the check takes its two slots together).
  const { ssl, startupOptions, client: probe } = await probeConnection(cfg, tunnel, Client, !gate);
  if (cfg.sslmode === 'prefer' && ssl === false) log.warn({ host: cfg.host }, 'the server does not offer TLS: connected without encryption (sslmode=prefer)');
  const config = clientConfig(cfg, ssl, tunnel, startupOptions);
  const pool = new pg.Pool({
    ...config,
    max: Math.min(max, cfg.max_connections ?? max),
    Client,
    // Waiting for a slot is not a failure to connect; an idle connection gives its slot back soon.
    ...(gate ? { connectionTimeoutMillis: 0, idleTimeoutMillis: 1000 } : {}),
  });
  const settings = transactionSettingsSql(cfg);
  pool.on('connect', (client) => setTransactionSettings(client, settings));
  // An idle client whose backend goes away emits 'error' on the pool; without a
  // listener that would crash the process. The next checkout reconnects.
  pool.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'idle connection lost'));
  try {
    const pooler = await checkPooler(cfg, config, startupOptions, gate, probe);
    if (pooler.mode === 'statement') throw refusePooler(pooler, cfg.host, cfg.port);
    if (pooler.mode === 'transaction') {
      log.warn(
        { pooler: pooler.mode, evidence: pooler.evidence, fix: directConnectionHint(cfg.host, cfg.port) },
        'connected through a transaction-mode connection pooler: pgland works through it (leases, per-transaction settings), but the direct connection is faster and safer',
      );
    }
    traits.set(pool, { pooler, leaseTtlMs: cfg.lease_ttl_ms, clientConfig: config });
    // After the check, not beside it: the check holds two connections, and a
    // role limited to two (test/first-load-overlap) must still open.
    if (firstUse) await firstUse(pool);
    return pool;
  } catch (err) {
    await endPool(pool).catch(() => undefined);
    throw err;
  }
}

/** detectPooler, its failure explained. It holds two connections at once: under a gate, both slots are taken together. */
async function checkPooler(
  cfg: DestinationConfig,
  config: GuardedClientConfig,
  startupOptions: boolean,
  gate?: ConnectionGate,
  probe?: pg.Client,
): Promise<PoolerReport> {
  const checkSlots = gate ? await gate.acquireAll(2) : [];
  return detectPooler(config, !startupOptions, gate ? gatedClient(preTaken([...checkSlots]), cfg.connect_timeout_ms) : GuardedClient, probe)
    .catch((err: unknown) => {
      throw explain(err, connectTarget(cfg));
    })
    .finally(() => {
      // A slot the check did not use (it stopped early) goes back; the others went back as their connections ended.
      for (const release of checkSlots) release();
    });
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
