import { quoteIdent as q } from '../sql/ident.js';
import { srcCte } from './merge-into.js';
import { DELETED, GROUPS, VERSION } from './stage.js';
import type { IntoPlan } from './validate.js';

/**
 * The groups table (Grouparoo's "Export Record" with groups): one row per
 * (record, group name), its key referring to a row of the records table. Two
 * statements per batch, in the batch's transaction with the records' merge:
 * the group rows of records being deleted go first (a foreign key without
 * ON DELETE CASCADE would refuse the delete), the others are set after the
 * merge, when every record's row exists.
 *
 * A record whose list is missing or null keeps its group rows; an empty list
 * removes them (except under additive, which only adds).
 */

const guard = (plan: IntoPlan): string =>
  plan.lastModified
    ? ` AND (t.${q(plan.lastModified.column.name)} IS NULL OR t.${q(plan.lastModified.column.name)} <= src.${q(plan.lastModified.column.name)})`
    : '';

/** Group rows of the records this batch deletes (delete mode, or deletions applied by upsert and sync, when it has any). */
export function groupsOfDeletedSql(plan: IntoPlan, stage: string, dedup: boolean, deletes = true): string | undefined {
  const g = plan.groups;
  if (!g || (plan.action !== 'delete' && !(plan.applyDeletes && deletes))) return undefined;
  const which = plan.action === 'delete' ? 'true' : `src.${q(DELETED)}`;
  return `WITH ${srcCte(plan, dedup, stage)}
DELETE FROM ${g.table.qualified} AS g
USING src JOIN ${plan.table.qualified} AS t ON t.${q(plan.match!.column.name)} = src.${q(plan.match!.column.name)}
WHERE ${which}${guard(plan)} AND g.${q(g.key.name)} = t.${q(g.ref.name)}`;
}

/**
 * After the merge: each live record's group rows made its list (sync,
 * update, enrich), or its list added (additive, insert). Only records whose
 * row exists (enrich touches no other) and, when a column holds the version,
 * whose version is the row's.
 */
export function setGroupsSql(plan: IntoPlan, stage: string, dedup: boolean): string | undefined {
  const g = plan.groups;
  if (!g || plan.action === 'delete') return undefined;
  const key = q(g.key.name);
  const name = q(g.name.name);
  const ctes = [
    srcCte(plan, dedup, stage),
    `recs AS MATERIALIZED (
  SELECT DISTINCT ON (t.${q(g.ref.name)}) t.${q(g.ref.name)} AS k, src.${q(GROUPS)} AS names
  FROM src JOIN ${plan.table.qualified} AS t ON t.${q(plan.match!.column.name)} = src.${q(plan.match!.column.name)}
  WHERE NOT src.${q(DELETED)} AND src.${q(GROUPS)} IS NOT NULL${guard(plan)}
  ORDER BY t.${q(g.ref.name)}, src.${q(VERSION)} DESC
)`,
  ];
  if (g.exact) {
    ctes.push(`dropped AS (
  DELETE FROM ${g.table.qualified} AS g USING recs
  WHERE g.${key} = recs.k AND (g.${name} IS NULL OR NOT (g.${name}::text = ANY (recs.names)))
  RETURNING 1
)`);
  }
  ctes.push(`added AS (
  INSERT INTO ${g.table.qualified} (${key}, ${name})
  SELECT DISTINCT recs.k, n.name::${g.name.castType}
  FROM recs CROSS JOIN LATERAL unnest(recs.names) AS n(name)
  WHERE NOT EXISTS (SELECT 1 FROM ${g.table.qualified} AS g WHERE g.${key} = recs.k AND g.${name}::text = n.name)
  RETURNING 1
)`);
  return `WITH ${ctes.join(',\n')}
SELECT ${g.exact ? '(SELECT count(*) FROM dropped)' : '0'}::bigint AS removed, (SELECT count(*) FROM added)::bigint AS added`;
}
