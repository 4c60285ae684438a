import { openDestination, type Destination } from '../../destination.js';
import type { Logger } from '../../log.js';
import type { ConnectionBudget } from './connection-budget.js';
import type { DestinationStore } from './destination-store.js';

/**
 * One open Destination (pool, tunnel, metadata migrated) per configured
 * destination, opened on first use. A destination whose config changes or
 * that is deleted is forgotten: its pool ends once the work in flight on it
 * has released its connections.
 */
export class DestinationPools {
  private readonly open = new Map<string, Promise<Destination>>();
  /** Called before a destination's pool is closed: work that keeps a connection for long (a held run) lets it go. */
  private readonly closing: ((id: string) => Promise<void>)[] = [];

  constructor(
    private readonly store: DestinationStore,
    private readonly log: Logger,
    private readonly limits: { maxRecordBytes: number },
    private readonly poolSize = 6,
    /** Keeps each destination within its max_connections across worker processes (connection-budget.ts). */
    private readonly budget?: ConnectionBudget,
  ) {}

  get(id: string): Promise<Destination> {
    let dest = this.open.get(id);
    if (!dest) {
      dest = this.store.config(id).then((config) =>
        // No environment: a destination configured over the API depends on its stored config alone.
        // The service's max_record_bytes wins over a stored config's: the server's memory is the operator's to bound.
        openDestination(config, {
          log: this.log.child({ destinationId: id }),
          env: {},
          poolSize: this.poolSize,
          ...(this.budget && config.max_connections !== undefined ? { connectionGate: this.budget.gate(id, Number(config.max_connections)) } : {}),
          overrides: { max_record_bytes: this.limits.maxRecordBytes },
        }),
      );
      this.open.set(id, dest);
      // A failed open is not kept: the next use tries again.
      dest.catch(() => {
        if (this.open.get(id) === dest) this.open.delete(id);
      });
    }
    return dest;
  }

  onClose(fn: (id: string) => Promise<void>): void {
    this.closing.push(fn);
  }

  async forget(id: string): Promise<void> {
    const dest = this.open.get(id);
    this.open.delete(id);
    await Promise.all(this.closing.map((fn) => fn(id).catch(() => undefined)));
    await closeQuietly(dest, this.log);
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((d) => closeQuietly(d, this.log)));
    await this.budget?.close();
  }
}

async function closeQuietly(dest: Promise<Destination> | undefined, log: Logger): Promise<void> {
  if (!dest) return;
  try {
    await (await dest).close();
  } catch (err) {
    log.debug({ err: { message: (err as Error).message } }, 'closing a destination pool failed');
  }
}
