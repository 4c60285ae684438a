import { quoteIdent as q } from '../sql/ident.js';
import { DELETED, GROUPS, LINE, RECORD_ID, staged, VERSION } from './stage.js';
import type { IntoPlan, PlannedColumn } from './validate.js';

/**
 * The merge of a staged batch into the customer's own table: ONE statement
 * per batch (or per part of a batch being bisected, see bisect.ts), over the
 * staged rows whose input line is between $1 and $2. Every statement returns
 * one row: records (distinct keys; NULL without DISTINCT ON, see tail), inserted, updated, deleted, skipped
 * (no row matched), first_key (a returned key, for insertedId).
 */

export interface MergeShape {
  /** The staging table the batch is in, quoted (stage.ts): the connection's temporary one, or one of a pipelined run's. */
  stage: string;
  /** No two staged records share a matching value: no DISTINCT ON (a sort) needed. */
  distinctKeys: boolean;
  /** The table had rows when the run began: read each row before upserting, so unchanged ones are not written. */
  prefilter: boolean;
  /**
   * Some staged record is a deletion the mode applies (upsert, sync). A batch
   * without one has no DELETE of matched rows: it would still join every
   * staged row with the table.
   */
  deletes: boolean;
}

const v = (c: PlannedColumn): string => q(c.column.name);

/** The staged rows of lines $1..$2, values cast to the columns' types; one per matching value. */
export function srcCte(plan: IntoPlan, dedup: boolean, stage: string): string {
  const cols = [`s.${q(LINE)}`, `s.${q(RECORD_ID)}`, `s.${q(VERSION)}`, `s.${q(DELETED)}`];
  if (plan.groups) cols.push(`s.${q(GROUPS)}`);
  // The staged text's own name and the column's name differ, so every output name is unambiguous.
  for (const c of staged(plan)) cols.push(`s.${q(c.stage!)}::${c.column.castType} AS ${v(c)}`);
  const key = plan.match ? `s.${q(plan.match.stage!)}::${plan.match.column.castType}` : '';
  const distinct = dedup && key ? `DISTINCT ON (${key}) ` : '';
  const order = dedup && key ? `\n  ORDER BY ${key}, s.${q(VERSION)} DESC, s.${q(LINE)} DESC` : '';
  // Without DISTINCT ON, src is only the staged rows cast: read where it is used rather than
  // written to a tuplestore (spilled to disk at a batch of 50,000) and read back.
  return `src AS ${dedup && key ? '' : 'NOT MATERIALIZED '}(
  SELECT ${distinct}${cols.join(', ')}
  FROM ${stage} s
  WHERE s.${q(LINE)} BETWEEN $1 AND $2${order}
)`;
}

/** Columns a record writes: mapped ones, the match column excepted when it only identifies the row. */
function written(plan: IntoPlan, keepMatch: boolean): PlannedColumn[] {
  return plan.columns.filter((c) => keepMatch || c !== plan.match);
}

function valueOf(c: PlannedColumn, from: string): string {
  return c.stage === undefined ? 'now()' : `${from}.${v(c)}`;
}

function cmp(c: PlannedColumn, alias: string): string {
  return c.compareAsText ? `${alias}.${v(c)}::text` : `${alias}.${v(c)}`;
}

/** The guard on every change: not older over newer (when a column holds the version), and not a no-op. */
function changeGuard(plan: IntoPlan, from: string): string {
  const parts: string[] = [];
  if (plan.lastModified) parts.push(`(t.${v(plan.lastModified)} IS NULL OR t.${v(plan.lastModified)} <= ${from}.${v(plan.lastModified)})`);
  // now() differs every time: a column mapped to it does not make a record changed.
  const compared = written(plan, false).filter((c) => c.stage !== undefined);
  parts.push(
    compared.length === 0 ? 'false' : `(${compared.map((c) => cmp(c, 't')).join(', ')}) IS DISTINCT FROM (${compared.map((c) => cmp(c, from)).join(', ')})`,
  );
  return parts.join(' AND ');
}

function versionGuard(plan: IntoPlan): string {
  return plan.lastModified ? ` AND (t.${v(plan.lastModified)} IS NULL OR t.${v(plan.lastModified)} <= src.${v(plan.lastModified)})` : '';
}

/** src rows the mode applies as writes (not deletions, not skipped deletions). */
function live(plan: IntoPlan, alias = 'src'): string {
  return plan.applyDeletes ? `NOT ${alias}.${q(DELETED)}` : 'true';
}

const matchOn = (plan: IntoPlan): string => `t.${v(plan.match!)} = src.${v(plan.match!)}`;

/**
 * The statement's one row. `records` is NULL when src is the staged rows as
 * they are (no DISTINCT ON): the caller knows how many rows it staged, and
 * counting them again would read the staging table once more.
 */
function tail(dedup: boolean, counts: { inserted: string; updated: string; deleted: string; skipped: string; key?: string }): string {
  return `SELECT ${dedup ? '(SELECT count(*) FROM src)::bigint' : 'NULL::bigint'} AS records,
  ${counts.inserted}::bigint AS inserted, ${counts.updated}::bigint AS updated,
  ${counts.deleted}::bigint AS deleted, ${counts.skipped}::bigint AS skipped,
  ${counts.key ?? 'NULL::text[]'} AS first_key`;
}

export function insertSql(plan: IntoPlan, shape: Pick<MergeShape, 'stage'>): string {
  const cols = written(plan, true);
  const returning = plan.returning.length > 0 ? `\n  RETURNING ${plan.returning.map(q).join(', ')}` : '\n  RETURNING 1';
  return `WITH ${srcCte(plan, false, shape.stage)},
ins AS (
  INSERT INTO ${plan.table.qualified} (${cols.map(v).join(', ')})
  SELECT ${cols.map((c) => valueOf(c, 'src')).join(', ')} FROM src WHERE ${live(plan)}
  ORDER BY src.${q(LINE)}${returning}
)
${tail(false, {
  inserted: '(SELECT count(*) FROM ins)',
  updated: '0',
  deleted: '0',
  skipped: '0',
  // As text: a bigint past 2^53 would lose digits as a JSON number.
  key: plan.returning.length > 0 ? `(SELECT ARRAY[${plan.returning.map((c) => `i.${q(c)}::text`).join(', ')}] FROM ins i LIMIT 1)` : undefined,
})}`;
}

export function updateSql(plan: IntoPlan, shape: MergeShape): string {
  const cols = written(plan, false);
  return `WITH ${srcCte(plan, !shape.distinctKeys, shape.stage)},
upd AS (
  UPDATE ${plan.table.qualified} AS t SET ${cols.length === 0 ? `${v(plan.match!)} = t.${v(plan.match!)}` : cols.map((c) => `${v(c)} = ${valueOf(c, 'src')}`).join(', ')}
  FROM src
  WHERE ${matchOn(plan)} AND ${live(plan)} AND ${changeGuard(plan, 'src')}
  RETURNING src.${q(LINE)} AS line
)
${tail(!shape.distinctKeys, {
  inserted: '0',
  updated: '(SELECT count(DISTINCT line) FROM upd)',
  deleted: '0',
  skipped: `(SELECT count(*) FROM src WHERE ${live(plan)} AND NOT EXISTS (SELECT 1 FROM ${plan.table.qualified} t WHERE ${matchOn(plan)}))`,
})}`;
}

/** DELETE of the rows that staged deletions match (a newer row stays when a column holds the version). */
function removedCte(plan: IntoPlan, which: string): string {
  return `removed AS (
  DELETE FROM ${plan.table.qualified} AS t USING src
  WHERE ${matchOn(plan)} AND ${which}${versionGuard(plan)}
  RETURNING src.${q(LINE)} AS line
)`;
}

export function upsertSql(plan: IntoPlan, shape: MergeShape): string {
  const cols = written(plan, true);
  const updates = written(plan, false);
  const from = shape.prefilter ? 'changed' : 'src';
  const ctes = [srcCte(plan, !shape.distinctKeys, shape.stage)];
  if (shape.prefilter) {
    // Most records of a repeated sync change nothing, and ON CONFLICT DO
    // UPDATE locks (so writes) a conflicting row before its WHERE is checked:
    // reading the row first keeps unchanged records out of the insert. The
    // ON CONFLICT guard still decides; this only narrows.
    ctes.push(`changed AS (
  SELECT src.* FROM src
  LEFT JOIN LATERAL (SELECT ${plan.columns.map((c) => `t.${v(c)}`).join(', ')}, true AS hit FROM ${plan.table.qualified} t WHERE ${matchOn(plan)} LIMIT 1) AS t ON true
  WHERE ${live(plan)} AND (t.hit IS NULL OR (${changeGuard(plan, 'src')}))
)`);
  }
  const set =
    updates.length === 0
      ? `${v(plan.match!)} = EXCLUDED.${v(plan.match!)}`
      : updates.map((c) => `${v(c)} = ${c.stage === undefined ? 'now()' : `EXCLUDED.${v(c)}`}`).join(', ');
  // A partitioned table cannot return xmax: whether a row is new is then asked of the statement's snapshot.
  const inserted =
    plan.table.relkind === 'p' ? `NOT EXISTS (SELECT 1 FROM ${plan.table.qualified} o WHERE o.${v(plan.match!)} = t.${v(plan.match!)})` : '(t.xmax = 0)';
  ctes.push(`merged AS (
  INSERT INTO ${plan.table.qualified} AS t (${cols.map(v).join(', ')})
  SELECT ${cols.map((c) => valueOf(c, from)).join(', ')} FROM ${from} WHERE ${live(plan, from)}
  ON CONFLICT (${v(plan.match!)}) DO UPDATE SET ${set}
  WHERE ${changeGuard(plan, 'EXCLUDED')}
  RETURNING ${inserted} AS inserted
)`);
  const deletes = plan.applyDeletes && shape.deletes;
  if (deletes) ctes.push(removedCte(plan, `src.${q(DELETED)}`));
  // Both counts in one pass over merged's rows (two subqueries read its tuplestore twice).
  return `WITH ${ctes.join(',\n')}
${tail(!shape.distinctKeys, {
  inserted: 'm.inserted',
  updated: 'm.updated',
  deleted: deletes ? '(SELECT count(DISTINCT line) FROM removed)' : '0',
  skipped: '0',
})}
FROM (SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM merged) AS m`;
}

export function deleteSql(plan: IntoPlan, shape: MergeShape): string {
  return `WITH ${srcCte(plan, !shape.distinctKeys, shape.stage)},
${removedCte(plan, 'true')}
${tail(!shape.distinctKeys, {
  inserted: '0',
  updated: '0',
  deleted: '(SELECT count(DISTINCT line) FROM removed)',
  skipped: `(SELECT count(*) FROM src WHERE NOT EXISTS (SELECT 1 FROM ${plan.table.qualified} t WHERE ${matchOn(plan)}))`,
})}`;
}

/** The merge statement of the plan's write mode. */
export function mergeIntoSql(plan: IntoPlan, shape: MergeShape): string {
  switch (plan.action) {
    case 'insert':
      return insertSql(plan, shape);
    case 'update':
      return updateSql(plan, shape);
    case 'upsert':
      return upsertSql(plan, shape);
    case 'delete':
      return deleteSql(plan, shape);
  }
}
