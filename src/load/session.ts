import type pg from 'pg';
import { backoff, sleep } from '../connection/retry.js';
import { PglandError } from '../errors.js';
import type { ObjectLease } from './lease.js';

const HELPER_RECONNECT_WAIT_MS = 10_000;

/**
 * One of a run's connections. The run's own writes under the object's lease
 * (lease.ts), which it records as its holder on a direct connection; a helper
 * that stages batches, or COPYs a first load's batches fenced by the lease in
 * their transactions (pipeline.ts), has none. After a lost connection it
 * reconnects with backoff and, with a lease, checks it still holds it before
 * anything is replayed. The lease is not the connection's: a new connection
 * (or, through a pooler, a new server connection) does not lose it.
 */
export class RunSession {
  client: pg.PoolClient | undefined;
  constructor(
    private readonly pool: pg.Pool,
    private readonly lease?: ObjectLease,
  ) {}

  async open(client?: pg.PoolClient): Promise<pg.PoolClient> {
    client ??= this.lease ? await this.pool.connect() : await this.helperConnection();
    // A checked-out client whose connection dies emits 'error'; the failure
    // also reaches the query in flight, which is where it is handled.
    if (client.listenerCount('error') === 0) client.on('error', () => undefined);
    if (this.lease) {
      try {
        await this.lease.bind(client);
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

  /** Gives the connection back (destroyed when its state is in doubt); the lease is the run's to release. */
  async close(broken: boolean): Promise<void> {
    const client = this.client;
    this.client = undefined;
    client?.release(broken);
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
  connecting.then(
    (c) => c.release(),
    () => undefined,
  );
  return undefined;
}
