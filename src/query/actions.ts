import pg from 'pg';
import { connectTarget } from '../connection/pool.js';
import { PglandError, sqlState } from '../errors.js';
import type { SourceConnection } from '../read/source.js';
import { explainQueryError, resultTooLarge, type QueryErrorContext } from './errors.js';
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from './limits.js';

/*
 * Query actions (the flow-automation seed's Query Rows / Insert / Update /
 * Delete / Execute Query): one statement with $1, $2 parameters, always by
 * the extended protocol (one statement, values never in the text).
 * `query` runs in a READ ONLY transaction, `exec` in a read-write one. Both
 * are bound by a statement timeout (default 60 s) set with SET LOCAL inside
 * that transaction, so that through a transaction-mode pooler it applies to
 * the statement and ends with it, never left on a server connection another
 * client gets next (docs/connecting.md). A statement that cannot run in a
 * transaction block (CREATE INDEX CONCURRENTLY, VACUUM) is refused there
 * before it starts, and `exec` then runs it alone. Both are bound by a
 * result cap (default 10 MB) too: rows are counted as they arrive, and past
 * the cap the statement is cancelled on the server, not read to its end.
 *
 * The connection an action used is closed, not returned to the pool: a
 * statement may change its session (SET ROLE, set_config(…, false), an open
 * BEGIN), and the next action must not inherit that.
 */

export { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from './limits.js';

export interface ActionOptions {
  /** Statement timeout in milliseconds (default 60,000). */
  timeoutMs?: number;
  /** Result cap in bytes of the rows' JSON (default 10 MB). */
  maxBytes?: number;
}

export interface Field {
  name: string;
  dataTypeID: number;
  /** The type as format_type() writes it. */
  type: string;
}

export interface QueryResult {
  rows: Record<string, unknown>[];
  rowCount: number;
  fields: Field[];
}

export interface ExecResult {
  /** Rows inserted, updated or deleted (or returned). */
  rowCount: number;
  /** The command tag's verb: INSERT, UPDATE, CREATE INDEX… */
  command: string;
  /** An INSERT … RETURNING: the first row's "id" (or its first column). */
  insertedId?: unknown;
  /** The rows a RETURNING clause gave. */
  rows?: Record<string, unknown>[];
  fields?: Field[];
}

/**
 * Values as JSON should show them: timestamps in ISO 8601 with the server's
 * microseconds (not a JavaScript Date's milliseconds), 64-bit integers as
 * numbers while they are exact.
 */
const TYPES = {
  getTypeParser(oid: number, format?: string): (text: string) => unknown {
    if (oid === 1184) return (t) => t.replace(' ', 'T').replace(/\+00$/, 'Z');
    if (oid === 1114) return (t) => t.replace(' ', 'T');
    if (oid === 1082) return (t) => t;
    if (oid === 20) return (t) => (Number.isSafeInteger(Number(t)) ? Number(t) : t);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function limitsOf(o: ActionOptions): { timeoutMs: number; maxBytes: number } {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new PglandError('config_invalid', `timeout ${timeoutMs} ms is not a positive whole number`);
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new PglandError('config_invalid', `result cap ${maxBytes} bytes is not a positive whole number`);
  return { timeoutMs, maxBytes };
}

function checkParams(params: unknown[]): void {
  params.forEach((p, i) => {
    if (typeof p === 'string' && p.includes('\0')) {
      throw new PglandError('invalid_parameter', `parameter $${i + 1} contains a NUL character, which PostgreSQL text cannot hold`, {
        hint: 'remove the NUL (\\u0000) from the value',
      });
    }
  });
}

/**
 * Opens the action's transaction with its statement timeout (SET LOCAL, by
 * set_config(…, true)); returns the server process that runs it, to cancel
 * the statement past the result cap. Inside the transaction that is the
 * right process even through a transaction-mode pooler, whose client
 * connections have process ids of its own making.
 */
async function beginWithTimeout(client: pg.PoolClient, begin: string, timeoutMs: number): Promise<number> {
  await client.query(begin);
  const { rows } = await client.query<{ pid: number }>("SELECT set_config('statement_timeout', $1, true), pg_backend_pid() AS pid", [String(timeoutMs)]);
  return rows[0]!.pid;
}

/** SQLSTATE 25001: "… cannot run inside a transaction block" (CREATE INDEX CONCURRENTLY, VACUUM, …), raised before the statement starts. */
const REFUSES_TRANSACTION = '25001';

/** Runs one statement, keeping rows until the cap; past it, cancels the statement on the server (process `pid`). */
async function capped(
  conn: SourceConnection,
  client: pg.PoolClient,
  pid: number,
  text: string,
  values: unknown[],
  ctx: QueryErrorContext,
): Promise<{ rows: Record<string, unknown>[]; fields: pg.FieldDef[]; rowCount: number; command: string }> {
  const rows: Record<string, unknown>[] = [];
  let bytes = 0;
  let over = false;
  const query = new pg.Query({ text, values, types: TYPES, queryMode: 'extended' } as pg.QueryConfig & { queryMode: 'extended' });
  query.on('row', (row: Record<string, unknown>) => {
    if (over) return;
    bytes += Buffer.byteLength(JSON.stringify(row)) + 1;
    if (bytes > ctx.maxBytes) {
      over = true;
      // From another connection: this one is busy receiving the rows.
      void conn.pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
      return;
    }
    rows.push(row);
  });
  const done = new Promise<pg.QueryResult>((resolve, reject) => {
    query.on('end', resolve);
    query.on('error', reject);
  });
  // A pg.Query: its result arrives through the events above (done), not as a promise.
  void client.query(query as unknown as pg.QueryConfig);
  try {
    const result = await done;
    if (over) throw resultTooLarge(ctx, rows.length);
    return { rows, fields: result.fields, rowCount: result.rowCount ?? rows.length, command: result.command };
  } catch (err) {
    if (over) throw resultTooLarge(ctx, rows.length);
    throw err;
  }
}

async function fieldsOf(client: pg.ClientBase, fields: pg.FieldDef[]): Promise<Field[]> {
  if (fields.length === 0) return [];
  const { rows } = await client.query<{ oid: number; name: string }>(
    'SELECT o.oid::int AS oid, format_type(o.oid, NULL) AS name FROM unnest($1::oid[]) AS o(oid)',
    [[...new Set(fields.map((f) => f.dataTypeID))]],
  );
  const names = new Map(rows.map((r) => [r.oid, r.name]));
  return fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, type: names.get(f.dataTypeID) ?? String(f.dataTypeID) }));
}

/** Runs a statement in a READ ONLY transaction and returns its rows: Query Rows. */
export async function runQuery(conn: SourceConnection, sql: string, params: unknown[] = [], options: ActionOptions = {}): Promise<QueryResult> {
  const { timeoutMs, maxBytes } = limitsOf(options);
  checkParams(params);
  const ctx: QueryErrorContext = { sql, action: 'query', timeoutMs, maxBytes, target: connectTarget(conn.config) };
  const client = await conn.pool.connect();
  try {
    const pid = await beginWithTimeout(client, 'BEGIN READ ONLY', timeoutMs);
    const r = await capped(conn, client, pid, sql, params, ctx);
    const fields = await fieldsOf(client, r.fields);
    await client.query('COMMIT');
    return { rows: r.rows, rowCount: r.rows.length, fields };
  } catch (err) {
    throw explainQueryError(err, ctx);
  } finally {
    client.release(true);
  }
}

/** Runs any statement (INSERT, UPDATE, DELETE, DDL): Execute Query; an INSERT … RETURNING id gives insertedId. */
export async function runExec(conn: SourceConnection, sql: string, params: unknown[] = [], options: ActionOptions = {}): Promise<ExecResult> {
  const { timeoutMs, maxBytes } = limitsOf(options);
  checkParams(params);
  const ctx: QueryErrorContext = { sql, action: 'exec', timeoutMs, maxBytes, target: connectTarget(conn.config) };
  const client = await conn.pool.connect();
  try {
    let r: Awaited<ReturnType<typeof capped>>;
    try {
      const pid = await beginWithTimeout(client, 'BEGIN', timeoutMs);
      r = await capped(conn, client, pid, sql, params, ctx);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (sqlState(err) !== REFUSES_TRANSACTION) throw err;
      r = await alone(conn, client, sql, params, ctx);
    }
    const out: ExecResult = { rowCount: r.rowCount, command: r.command ?? '' };
    if (r.fields.length > 0) {
      out.rows = r.rows;
      out.fields = await fieldsOf(client, r.fields);
      const first = r.rows[0];
      if (r.command === 'INSERT' && first) out.insertedId = 'id' in first ? first.id : first[r.fields[0]!.name];
    }
    return out;
  } catch (err) {
    throw explainQueryError(err, ctx);
  } finally {
    client.release(true);
  }
}

/**
 * A statement that refuses a transaction block, run as its own statement:
 * its timeout is then a session setting, set before it and reset after it
 * on this connection (which is closed after the action). On a direct
 * connection that is exact; through a transaction-mode pooler the setting
 * may reach another server connection than the statement
 * (docs/connecting.md says to run these on the direct connection).
 */
async function alone(
  conn: SourceConnection,
  client: pg.PoolClient,
  sql: string,
  params: unknown[],
  ctx: QueryErrorContext,
): Promise<Awaited<ReturnType<typeof capped>>> {
  await client.query("SELECT set_config('statement_timeout', $1, false)", [String(ctx.timeoutMs)]);
  try {
    return await capped(conn, client, (client as unknown as { processID: number }).processID, sql, params, ctx);
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
  }
}
