/**
 * Something that bounds how many connections to one database are open at
 * once, possibly across processes (src/service/connection-budget.ts): a
 * connection takes a slot before it connects and gives it back when it
 * closes. acquire() waits for a free slot; it throws when none frees in time.
 */
export interface ConnectionGate {
  acquire(): Promise<() => void>;
}
