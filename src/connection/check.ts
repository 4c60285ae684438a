import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { loadConfigFiles } from '../config/files.js';
import type { DestinationConfig } from '../config/resolve.js';
import { PglandError, sqlState, type ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { qualify, quoteIdent } from '../sql/ident.js';
import { begin, setTransactionSettings } from '../sql/transaction.js';
import { GuardedClient } from './client.js';
import { explain } from './diagnose.js';
import { clientConfig, connectTarget, transactionSettingsSql } from './pool.js';
import { detectPooler, directConnectionHint, isStartupParameterRejected, type PoolerReport } from './pooler.js';
import { tlsOptions, tlsServerName } from './tls.js';

export type StepName = 'tunnel' | 'reach' | 'tls' | 'auth' | 'database' | 'version' | 'pooler' | 'schema' | 'temporary' | 'write';
export type StepStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface StepResult {
  step: StepName;
  title: string;
  status: StepStatus;
  ms: number;
  /** What was found (pass, warn) or what went wrong (fail). */
  detail: string;
  /** On failure: pgland's error code (docs/errors.md). */
  code?: ErrorCode;
  /** On failure: what to do; often the SQL statement that fixes it. */
  fix?: string;
}

export interface CheckReport {
  ok: boolean;
  target: { host: string; port: number; database: string; user: string; schema: string; sslmode: string; bastion?: string };
  /** What stands between pgland and the database (docs/connecting.md, "Connection poolers"); absent when the check stopped before. */
  pooler?: PoolerReport;
  steps: StepResult[];
}

const TITLES: Record<StepName, string> = {
  tunnel: 'SSH tunnel up',
  reach: 'DNS and TCP reach',
  tls: 'TLS',
  auth: 'authentication',
  database: 'database exists',
  version: 'server version',
  pooler: 'connection pooler',
  schema: 'schema exists or can be created',
  temporary: 'TEMPORARY privilege',
  write: 'write probe',
};

/** Oldest fully supported server, and the best-effort one below it. */
const SUPPORTED = 130000;
const BEST_EFFORT = 120000;

/** 13 and later: supported; 12: best effort (a warning); older: refused. */
export function judgeVersion(num: number, text: string): { status: 'pass' | 'warn' | 'fail'; detail: string } {
  const major = Math.floor(num / 10000);
  if (num >= SUPPORTED) return { status: 'pass', detail: `PostgreSQL ${text}` };
  if (num >= BEST_EFFORT)
    return { status: 'warn', detail: `PostgreSQL ${text}: version ${major} is supported on a best-effort basis; 13 or later is fully supported` };
  return { status: 'fail', detail: `PostgreSQL ${text} is too old: pgland needs 13 or later (12 best-effort)` };
}

class StepFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

function failureOf(err: unknown, cfg: DestinationConfig): StepFailure {
  if (err instanceof StepFailure) return err;
  const e = err instanceof PglandError ? err : explain(err, connectTarget(cfg));
  return new StepFailure(e.code, e.message, e.hint);
}

/** The one-byte answer to PostgreSQL's SSLRequest: 'S' (TLS offered) or 'N'. */
async function sslRequest(sock: Duplex): Promise<string> {
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(80877103, 4);
  sock.write(req);
  const [data] = (await Promise.race([
    once(sock, 'data'),
    once(sock, 'error').then(([e]) => Promise.reject(e)),
    once(sock, 'close').then(() => Promise.reject(new Error('Connection terminated unexpectedly'))),
  ])) as [Buffer];
  sock.pause();
  return String.fromCharCode(data[0]!);
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(Object.assign(new Error('timeout expired'), { code: 'ETIMEDOUT' }));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * `pgland check`: each step in order, timed; a failed step stops the ones that
 * depend on it (they are reported as skipped). Nothing is left behind: the
 * write probe runs in a transaction that is rolled back. Secrets never appear
 * in the report.
 */
export async function runCheck(given: DestinationConfig, options: { log?: Logger } = {}): Promise<CheckReport> {
  const log = options.log ?? silentLogger();
  const steps: StepResult[] = [];
  let stopped: string | undefined;
  let client: pg.Client | undefined;
  let ssl: ReturnType<typeof tlsOptions> = false;
  /** Whether the server took the startup settings (a pooler may refuse them). */
  let startupOptions = true;
  let pooler: PoolerReport | undefined;

  async function step(name: StepName, fn: () => Promise<{ status?: StepStatus; detail: string } | string>): Promise<void> {
    if (stopped) {
      steps.push({ step: name, title: TITLES[name], status: 'skip', ms: 0, detail: `not run: ${stopped} failed` });
      return;
    }
    const started = performance.now();
    try {
      const r = await fn();
      const { status = 'pass', detail } = typeof r === 'string' ? { detail: r } : r;
      steps.push({ step: name, title: TITLES[name], status, ms: Math.round(performance.now() - started), detail });
    } catch (err) {
      const f = failureOf(err, cfg);
      steps.push({
        step: name,
        title: TITLES[name],
        status: 'fail',
        ms: Math.round(performance.now() - started),
        detail: f.message,
        code: f.code,
        ...(f.fix ? { fix: f.fix } : {}),
      });
      stopped = TITLES[name];
    }
  }

  // Config problems (an unreadable certificate or key, a wrong passphrase) are
  // thrown from here, before any step: they are the config's fault (exit 2).
  const cfg = await loadConfigFiles(given);
  tlsOptions(cfg);
  const t = cfg.ssh_tunnel;
  // ssh2 is loaded only for a destination with a tunnel (see open-tunnel.ts).
  const tunnel = t
    ? new (await import('./tunnel.js')).Tunnel(t, {
        target: { host: cfg.host, port: cfg.port },
        log,
        connectTimeoutMs: cfg.connect_timeout_ms,
        reconnectAttempts: 0,
        reportUnpinned: true,
      })
    : undefined;

  /** A raw connection to the server: through the tunnel, or TCP. */
  async function rawSocket(): Promise<Duplex> {
    if (tunnel) {
      let timedOut = false;
      const forwarding = tunnel.forward();
      // A channel that opens after the deadline is closed at once.
      void forwarding.then(
        (ch) => timedOut && ch.close(),
        () => undefined,
      );
      return withTimeout(forwarding, cfg.connect_timeout_ms, () => (timedOut = true));
    }
    const sock: Socket = netConnect({ host: cfg.host, port: cfg.port });
    await withTimeout(Promise.race([once(sock, 'connect'), once(sock, 'error').then(([e]) => Promise.reject(e))]), cfg.connect_timeout_ms, () =>
      sock.destroy(),
    );
    return sock;
  }

  const u = quoteIdent(cfg.user);
  const d = quoteIdent(cfg.database);
  const s = quoteIdent(cfg.schema);

  try {
    if (t && tunnel) {
      await step('tunnel', async () => {
        await tunnel.open();
        return `${t.user}@${t.host}:${t.port}; host key ${tunnel.fingerprint} matches the pin`;
      });
    }

    await step('reach', async () => {
      const parts: string[] = [];
      if (!tunnel && isIP(cfg.host) === 0) {
        const addrs = await lookup(cfg.host, { all: true });
        parts.push(`${cfg.host} is ${addrs.map((a) => a.address).join(', ')}`);
      }
      const sock = await rawSocket();
      sock.destroy();
      parts.push(tunnel ? `the bastion reaches ${cfg.host}:${cfg.port}` : `TCP connection to ${cfg.host}:${cfg.port}`);
      return parts.join('; ');
    });

    await step('tls', async () => {
      if (cfg.sslmode === 'disable') {
        return { status: 'warn', detail: 'sslmode is disable: the connection is not encrypted' };
      }
      const sock = await rawSocket();
      try {
        const answer = await withTimeout(sslRequest(sock), cfg.connect_timeout_ms, () => sock.destroy());
        if (answer !== 'S') {
          if (cfg.sslmode === 'prefer') return { status: 'warn', detail: 'the server does not offer TLS: connecting unencrypted (sslmode is prefer)' };
          throw new Error('The server does not support SSL connections');
        }
        const opts = tlsOptions(cfg) as Exclude<ReturnType<typeof tlsOptions>, false>;
        let secure: TLSSocket | undefined;
        try {
          secure = tlsConnect({ ...opts, socket: sock });
          await withTimeout(Promise.race([once(secure, 'secureConnect'), once(secure, 'error').then(([e]) => Promise.reject(e))]), cfg.connect_timeout_ms, () =>
            secure?.destroy(),
          );
        } catch (err) {
          if (cfg.sslmode === 'prefer') {
            return { status: 'warn', detail: `the TLS handshake failed (${(err as Error).message}): sslmode prefer falls back to an unencrypted connection` };
          }
          throw err;
        }
        ssl = opts;
        const cipher = secure.getCipher();
        const protocol = secure.getProtocol();
        const verified =
          cfg.sslmode === 'verify-full'
            ? `certificate verified for ${tlsServerName(cfg)}`
            : opts.rejectUnauthorized
              ? 'certificate chain verified (host name not checked)'
              : `certificate not verified (sslmode is ${cfg.sslmode})`;
        secure.destroy();
        return {
          status: opts.rejectUnauthorized ? 'pass' : 'warn',
          detail: `${protocol ?? 'TLS'} ${cipher.name}; ${verified}`,
        };
      } finally {
        sock.destroy();
      }
    });

    let dbMissing: unknown;
    const connect = async (): Promise<pg.Client> => {
      const c = new GuardedClient(clientConfig(cfg, ssl, tunnel, startupOptions));
      c.on('error', () => undefined);
      try {
        await c.connect();
        setTransactionSettings(c, transactionSettingsSql(cfg));
        return c;
      } catch (err) {
        await c.end().catch(() => undefined);
        throw err;
      }
    };
    await step('auth', async () => {
      try {
        client = await connect().catch((err: unknown) => {
          if (!isStartupParameterRejected(err)) throw err;
          startupOptions = false;
          return connect();
        });
      } catch (err) {
        // PostgreSQL authenticates before it looks the database up: 3D000 means the credentials were right.
        if (sqlState(err) !== '3D000') throw err;
        dbMissing = err;
      }
      return `logged in as ${cfg.user}`;
    });

    await step('database', async () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the login step's error, rethrown
      if (dbMissing) throw dbMissing;
      return `connected to ${cfg.database}`;
    });

    await step('version', async () => {
      const { rows } = await client!.query<{ n: string; v: string }>(
        `SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v`,
      );
      const verdict = judgeVersion(Number(rows[0]!.n), rows[0]!.v);
      if (verdict.status === 'fail') throw new StepFailure('server_too_old', verdict.detail, 'upgrade the server to PostgreSQL 13 or later');
      return verdict;
    });

    await step('pooler', async () => {
      pooler = await detectPooler(clientConfig(cfg, ssl, tunnel, startupOptions), !startupOptions);
      const seen = pooler.evidence.join('; ');
      if (pooler.mode === 'none') return 'none detected: the backend stayed the same between transactions';
      if (pooler.mode === 'session') return `a pooler in session mode (${seen}): session state follows the connection`;
      const fix = directConnectionHint(cfg.host, cfg.port);
      if (pooler.mode === 'statement')
        throw new StepFailure('pooler_unsupported', `a pooler in statement mode: ${seen}; pgland lands every batch in one transaction`, fix);
      return { status: 'warn', detail: `a pooler in transaction mode: ${seen}. pgland works through it (leases, per-transaction settings); fix: ${fix}` };
    });

    await step('schema', async () => {
      const c = client!;
      const { rows } = await c.query<{ usage: boolean; create: boolean; owner: string }>(
        `SELECT has_schema_privilege(oid, 'USAGE') AS usage, has_schema_privilege(oid, 'CREATE') AS create, pg_get_userbyid(nspowner) AS owner
         FROM pg_namespace WHERE nspname = $1`,
        [cfg.schema],
      );
      const ns = rows[0];
      if (!ns) {
        const { rows: r } = await c.query<{ ok: boolean }>(`SELECT has_database_privilege(current_database(), 'CREATE') AS ok`);
        if (r[0]!.ok) return `schema ${cfg.schema} does not exist yet; ${cfg.user} may create it (the first load does)`;
        throw new StepFailure(
          'schema_create_denied',
          `schema ${cfg.schema} does not exist and ${cfg.user} lacks CREATE on database ${cfg.database}`,
          `GRANT CREATE ON DATABASE ${d} TO ${u};  -- or create it for pgland: CREATE SCHEMA ${s}; GRANT ALL ON SCHEMA ${s} TO ${u};`,
        );
      }
      const missing = [!ns.usage && 'USAGE', !ns.create && 'CREATE'].filter(Boolean);
      if (missing.length > 0) {
        throw new StepFailure(
          'permission_denied',
          `${cfg.user} lacks ${missing.join(' and ')} on schema ${cfg.schema} (owned by ${ns.owner})`,
          `GRANT ALL ON SCHEMA ${s} TO ${u};`,
        );
      }
      // Tables already there (an earlier install, another writer): pgland writes them and, for schema changes, alters them.
      const { rows: tables } = await c.query<{ name: string; sel: boolean; ins: boolean; upd: boolean; del: boolean; owner: boolean }>(
        `SELECT c.relname AS name,
                has_table_privilege(c.oid, 'SELECT') AS sel, has_table_privilege(c.oid, 'INSERT') AS ins,
                has_table_privilege(c.oid, 'UPDATE') AS upd, has_table_privilege(c.oid, 'DELETE') AS del,
                pg_has_role(c.relowner, 'USAGE') AS owner
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
        [cfg.schema],
      );
      const denied = tables.filter((t) => !(t.sel && t.ins && t.upd && t.del));
      if (denied.length > 0) {
        const names = denied.map((t) => qualify(cfg.schema, t.name));
        throw new StepFailure(
          'permission_denied',
          `permission denied for table${denied.length > 1 ? 's' : ''} ${names.slice(0, 5).join(', ')}${denied.length > 5 ? ` and ${denied.length - 5} more` : ''}: ${cfg.user} may not read and write ${denied.length > 1 ? 'them' : 'it'}`,
          `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${u};`,
        );
      }
      const notOwned = tables.filter((t) => !t.owner);
      if (notOwned.length > 0) {
        return {
          status: 'warn',
          detail: `schema ${cfg.schema} exists; ${notOwned.length} table(s) there are not owned by ${cfg.user} (${notOwned
            .slice(0, 3)
            .map((t) => t.name)
            .join(', ')}): new fields cannot be added to them`,
        };
      }
      return `schema ${cfg.schema} exists; ${cfg.user} may create tables in it`;
    });

    await step('temporary', async () => {
      const { rows } = await client!.query<{ ok: boolean }>(`SELECT has_database_privilege(current_database(), 'TEMPORARY') AS ok`);
      if (!rows[0]!.ok) {
        throw new StepFailure(
          'temp_denied',
          `${cfg.user} lacks TEMPORARY on database ${cfg.database}: pgland stages every batch in a temporary table`,
          `GRANT TEMPORARY ON DATABASE ${d} TO ${u};`,
        );
      }
      return `${cfg.user} may create temporary tables`;
    });

    await step('write', async () => {
      const c = client!;
      const table = qualify(cfg.schema, `_pgland_check_${randomBytes(4).toString('hex')}`);
      await begin(c);
      try {
        // Only when missing: CREATE SCHEMA IF NOT EXISTS wants CREATE on the database even when the schema exists.
        const { rowCount } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [cfg.schema]);
        if (!rowCount) await c.query(`CREATE SCHEMA ${s}`);
        await c.query(`CREATE TEMP TABLE _pgland_check_stage (id text, v text) ON COMMIT DROP`);
        const copy = c.query(copyFrom(`COPY _pgland_check_stage (id, v) FROM STDIN`));
        copy.end('probe\tpgland check\n');
        await Promise.race([once(copy, 'finish'), once(copy, 'error').then(([e]) => Promise.reject(e))]);
        await c.query(`CREATE TABLE ${table} (id text PRIMARY KEY, v text)`);
        const merged = await c.query(
          `INSERT INTO ${table} (id, v) SELECT id, v FROM _pgland_check_stage ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v RETURNING id`,
        );
        if (merged.rowCount !== 1) throw new StepFailure('write_failed', `the probe merge wrote ${merged.rowCount} rows, not 1`);
        await c.query(`DROP TABLE ${table}`);
      } finally {
        // Nothing of the probe stays, not even a schema it had to create.
        await c.query('ROLLBACK').catch(() => undefined);
      }
      return 'temporary table, COPY of one row, merge into a table in the schema, drop: all rolled back';
    });
  } finally {
    await client?.end().catch(() => undefined);
    await tunnel?.close();
  }

  return {
    ok: steps.every((st) => st.status !== 'fail'),
    target: {
      host: cfg.host,
      port: cfg.port,
      database: cfg.database,
      user: cfg.user,
      schema: cfg.schema,
      sslmode: cfg.sslmode,
      ...(cfg.ssh_tunnel ? { bastion: `${cfg.ssh_tunnel.user}@${cfg.ssh_tunnel.host}:${cfg.ssh_tunnel.port}` } : {}),
    },
    ...(pooler ? { pooler } : {}),
    steps,
  };
}
