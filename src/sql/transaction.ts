import type pg from 'pg';

/** Runs fn between BEGIN and COMMIT on one connection; ROLLBACK when it throws. */
export async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
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
