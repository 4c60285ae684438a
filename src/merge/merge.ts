import { PglandError } from '../errors.js';
import type { MergeOptions, SqlQuery } from './fragments.js';
import { updateSql } from './update.js';
import { upsertSql } from './upsert.js';

export type { MergeCounts, MergeOptions, SqlQuery, WriteMode, DeleteMode } from './fragments.js';

/**
 * The merge: ONE statement that applies the staged batch to the landed table
 * in the chosen write mode, and returns what it did (see MergeCounts).
 */
export function mergeSql(o: MergeOptions): SqlQuery {
  if (o.matchColumn !== 'id' && !o.def.columns.some((c) => c.name === o.matchColumn)) {
    throw new PglandError('config_invalid', `match column "${o.matchColumn}" is not a column of ${o.def.table}`, {
      hint: `use id or one of: ${o.def.columns.map((c) => c.name).join(', ')}`,
    });
  }
  if (o.matchColumn !== 'id' && (o.write === 'upsert' || o.write === 'insert')) {
    throw new PglandError('config_invalid', `write mode ${o.write} matches on the primary key (id) only`, {
      hint: 'ON CONFLICT needs the key; use --write update or --write delete to match on another column',
    });
  }
  const text = o.write === 'upsert' || o.write === 'insert' ? upsertSql(o) : updateSql(o);
  return { text, values: [o.provider, o.customerId, o.runId] };
}
