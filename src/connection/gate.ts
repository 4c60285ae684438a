/**
 * Something that bounds how many connections to one database are open at
 * once, possibly across processes (src/service/destinations/connection-budget.ts): a
 * connection takes a slot before it connects and gives it back when it
 * closes. acquire() waits for a free slot; it throws when none frees in time.
 */
export interface ConnectionGate {
  acquire(): Promise<() => void>;
  /**
   * `count` slots at once, or none while waiting: taking them one after the
   * other, two callers could each hold some and wait for the other's.
   */
  acquireAll(count: number): Promise<(() => void)[]>;
}

/** A gate that hands out slots already taken (for connections that must be open together), then no more. */
export function preTaken(slots: (() => void)[]): ConnectionGate {
  const take = async (): Promise<() => void> => {
    const slot = slots.shift();
    if (!slot) throw new Error('no connection slot was taken for this connection');
    return slot;
  };
  return { acquire: take, acquireAll: async (count) => Promise.all(Array.from({ length: count }, take)) };
}
