import { PglandError } from '../errors.js';
import type { ObjectDef } from '../catalog/definition.js';
import type { MergeOptions, SqlQuery, WriteMode } from './fragments.js';
import { updateSql } from './update.js';
import { upsertSql } from './upsert.js';

export type { MergeCounts, MergeOptions, SqlQuery, WriteMode, DeleteMode } from './fragments.js';

/**
 * Refuses a match column the write mode cannot use, before anything runs:
 * update and delete match on id or any typed column of the object; upsert
 * and insert on id only (ON CONFLICT needs the key).
 */
export function checkMatchColumn(def: ObjectDef, write: WriteMode, matchColumn: string): void {
  if (matchColumn !== 'id' && !def.columns.some((c) => c.name === matchColumn)) {
    throw new PglandError('config_invalid', `match column "${matchColumn}" is not a column of ${def.table}`, {
      hint: `use id or one of: ${def.columns.map((c) => c.name).join(', ')}`,
    });
  }
  if (matchColumn !== 'id' && (write === 'upsert' || write === 'insert')) {
    throw new PglandError('config_invalid', `write mode ${write} matches on the primary key (id) only`, {
      hint: 'ON CONFLICT needs the key; write update or delete can match on another column',
    });
  }
}

/**
 * The merge: ONE statement that applies the staged batch to the landed table
 * in the chosen write mode, and returns what it did (see MergeCounts).
 */
export function mergeSql(o: MergeOptions): SqlQuery {
  checkMatchColumn(o.def, o.write, o.matchColumn);
  const text = o.write === 'upsert' || o.write === 'insert' ? upsertSql(o) : updateSql(o);
  return { text, values: [o.provider, o.customerId, o.runId] };
}
