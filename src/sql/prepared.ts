import { createHash } from 'node:crypto';

/**
 * A statement named after its text, so that node-postgres prepares it once
 * per connection and the server keeps its plan: planning was most of the
 * server's time for the statements every small run sends (the merge, the
 * lease, the run's record). Only on a direct connection (`prepare`): a
 * transaction-mode pooler does not keep a prepared statement.
 */
export function preparedIf<Q extends { text: string; values?: unknown[] }>(q: Q, prepare: boolean): Q & { name?: string } {
  if (!prepare) return q;
  return { ...q, name: `pgland_${createHash('sha256').update(q.text, 'utf8').digest('hex').slice(0, 16)}` };
}
