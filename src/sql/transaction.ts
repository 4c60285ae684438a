import type pg from 'pg';

/**
 * What a connection's transactions begin with: BEGIN and the session
 * settings pgland relies on, as SET LOCAL (see transactionSettingsSql in
 * src/connection/pool.ts). Set per transaction so that they hold through a
 * transaction-mode connection pooler; one round trip, as a simple query.
 */
const beginSql = new WeakMap<pg.ClientBase, string>();

/** `settings`: semicolon-separated SET LOCAL statements, built from validated config only. */
export function setTransactionSettings(client: pg.ClientBase, settings: string): void {
  beginSql.set(client, settings ? `BEGIN; ${settings}` : 'BEGIN');
}

/** BEGIN, with the connection's SET LOCAL settings when it has any. */
export async function begin(client: pg.ClientBase): Promise<void> {
  await client.query(beginSql.get(client) ?? 'BEGIN');
}

/**
 * BEGIN (with the connection's settings) and the transaction's first
 * statement in one round trip: a simple query of several statements, so
 * `sql` carries its values written in (inlineParams, src/sql/inline.ts).
 * Returns the first statement's result. When it fails, the transaction is
 * open and aborted: the caller rolls back, as after any failed statement.
 */
export async function beginWith<R extends pg.QueryResultRow = pg.QueryResultRow>(client: pg.ClientBase, sql: string): Promise<pg.QueryResult<R>> {
  const results = (await client.query(`${beginSql.get(client) ?? 'BEGIN'}; ${sql}`)) as unknown as pg.QueryResult<R>[];
  return results[results.length - 1]!;
}

/** Runs fn between BEGIN and COMMIT on one connection; ROLLBACK when it throws. */
export async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await begin(client);
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // The rollback's own failure (a lost connection) must not hide the error.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
