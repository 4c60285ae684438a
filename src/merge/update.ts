import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import { quoteIdent as q } from '../sql/ident.js';
import { changeGuard, isDeleted, setFrom, srcCte, stagedCte, target, tenant, type MergeOptions } from './fragments.js';
import { seenCte, wasDeleted } from './upsert.js';

/**
 * update (only live rows that exist; Grouparoo's Enrich) and delete (each record is
 * a delete action), both matching landed rows on a chosen column. A record
 * that matches no landed row is counted as skipped.
 */
export function updateSql(o: MergeOptions): string {
  const m = q(o.matchColumn);
  const hard = o.deleteMode === 'hard';
  const ctes = [srcCte(o, o.matchColumn)];
  const lmGuard = `landed.${q(P.lastModifiedAt)} <= src.${q(P.lastModifiedAt)}`;
  const match = `${tenant('landed')} AND landed.${m} = src.${m}`;
  // update changes live rows only: a soft-deleted row is not brought back by
  // a live version (Grouparoo's Enrich updates what exists and adds nothing;
  // upsert un-deletes). A deletion record still matches it.
  const live = o.write === 'update' ? ` AND (src.${isDeleted()} OR NOT landed.${isDeleted()})` : '';

  if (o.write === 'update') {
    const applyDeletes = !o.ignoreDeletes;
    const updatable = (hard && applyDeletes) || o.ignoreDeletes ? `NOT src.${isDeleted()}` : 'true';
    ctes.push(`changed AS (
  UPDATE ${target(o)} AS landed SET
    ${setFrom(o, 'src')}
  FROM src
  WHERE ${match}${live} AND ${updatable} AND ${changeGuard(o, 'src')}
  RETURNING src.${m} AS k, landed."id", landed.${isDeleted()} AS now_deleted, ${wasDeleted(o)} AS was_deleted
)`);
    if (hard && applyDeletes) ctes.push(removedCte(o, `src.${isDeleted()} AND ${lmGuard}`));
  } else if (hard) {
    ctes.push(removedCte(o, lmGuard));
  } else {
    ctes.push(`changed AS (
  UPDATE ${target(o)} AS landed SET
    ${q(P.isDeleted)} = true,
    ${q(P.deletedAt)} = coalesce(landed.${q(P.deletedAt)}, now()),
    ${q(P.lastModifiedAt)} = src.${q(P.lastModifiedAt)},
    ${q(P.landedAt)} = now(),
    ${q(P.runId)} = $3::uuid
  FROM src
  WHERE ${match} AND NOT landed.${isDeleted()} AND ${lmGuard}
  RETURNING src.${m} AS k, landed."id", true AS now_deleted, false AS was_deleted
)`);
  }
  if (o.trackSeen) ctes.push(seenCte(o));
  ctes.push(stagedCte());

  const hasChanged = ctes.some((c) => c.startsWith('changed'));
  const hasRemoved = ctes.some((c) => c.startsWith('removed'));
  const changedCounts = hasChanged ? `(SELECT count(DISTINCT c.k) FILTER (WHERE NOT (c.now_deleted AND NOT c.was_deleted)) FROM changed c)` : '0';
  const becameDeleted = hasChanged ? `(SELECT count(DISTINCT c.k) FILTER (WHERE c.now_deleted AND NOT c.was_deleted) FROM changed c)` : '0';
  const undeleted = hasChanged ? `(SELECT count(DISTINCT c.k) FILTER (WHERE NOT c.now_deleted AND c.was_deleted) FROM changed c)` : '0';
  const removed = hasRemoved ? '(SELECT count(DISTINCT k) FROM removed)' : '0';
  const ignored = o.write === 'update' && o.ignoreDeletes ? '(SELECT deleted_records FROM staged)' : '0';
  // Skipped: no landed row matched (seen before the statement), or ignored deletions.
  const unmatched = `(SELECT count(*) FROM src WHERE ${ignored === '0' ? 'true' : `NOT ${isDeleted()}`} AND NOT EXISTS (
      SELECT 1 FROM ${target(o)} AS landed WHERE ${match}${live}))`;
  return `WITH ${ctes.join(',\n')}
SELECT
  (SELECT records FROM staged)::bigint AS distinct_records,
  (SELECT max_lm FROM staged) AS max_lm,
  0::bigint AS inserted,
  ${changedCounts}::bigint AS updated,
  (${becameDeleted} + ${removed})::bigint AS deleted,
  ${undeleted}::bigint AS undeleted,
  (${unmatched} + ${ignored})::bigint AS skipped,
  0::bigint AS duplicates,
  $3::uuid AS run_id -- every merge statement takes the same three parameters`;
}

function removedCte(o: MergeOptions, condition: string): string {
  return `removed AS (
  DELETE FROM ${target(o)} AS landed
  USING src
  WHERE ${tenant('landed')} AND landed.${q(o.matchColumn)} = src.${q(o.matchColumn)} AND ${condition}
  RETURNING src.${q(o.matchColumn)} AS k
)`;
}
