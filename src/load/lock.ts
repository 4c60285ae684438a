import type pg from 'pg';
import { PglandError, sqlState } from '../errors.js';

export interface ObjectKey {
  schema: string;
  provider: string;
  customerId: string;
  object: string;
}

function lockText(k: ObjectKey): string {
  return 'pgland.object.' + JSON.stringify([k.schema, k.provider, k.customerId, k.object]);
}

/**
 * Two runs on the same (destination, tenant, object) never interleave: each
 * holds a session-level advisory lock for its whole run. Session-level, so that
 * a loader killed with SIGKILL leaves no stale lock: the server releases it
 * when the connection goes. The wait is bounded by lock_timeout.
 */
export async function acquireObjectLock(client: pg.PoolClient, key: ObjectKey, timeoutMs: number): Promise<void> {
  const describe = `${key.provider}/${key.customerId}/${key.object} in schema ${key.schema}`;
  if (timeoutMs === 0) {
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [lockText(key)]);
    if (rows[0]!.ok) return;
  } else {
    await client.query(`SELECT set_config('lock_timeout', $1, false)`, [`${timeoutMs}ms`]);
    try {
      await client.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [lockText(key)]);
      return;
    } catch (err) {
      if (sqlState(err) !== '55P03') throw err;
    } finally {
      await client.query(`SELECT set_config('lock_timeout', '0', false)`).catch(() => undefined);
    }
  }
  throw new PglandError('object_locked', `another run is loading ${describe}; waited ${timeoutMs} ms`, {
    hint: 'runs of one object take turns: retry later, or raise lock_timeout_ms; `pgland runs` shows the running one',
    context: { ...key },
  });
}

export async function releaseObjectLock(client: pg.PoolClient, key: ObjectKey): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [lockText(key)]);
}
