import type pg from 'pg';
import type { ConnectionGate } from '../../connection/gate.js';
import { PglandError } from '../../errors.js';
import type { Logger } from '../../log.js';

/** How long a connection waits for a slot before its run fails (and its job is retried later). */
const MAX_WAIT_MS = 10 * 60_000;
const POLL_MS = { first: 50, max: 1000 };

/**
 * The per-destination connection budget of `pgland serve` (max_connections
 * in a destination's config): however many worker processes serve one
 * destination, at most that many connections to it are open at once, so
 * that a customer's database never answers "too many connections" because of
 * pgland. A connection waits for a free slot instead.
 *
 * Slot i of a destination is the session advisory lock (hashtext of the
 * destination's id, i) in the control database, held on one connection of
 * this process kept for the purpose. A process that dies loses that
 * connection, and the server frees its slots with it: nothing to expire or
 * clean up. (If that connection alone is lost, this process's open
 * connections outlive their slots until they close: the budget can be
 * exceeded for as long, and a warning is logged.)
 */
export class ConnectionBudget {
  private holder: Promise<pg.PoolClient> | undefined;
  /** Slots this process holds, per destination: an advisory lock is re-entrant, so the server would grant them again. */
  private readonly held = new Map<string, Set<number>>();
  /** One statement at a time on the holder connection. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly control: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** The gate of one destination's connections, `max` of them at most. */
  gate(destinationId: string, max: number): ConnectionGate {
    return { acquire: () => this.acquire(destinationId, max), acquireAll: (count) => this.acquireAll(destinationId, max, count) };
  }

  private connection(): Promise<pg.PoolClient> {
    if (!this.holder) {
      const holder = this.control.connect().then((c) => {
        c.on('error', (err: Error) => {
          this.log.warn(
            { err: { message: err.message } },
            'the connection holding the connection budget was lost: open connections no longer count until they close',
          );
          if (this.holder === holder) this.holder = undefined;
          this.held.clear();
        });
        return c;
      });
      holder.catch(() => (this.holder = undefined));
      this.holder = holder;
    }
    return this.holder;
  }

  private run<T>(statement: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => statement(await this.connection()));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async tryTake(destinationId: string, max: number): Promise<number | undefined> {
    const mine = this.held.get(destinationId) ?? new Set<number>();
    if (mine.size >= max) return undefined;
    return this.run(async (c) => {
      // Slots in order; the first one no other process holds is taken (LIMIT 1 stops the scan there).
      const { rows } = await c.query<{ slot: number }>(
        `SELECT s AS slot FROM generate_series(0, $2::int - 1) AS s
          WHERE s <> ALL($3::int[]) AND pg_try_advisory_lock(hashtext('pgland.connections:' || $1), s)
          LIMIT 1`,
        [destinationId, max, [...mine]],
      );
      const slot = rows[0]?.slot;
      if (slot === undefined) return undefined;
      mine.add(slot);
      this.held.set(destinationId, mine);
      return slot;
    });
  }

  private async acquire(destinationId: string, max: number): Promise<() => void> {
    const deadline = Date.now() + MAX_WAIT_MS;
    for (let wait = POLL_MS.first; ; wait = Math.min(POLL_MS.max, wait * 2)) {
      if (this.closed) throw new PglandError('connection_budget_closed', 'the service is stopping');
      const slot = await this.tryTake(destinationId, max);
      if (slot !== undefined) return this.releaser(destinationId, slot);
      if (Date.now() + wait > deadline) {
        throw new PglandError(
          'connection_budget_exhausted',
          `no connection to the destination freed within ${MAX_WAIT_MS / 60_000} minutes (max_connections ${max})`,
          {
            hint: "raise the destination's max_connections (within the role's CONNECTION LIMIT), or run fewer workers or schedules against it at once",
          },
        );
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private async acquireAll(destinationId: string, max: number, count: number): Promise<(() => void)[]> {
    const deadline = Date.now() + MAX_WAIT_MS;
    for (let wait = POLL_MS.first; ; wait = Math.min(POLL_MS.max, wait * 2)) {
      if (this.closed) throw new PglandError('connection_budget_closed', 'the service is stopping');
      const taken: number[] = [];
      for (let i = 0; i < count; i++) {
        const slot = await this.tryTake(destinationId, max);
        if (slot === undefined) break;
        taken.push(slot);
      }
      if (taken.length === count) return taken.map((slot) => this.releaser(destinationId, slot));
      // Not all of them: give back what was taken, so that nobody waits on a partial hold.
      for (const slot of taken) this.giveBack(destinationId, slot);
      if (Date.now() + wait > deadline) {
        throw new PglandError(
          'connection_budget_exhausted',
          `${count} connections to the destination did not free within ${MAX_WAIT_MS / 60_000} minutes (max_connections ${max})`,
          {
            hint: "raise the destination's max_connections (within the role's CONNECTION LIMIT), or run fewer workers or schedules against it at once",
          },
        );
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Gives the slot back once, however often it is called: the slot may meanwhile be another connection's. */
  private releaser(destinationId: string, slot: number): () => void {
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.giveBack(destinationId, slot);
    };
  }

  private giveBack(destinationId: string, slot: number): void {
    const mine = this.held.get(destinationId);
    if (!mine?.delete(slot)) return;
    this.run((c) => c.query('SELECT pg_advisory_unlock(hashtext($1), $2)', ['pgland.connections:' + destinationId, slot])).catch((err: unknown) =>
      this.log.warn({ err: { message: (err as Error).message } }, 'could not give a connection slot back'),
    );
  }

  /** Frees every slot of this process (its holder connection goes back to the pool closed). */
  async close(): Promise<void> {
    this.closed = true;
    const holder = this.holder;
    this.holder = undefined;
    this.held.clear();
    if (holder) (await holder.catch(() => undefined))?.release(true);
  }
}
