import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import { quoteIdent as q } from '../sql/ident.js';
import { changeGuard, insertFromSrc, isDeleted, setFrom, srcCte, stagedCte, target, tenant, type MergeOptions } from './fragments.js';

/**
 * upsert (the default) and insert, keyed on the primary key.
 *
 * upsert: ON CONFLICT … DO UPDATE guarded so that an older version never
 * overwrites a newer one and an identical re-delivery changes nothing.
 * insert: append only; a key that is already landed is not a crash but a
 * per-record problem ("duplicate key"), written by the same statement.
 *
 * Hard deletes remove rows in a sibling CTE. To tell deletions and
 * un-deletions from plain updates, an updated row's RETURNING looks up the row
 * as it was before the statement (a statement does not see its own changes):
 * one index probe per updated row, none for inserted ones.
 */
export function upsertSql(o: MergeOptions): string {
  const hard = o.deleteMode === 'hard';
  const applyDeleted = !o.ignoreDeletes;
  // Records flagged deleted are upserted as soft deletes; under hard deletes or
  // when deletions are ignored they are kept out of the insert.
  const insertable = hard || o.ignoreDeletes ? `NOT ${isDeleted()}` : 'true';
  const key = `${q(P.provider)}, ${q(P.customerId)}, "id"`;
  const ctes = [srcCte(o, 'id')];

  if (o.write === 'insert') {
    ctes.push(`merged AS (
  ${insertFromSrc(o, insertable)}
  ON CONFLICT (${key}) DO NOTHING
  RETURNING "id", true AS inserted, ${isDeleted()} AS now_deleted, NULL::boolean AS was_deleted
)`);
    ctes.push(`duplicates AS (
  INSERT INTO ${q(o.schema)}._pgland_problems (run_id, line_number, record_id, field, column_name, reason, value_excerpt)
  SELECT $3::uuid, s._pgland_line, s."id", 'id', 'id',
         'duplicate key: this id is already landed and the write mode is insert (append only); use --write upsert to update it',
         NULL
  FROM src s
  WHERE ${insertable === 'true' ? 'true' : `NOT s.${isDeleted()}`}
    AND NOT EXISTS (SELECT 1 FROM merged m WHERE m."id" = s."id")
  RETURNING 1
)`);
  } else {
    ctes.push(changedCte(o));
    ctes.push(`merged AS (
  ${insertFromSrc(o, insertable, 'changed')}
  ON CONFLICT (${key}) DO UPDATE SET
    ${setFrom(o, 'EXCLUDED')}
  WHERE ${changeGuard(o, 'EXCLUDED')}
  RETURNING "id", (xmax = 0) AS inserted, ${isDeleted()} AS now_deleted,
    CASE WHEN xmax <> 0 THEN ${wasDeleted(o)} END AS was_deleted
)`);
  }
  if (hard && applyDeleted) {
    ctes.push(`removed AS (
  DELETE FROM ${target(o)} AS landed
  USING src
  WHERE ${tenant('landed')} AND landed."id" = src."id" AND src.${isDeleted()}
    AND landed.${q(P.lastModifiedAt)} <= src.${q(P.lastModifiedAt)}
  RETURNING landed."id"
)`);
  }
  if (o.trackSeen) ctes.push(seenCte(o));
  ctes.push(stagedCte());

  const removed = hard && applyDeleted ? '(SELECT count(*) FROM removed)' : '0';
  const duplicates = o.write === 'insert' ? '(SELECT count(*) FROM duplicates)' : '0';
  const ignored = insertable === 'true' || (hard && applyDeleted) ? '0' : '(SELECT deleted_records FROM staged)';
  const becameDeleted = `m.now_deleted AND NOT m.was_deleted`;
  return `WITH ${ctes.join(',\n')}
SELECT
  (SELECT records FROM staged)::bigint AS distinct_records,
  (SELECT max_lm FROM staged) AS max_lm,
  count(*) FILTER (WHERE m.inserted)::bigint AS inserted,
  count(*) FILTER (WHERE NOT m.inserted AND NOT (${becameDeleted}))::bigint AS updated,
  (count(*) FILTER (WHERE NOT m.inserted AND ${becameDeleted}) + ${removed})::bigint AS deleted,
  count(*) FILTER (WHERE NOT m.inserted AND NOT m.now_deleted AND m.was_deleted)::bigint AS undeleted,
  (${ignored} + ${duplicates})::bigint AS skipped,
  ${duplicates}::bigint AS duplicates
FROM merged m`;
}

/**
 * The staged records that are new or would change their landed row. Most
 * records of an incremental sync change nothing, and ON CONFLICT DO UPDATE
 * locks (and so writes) every conflicting row before its WHERE is checked;
 * reading the landed row first keeps the unchanged ones out of the insert
 * entirely. LIMIT 1 keeps the lookup an index probe per staged record,
 * whatever the landed table's statistics say (without statistics, after a
 * first load, the planner would hash every landed row of the tenant, every
 * batch). The ON CONFLICT guard still decides: this only narrows.
 */
function changedCte(o: MergeOptions): string {
  return `changed AS (
  SELECT src.* FROM src
  LEFT JOIN LATERAL (
    SELECT * FROM ${target(o)} AS landed WHERE ${tenant('landed')} AND landed."id" = src."id" LIMIT 1
  ) AS landed ON true
  WHERE landed."id" IS NULL OR (${changeGuard(o, 'src')})
)`;
}

export function seenCte(o: MergeOptions): string {
  return `seen AS (
  INSERT INTO ${q(o.schema)}._pgland_full_refresh_seen (run_id, "id")
  SELECT $3::uuid, "id" FROM src
  ON CONFLICT DO NOTHING
)`;
}

/**
 * In RETURNING of a statement that changed the landed row `landed`: whether
 * that row was deleted before the statement. The subquery runs under the
 * statement's own snapshot and command, so it sees the old version.
 */
export function wasDeleted(o: MergeOptions): string {
  return `(SELECT o.${isDeleted()} FROM ${target(o)} AS o WHERE ${tenant('o')} AND o."id" = landed."id")`;
}
