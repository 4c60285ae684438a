import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ObjectDef } from '../catalog/definition.js';
import type { SqlQuery } from '../merge/merge.js';
import { tableShapeSql } from '../schema/introspect.js';
import { qualify } from '../sql/ident.js';
import { insertRunSql, type RunStart } from './runs.js';

/**
 * The tables a process found up to date, per destination (pool), schema and
 * object definition: the table the definition landed in (claimTable's
 * choice), whether that choice came from owning the plain name, and the
 * table's state as the evolution check read it (introspect.ts,
 * tableShapeSql).
 *
 * Why it is safe to skip the check: every run still reads that state, in the
 * statement that records the run (startRunSql), from the same catalogs and
 * the same _pgland_tables row, together with the owner of the plain name.
 * The check is skipped only when both read exactly as they did when the check
 * last found nothing to do; the plan is a function of what it read (plan.ts:
 * an up-to-date table is planned from that state alone, and claimTable from
 * the owner), so running it again would find nothing to do again. A table
 * changed by hand, by another process's evolution, dropped, or recorded
 * differently reads differently, and the run goes through the whole check
 * under the table's lock, as every run did before. A definition that changed
 * is another key. What the cache saves is the round trips and the work of a
 * check, not the reading of the state: it holds nothing that can go stale.
 */
interface Checked {
  /** The definition as claimTable resolved it (its table). */
  def: ObjectDef;
  /** What the owner of the plain table name read as: 'mine' (the object owns it) or 'other' (def.table is the hashed name). */
  owner: Owner;
  shape: string;
}

type Owner = 'mine' | 'other';

const byPool = new WeakMap<pg.Pool, Map<string, Checked>>();

function keyOf(schema: string, wanted: ObjectDef): string {
  return createHash('sha256')
    .update(`${schema}\u0000${JSON.stringify(wanted)}`, 'utf8')
    .digest('hex');
}

/** What this process last found up to date for the definition `wanted` (as resolveObject gave it). */
export function checkedTable(pool: pg.Pool, schema: string, wanted: ObjectDef): Checked | undefined {
  return byPool.get(pool)?.get(keyOf(schema, wanted));
}

/** The check found `def`'s table up to date, reading it as `shape`. */
export function rememberChecked(pool: pg.Pool, schema: string, wanted: ObjectDef, def: ObjectDef, shape: string): void {
  let tables = byPool.get(pool);
  if (!tables) byPool.set(pool, (tables = new Map()));
  tables.set(keyOf(schema, wanted), { def, owner: def.table === wanted.table ? 'mine' : 'other', shape });
}

export function forgetChecked(pool: pg.Pool, schema: string, wanted: ObjectDef): void {
  byPool.get(pool)?.delete(keyOf(schema, wanted));
}

/**
 * Records the run (insertRunSql) and reads, in the same statement, what the
 * check of a remembered table compares: the table's state and the owner of
 * the plain name. One round trip where claimTable and the check were four.
 */
export function startRunSql(schema: string, run: RunStart, wanted: ObjectDef, def: ObjectDef, prepare?: PrepareRunParts): SqlQuery {
  const insert = insertRunSql(schema, run);
  const n = insert.values.length;
  const p = (i: number): string => `$${n + i}`;
  // With prepareRun's statement too (finish.ts): what it does once the table is ready, a round trip fewer.
  const parts = prepare?.(n + 6);
  return {
    text: `WITH run AS (${insert.text})${parts ? `, ${parts.ctes}` : ''}
      SELECT ${tableShapeSql(schema, p(1), p(2))} AS shape,
             (SELECT CASE WHEN object = ${p(4)} AND object_kind = ${p(5)} THEN 'mine' ELSE 'other' END
                FROM ${qualify(schema, '_pgland_tables')} WHERE table_name = ${p(3)}) AS owner${
                  parts
                    ? `,
             ${parts.columns}`
                    : ''
                }`,
    values: [...insert.values, qualify(schema, def.table), def.table, wanted.table, wanted.object, wanted.kind, ...(parts?.values ?? [])],
  };
}

/** prepareRunParts (finish.ts) for one run, its values numbered from the argument. */
export type PrepareRunParts = (firstParam: number) => { ctes: string; columns: string; values: unknown[] };

/** Whether what startRunSql read is what the check found up to date. */
export function stillUpToDate(checked: Checked, read: { shape: string; owner: string | null }): boolean {
  return read.shape === checked.shape && read.owner === checked.owner;
}
