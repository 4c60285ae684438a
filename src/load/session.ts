import type pg from 'pg';
import { backoff, sleep } from '../connection/retry.js';
import { PglandError } from '../errors.js';
import { acquireObjectLock, releaseObjectLock, type ObjectKey } from './lock.js';

const HELPER_RECONNECT_WAIT_MS = 10_000;

/**
 * One of a run's connections. The run's own holds the object's lock (`key`);
 * a helper that only stages batches (pipeline.ts) holds none. After a lost
 * connection it reconnects with backoff and, with a key, takes the lock again
 * before anything is replayed.
 */
export class RunSession {
  client: pg.PoolClient | undefined;
  constructor(
    private readonly pool: pg.Pool,
    private readonly lockTimeoutMs: number,
    private readonly key?: ObjectKey,
  ) {}

  async open(client?: pg.PoolClient): Promise<pg.PoolClient> {
    client ??= this.key ? await this.pool.connect() : await this.helperConnection();
    // A checked-out client whose connection dies emits 'error'; the failure
    // also reaches the query in flight, which is where it is handled.
    if (client.listenerCount('error') === 0) client.on('error', () => undefined);
    if (this.key) {
      try {
        await acquireObjectLock(client, this.key, this.lockTimeoutMs);
      } catch (err) {
        client.release(true);
        throw err;
      }
    }
    this.client = client;
    return client;
  }

  /**
   * A helper reconnecting must not wait for a pool connection for ever: the
   * other connections may belong to runs whose helpers wait as well.
   */
  private async helperConnection(): Promise<pg.PoolClient> {
    const client = await connectIfFree(this.pool, HELPER_RECONNECT_WAIT_MS);
    if (client) return client;
    throw new PglandError('pool_exhausted', `no connection of the pool came free within ${HELPER_RECONNECT_WAIT_MS} ms to stage the next batch on`, {
      hint: 'other runs hold every connection of the pool; run fewer objects at once, or open the destination with a larger pool',
    });
  }

  async reopen(attempt: number): Promise<pg.PoolClient> {
    this.client?.release(true);
    this.client = undefined;
    await sleep(backoff(attempt));
    return this.open();
  }

  async close(broken: boolean): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (!broken && this.key) {
      try {
        await releaseObjectLock(client, this.key);
      } catch {
        broken = true;
      }
    }
    // A connection whose state is in doubt is destroyed: that also drops the lock.
    client.release(broken);
  }
}

/**
 * A pool connection if one is free within `waitMs`, else undefined. A run
 * asks for its helper this way: runs that each hold one connection and wait
 * for a second could otherwise wait for each other forever.
 */
export async function connectIfFree(pool: pg.Pool, waitMs: number): Promise<pg.PoolClient | undefined> {
  const connecting = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, waitMs, undefined)));
  try {
    const client = await Promise.race([connecting, late]);
    if (client) return client;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
  // Too late: give the connection back whenever it comes.
  connecting.then((c) => c.release(), () => undefined);
  return undefined;
}
