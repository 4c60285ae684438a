import type pg from 'pg';
import { PglandError } from '../errors.js';
import { GuardedClient, type GuardedClientConfig } from './client.js';

/**
 * Connection poolers (PgBouncer, Supavisor, Neon's and RDS Proxy's) between
 * pgland and the database. In transaction mode each transaction of one client
 * connection may run on a different server connection, so session state
 * (advisory locks, SET, prepared statements, temporary tables) does not follow
 * the client. pgland needs none of it (docs/connecting.md, "Connection
 * poolers"), but says when it finds such a pooler: the direct connection is
 * still the better one.
 */

/**
 * none: a direct connection, as far as can be told; session: a pooler that
 * gives each client its own server connection (startup parameters gave it
 * away); transaction: server connections change between transactions;
 * statement: transactions are refused.
 */
export type PoolerMode = 'none' | 'session' | 'transaction' | 'statement';

export interface PoolerReport {
  mode: PoolerMode;
  /** What was seen, for the log and `pgland check`. */
  evidence: string[];
}

/** How long the second connection's query may wait for a server connection before that counts as pooling. */
const SECOND_QUERY_WAIT_MS = 1000;

/** PgBouncer refuses startup parameters it does not know (`options`, `statement_timeout`) unless told to ignore them. */
export function isStartupParameterRejected(err: unknown): boolean {
  return /unsupported startup parameter/i.test(String((err as { message?: string })?.message ?? ''));
}

/** PgBouncer in statement mode answers BEGIN with this. */
function isStatementModeRefusal(err: unknown): boolean {
  return /transaction blocks not allowed|statement pool mode/i.test(String((err as { message?: string })?.message ?? ''));
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

async function connected(config: GuardedClientConfig, Client: typeof GuardedClient): Promise<pg.Client> {
  const client = new Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/**
 * Tells a transaction-mode pooler from a direct connection with two client
 * connections A and B: A asks for its backend's pid; B opens a transaction,
 * which holds a server connection (the one A just used, when the pooler
 * hands out the idle one); A asks again. On a direct connection, or through
 * a session-mode pooler, A keeps its backend. Through a transaction-mode
 * pooler A's second query runs on another server connection, or waits until
 * B's transaction ends when the pooler has no other one: neither happens to a
 * direct connection. `startupRejected`: the first connection attempt was
 * refused for its startup parameters (a pooler, of whatever mode).
 */
export async function detectPooler(
  config: GuardedClientConfig,
  startupRejected: boolean,
  Client: typeof GuardedClient = GuardedClient,
  /** A connection already open with `config` (the probe's), used as A and ended here. */
  given?: pg.Client,
): Promise<PoolerReport> {
  const evidence: string[] = [];
  if (startupRejected) evidence.push("the server refused pgland's startup parameters (options, statement_timeout), as PgBouncer does");
  // B connects while A asks for its pid: across a link, round trips are most of the check's time.
  const connectingB = connected(config, Client);
  const a = await (given ? Promise.resolve(given) : connected(config, Client)).catch(async (err: unknown) => {
    await connectingB.then(
      (c) => c.end(),
      () => undefined,
    );
    throw err;
  });
  let b: pg.Client | undefined;
  try {
    const [first, bClient] = await Promise.allSettled([backendPid(a), connectingB]);
    if (bClient.status === 'fulfilled') b = bClient.value;
    if (first.status === 'rejected') throw first.reason;
    if (bClient.status === 'rejected') throw bClient.reason;
    const bc = bClient.value;
    try {
      // BEGIN and B's pid (which makes B's transaction hold a server connection) in one round trip.
      await bc.query('BEGIN; SELECT pg_backend_pid() AS pid');
    } catch (err) {
      if (!isStatementModeRefusal(err)) throw err;
      evidence.push(`a transaction was refused: ${(err as Error).message}`);
      return { mode: 'statement', evidence };
    }
    const firstPid = first.value;
    let waited = false;
    const second = backendPid(a);
    const timer = new Promise<'late'>((resolve) => setTimeout(resolve, SECOND_QUERY_WAIT_MS, 'late').unref());
    if ((await Promise.race([second, timer])) === 'late') waited = true;
    await bc.query('ROLLBACK');
    const again = await second;
    if (waited) {
      evidence.push(`a query waited for another client's transaction to end: server connections are shared between transactions`);
    } else if (again !== firstPid) {
      evidence.push(`the backend changed between two transactions of one connection (pid ${firstPid}, then ${again})`);
    }
    if (waited || again !== firstPid) return { mode: 'transaction', evidence };
    return { mode: startupRejected ? 'session' : 'none', evidence };
  } finally {
    await b?.end().catch(() => undefined);
    await a.end().catch(() => undefined);
  }
}

/** Whether session state may change under pgland between two of its transactions. */
export function isTransactionPooled(report: PoolerReport | undefined): boolean {
  return report?.mode === 'transaction' || report?.mode === 'statement';
}

/**
 * What to use instead of a pooled connection string. The host names follow
 * the usual providers' patterns; the direct string itself is the customer's.
 */
export function directConnectionHint(host: string, port: number): string {
  const parts = ["use the database's direct connection string instead of the pooled one"];
  if (port === 6543 || /pooler\.supabase\.com$/i.test(host))
    parts.push('Supabase: the direct connection (db.<project>.supabase.co, port 5432) or the session pooler (port 5432)');
  if (/-pooler\./i.test(host)) parts.push(`Neon: the same host without "-pooler" (${host.replace(/-pooler\./i, '.')})`);
  if (/\.proxy-[^.]+\.[^.]+\.rds\.amazonaws\.com$/i.test(host)) parts.push('RDS Proxy: the instance or cluster endpoint');
  return parts.join('; ');
}

/** A pooler pgland cannot work through: refused before anything is written. */
export function refusePooler(report: PoolerReport, host: string, port: number): PglandError {
  return new PglandError(
    'pooler_unsupported',
    `${host}:${port} is a connection pooler in statement mode, which refuses transactions: pgland lands every batch in one transaction`,
    {
      hint: `${directConnectionHint(host, port)}; or set the pooler to transaction or session mode`,
      context: { pooler: report.mode },
    },
  );
}
