import type pg from 'pg';
import { GuardedClient, type GuardedClientConfig } from '../connection/client.js';
import { sleep } from '../connection/retry.js';
import { traitsOf } from '../connection/pool.js';
import { PglandError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { qualify } from '../sql/ident.js';
import { preparedIf } from '../sql/prepared.js';

export interface ObjectKey {
  schema: string;
  provider: string;
  customerId: string;
  object: string;
}

/** Polling for a held lease: from this, doubling up to the cap (no LISTEN: it is session state). */
const POLL_FIRST_MS = 25;
const POLL_MAX_MS = 500;

function describe(k: ObjectKey): string {
  return `${k.provider}/${k.customerId}/${k.object} in schema ${k.schema}`;
}

/** The error a run stops with once another run took its lease; nothing it had not committed lands. */
export function leaseLost(key: ObjectKey): PglandError {
  return new PglandError('lease_lost', `this run lost its lease on ${describe(key)}: another run took it over after it lapsed`, {
    hint: 'the run stopped without landing its open batch; batches committed before stay. Run it again; a loader that stalls longer than lease_ttl_ms loses its lease',
    context: { ...key },
  });
}

/**
 * Takes the lease row when it is absent, expired, or held by a backend that
 * is gone. A holder backend that is not visible with its start time (another
 * role's, without pg_read_all_stats) counts as alive.
 */
function takeLeaseSql(key: ObjectKey, token: string, ttlMs: number, holder = false): { text: string; values: unknown[] } {
  // `holder`: the statement's own backend is recorded as the holder (bind(), in the same round trip).
  const pid = holder ? 'pg_backend_pid()' : 'NULL::integer';
  const start = holder ? '(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())' : 'NULL::timestamptz';
  return {
    text: `INSERT INTO ${qualify(key.schema, '_pgland_leases')} AS l (provider, customer_id, object, token, expires_at, holder_pid, holder_start)
       VALUES ($1, $2, $3, $4::uuid, clock_timestamp() + $5 * interval '1 millisecond', ${pid}, ${start})
       ON CONFLICT (provider, customer_id, object) DO UPDATE
         SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at, taken_at = now(),
             holder_pid = EXCLUDED.holder_pid, holder_start = EXCLUDED.holder_start
         WHERE l.expires_at < clock_timestamp()
            OR (l.holder_pid IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM pg_stat_activity a
                   WHERE a.pid = l.holder_pid AND (a.backend_start = l.holder_start OR a.backend_start IS NULL)))`,
    values: [key.provider, key.customerId, key.object, token, ttlMs],
  };
}

/**
 * The lease of a run that is ONE transaction (a write-through), taken by a
 * statement of that transaction and released by another before its COMMIT:
 * no commit of its own, no heartbeat, no holder to record (if the backend
 * dies, the transaction and its lease row go with it). While the
 * transaction is open its row is locked: a run asking for the lease waits
 * for the COMMIT, and none can take it over. False when another run holds
 * it: the caller rolls back and waits for it with ObjectLease.take.
 */
export async function takeLeaseInTransaction(client: pg.ClientBase, key: ObjectKey, token: string, ttlMs: number): Promise<boolean> {
  const { rowCount } = await client.query(takeLeaseSql(key, token, ttlMs));
  return rowCount === 1;
}

/** The statement that ends a lease taken with takeLeaseInTransaction, in the same transaction. */
export function releaseLeaseSql(key: ObjectKey, token: string): { text: string; values: unknown[] } {
  return {
    text: `DELETE FROM ${qualify(key.schema, '_pgland_leases')} WHERE provider = $1 AND customer_id = $2 AND object = $3 AND token = $4::uuid`,
    values: [key.provider, key.customerId, key.object, token],
  };
}

/**
 * Two runs of one (destination, tenant, object) never interleave: a run holds
 * a lease, a row of _pgland_leases, for its whole run. Not a session lock,
 * so that it holds through a transaction-mode pooler (docs/sync-semantics.md,
 * "The object's lease"):
 * - taken in one statement, when the row is absent, expired, or (direct
 *   connections only) held by a backend that no longer exists;
 * - renewed by a heartbeat every third of its time to live, on a connection
 *   of its own, and by every write transaction of the run;
 * - checked in every write transaction, last before COMMIT (the fence): the
 *   transaction renews the row only while it carries this run's token, and
 *   keeps it locked until COMMIT, so a run that lost its lease commits nothing;
 * - deleted when the run ends. A killed loader's lease lapses after
 *   lease_ttl_ms; on a direct connection the next run takes it over as soon
 *   as the holder's backend is gone.
 */
export class ObjectLease {
  private heartbeat: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private lostError: PglandError | undefined;
  private released = false;
  /** The final transaction's fence was handed out (releasingFenceCte): a renewal's answer no longer counts. */
  private releasing = false;
  /** The connection recorded as the holder when the lease was taken (takeOn): bind() on it has nothing to do. */
  private boundTo: pg.ClientBase | undefined;
  private readonly table: string;
  private readonly ids: unknown[];

  private constructor(
    private readonly pool: pg.Pool,
    readonly key: ObjectKey,
    readonly token: string,
    private readonly ttlMs: number,
    /** On a direct connection (no pooler): the holder is recorded, and statements may be prepared (sql/prepared.ts). */
    readonly direct: boolean,
    private readonly log: Logger,
    private readonly ownConnection?: GuardedClientConfig,
  ) {
    this.table = qualify(key.schema, '_pgland_leases');
    this.ids = [key.provider, key.customerId, key.object, token];
  }

  /**
   * Takes the object's lease for the run `token`, waiting up to timeoutMs for
   * the holder to finish (object_locked after that), and starts its heartbeat.
   * Between attempts no connection is held.
   */
  static async take(pool: pg.Pool, key: ObjectKey, token: string, timeoutMs: number, log: Logger = silentLogger()): Promise<ObjectLease> {
    const { pooler, leaseTtlMs, clientConfig } = traitsOf(pool);
    const lease = new ObjectLease(pool, key, token, leaseTtlMs, pooler.mode === 'none', log, clientConfig);
    const deadline = Date.now() + timeoutMs;
    for (let wait = POLL_FIRST_MS; ; wait = Math.min(wait * 2, POLL_MAX_MS)) {
      if (await lease.tryTake()) {
        lease.startHeartbeat();
        return lease;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      // Jitter: waiting runs do not all ask at once.
      await sleep(Math.min(left, wait / 2 + Math.random() * wait));
    }
    throw new PglandError('object_locked', `another run is loading ${describe(key)}; waited ${timeoutMs} ms`, {
      hint: 'runs of one object take turns: retry later, or raise lock_timeout_ms; the list of runs shows the running one',
      context: { ...key },
    });
  }

  /**
   * take(), first asked on the run's own connection `client`, which a direct
   * connection records as the holder in the same statement: bind() is then a
   * round trip fewer. When the lease is held, `client` goes back to the pool
   * (a run waiting for a lease holds no connection) and take() waits for it;
   * the caller then connects and binds as before. Answers the lease, and
   * `client` when it is still the caller's.
   */
  static async takeOn(
    pool: pg.Pool,
    client: pg.PoolClient,
    key: ObjectKey,
    token: string,
    timeoutMs: number,
    log: Logger = silentLogger(),
  ): Promise<{ lease: ObjectLease; client: pg.PoolClient | undefined }> {
    const { pooler, leaseTtlMs, clientConfig } = traitsOf(pool);
    const lease = new ObjectLease(pool, key, token, leaseTtlMs, pooler.mode === 'none', log, clientConfig);
    // A failure of the connection reaches the query below; 'error' must not be left unheard meanwhile.
    if (client.listenerCount('error') === 0) client.on('error', () => undefined);
    let taken: boolean;
    try {
      const { rowCount } = await client.query(preparedIf(takeLeaseSql(key, token, leaseTtlMs, lease.direct), lease.direct));
      taken = rowCount === 1;
    } catch (err) {
      client.release(true);
      throw err;
    }
    if (taken) {
      if (lease.direct) lease.boundTo = client;
      lease.startHeartbeat();
      return { lease, client };
    }
    client.release();
    return { lease: await ObjectLease.take(pool, key, token, timeoutMs, log), client: undefined };
  }

  /**
   * One statement, one implicit transaction: the row lock of ON CONFLICT
   * serialises runs asking at once.
   */
  private async tryTake(): Promise<boolean> {
    const { rowCount } = await this.pool.query(preparedIf(takeLeaseSql(this.key, this.token, this.ttlMs), this.direct));
    return rowCount === 1;
  }

  /** Renews the lease on `client` (in its transaction, if one is open); false when this run no longer holds it. */
  private async renew(client: pg.ClientBase | pg.Pool): Promise<boolean> {
    const { rowCount } = await client.query(
      `UPDATE ${this.table} SET expires_at = clock_timestamp() + $5 * interval '1 millisecond'
        WHERE provider = $1 AND customer_id = $2 AND object = $3 AND token = $4::uuid`,
      [...this.ids, this.ttlMs],
    );
    return rowCount === 1;
  }

  private lose(): PglandError {
    this.lostError ??= leaseLost(this.key);
    this.stopHeartbeat();
    return this.lostError;
  }

  /**
   * The fence: call last in a write transaction, before COMMIT. Throws
   * lease_lost (the caller rolls back) when another run took the lease over.
   */
  async fence(client: pg.ClientBase): Promise<void> {
    if (this.lostError) throw this.lostError;
    if (!(await this.renew(client))) throw this.lose();
  }

  /**
   * The fence as part of a statement the transaction sends anyway, a round
   * trip fewer: a data-modifying WITH entry named `fence` that renews the
   * lease while it carries this run's token (locking its row until COMMIT),
   * its values numbered from `$firstParam`. The statement reads
   * `(SELECT count(*) FROM fence)` and passes it to fenceHeld() before
   * COMMIT. Throws at once when the lease is known lost.
   */
  fenceCte(firstParam: number): { text: string; values: unknown[] } {
    if (this.lostError) throw this.lostError;
    const p = (i: number): string => `$${firstParam + i}`;
    return {
      text: `fence AS (UPDATE ${this.table} SET expires_at = clock_timestamp() + ${p(4)} * interval '1 millisecond'
        WHERE provider = ${p(0)} AND customer_id = ${p(1)} AND object = ${p(2)} AND token = ${p(3)}::uuid RETURNING 1)`,
      values: [...this.ids, this.ttlMs],
    };
  }

  /**
   * The fence of a run's final transaction, which also ends the lease: the
   * row is deleted while it carries this run's token (locked until COMMIT
   * like a renewal), so the run's outcome and the lease's end commit together
   * and the next run need not wait for a separate release. The heartbeat
   * stops first: the transaction is short, and a renewal after the COMMIT
   * would find the row gone. Call committedRelease() after the COMMIT.
   */
  async releasingFenceCte(firstParam: number): Promise<{ text: string; values: unknown[] }> {
    if (this.lostError) throw this.lostError;
    this.stopHeartbeat();
    // A renewal in flight is not waited for, and its answer no longer
    // counts: in a transaction that already fenced (a run's last batch, a
    // held HTTP run) it waits for this transaction's own lock on the row,
    // and waiting for it here would wait for ever.
    this.releasing = true;
    const p = (i: number): string => `$${firstParam + i}`;
    return {
      text: `fence AS (DELETE FROM ${this.table}
        WHERE provider = ${p(0)} AND customer_id = ${p(1)} AND object = ${p(2)} AND token = ${p(3)}::uuid RETURNING 1)`,
      values: this.ids,
    };
  }

  /** The final transaction that deleted the lease (releasingFenceCte) committed: release() has nothing left to do. */
  committedRelease(): void {
    this.released = true;
  }

  /** What a statement with fenceCte() read: throws lease_lost (the caller rolls back) unless the lease was renewed. */
  fenceHeld(renewed: number | string | undefined): void {
    if (Number(renewed) !== 1) throw this.lose();
  }

  /**
   * Records the run's own connection as the holder, on a direct connection
   * only: through a pooler the server connection is not the run's, and it
   * outlives a killed loader (or goes while the loader lives).
   */
  async bind(client: pg.ClientBase): Promise<void> {
    if (this.lostError) throw this.lostError;
    if (!this.direct || client === this.boundTo) return;
    const { rowCount } = await client.query(
      preparedIf(
        {
          text: `UPDATE ${this.table}
          SET holder_pid = pg_backend_pid(), holder_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())
        WHERE provider = $1 AND customer_id = $2 AND object = $3 AND token = $4::uuid`,
          values: this.ids,
        },
        true,
      ),
    );
    if (rowCount !== 1) throw this.lose();
  }

  /**
   * A heartbeat's renewal, on a connection of its own: the run may hold
   * every connection of the pool (its own and its helper's, both in a COPY
   * while the input is slow), and others' runs the rest.
   */
  private async beat(): Promise<boolean> {
    if (!this.ownConnection) return this.renew(this.pool);
    const client = new GuardedClient(this.ownConnection);
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await this.renew(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private startHeartbeat(): void {
    this.heartbeat = setInterval(
      () => {
        if (this.renewing) return;
        this.renewing = this.beat()
          .then((held) => {
            if (held || this.releasing) return;
            // The run's next write transaction fails on the fence.
            this.log.error({ ...this.key }, 'the lease on this object was taken over by another run: this run stops');
            this.lose();
          })
          .catch((err: unknown) => this.log.warn({ err: { message: (err as Error).message } }, 'could not renew the lease: trying again'))
          .finally(() => (this.renewing = undefined));
      },
      Math.max(100, Math.floor(this.ttlMs / 3)),
    );
    this.heartbeat.unref();
  }

  /** After a final transaction failed (releasingFenceCte stopped the heartbeat): the run goes on, and so does its lease. */
  resumeHeartbeat(): void {
    this.releasing = false;
    if (this.heartbeat || this.released || this.lostError) return;
    this.startHeartbeat();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Ends the lease; a failure here only leaves it to lapse. */
  async release(): Promise<void> {
    this.stopHeartbeat();
    await this.renewing;
    if (this.released) return;
    await this.pool
      .query(`DELETE FROM ${this.table} WHERE provider = $1 AND customer_id = $2 AND object = $3 AND token = $4::uuid`, this.ids)
      .catch((err: unknown) => this.log.warn({ err: { message: (err as Error).message } }, 'could not release the lease: it lapses after lease_ttl_ms'));
  }
}
