import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { qualify, quoteIdent } from '../sql/ident.js';
import { LINE_COLUMN, STAGE_TABLE } from '../stage/stage.js';

export interface SqlQuery {
  text: string;
  values: unknown[];
}

export interface MergeParams {
  provider: string;
  customerId: string;
  runId: string;
}

/**
 * The merge: ONE statement that upserts the staged batch into the landed table.
 *
 * - DISTINCT ON keeps one version per id: the newest last-modified time, and on
 *   a tie the later input line.
 * - The ON CONFLICT update only happens when the incoming version is at least
 *   as new as the landed one (an older version never overwrites a newer one)
 *   and something actually differs (a re-delivered record changes nothing, not
 *   even the landed-at time).
 * - RETURNING (xmax = 0) tells an inserted row from an updated one: a freshly
 *   inserted tuple has no deleting transaction yet.
 */
export function mergeSql(schema: string, def: ObjectDef, params: MergeParams): SqlQuery {
  const target = qualify(schema, def.table);
  const q = quoteIdent;
  const business = ['id', ...def.columns.map((c) => c.name)].map(q);
  const typed = def.columns.map((c) => q(c.name));
  const compared = [...typed, q(P.isDeleted), q(P.rawData)];
  const key = `${q(P.provider)}, ${q(P.customerId)}, "id"`;

  const text = `
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM ${q(STAGE_TABLE)}
  ORDER BY "id", ${q(P.lastModifiedAt)} DESC, ${q(LINE_COLUMN)} DESC
), merged AS (
  INSERT INTO ${target} AS landed (
    ${q(P.provider)}, ${q(P.customerId)}, ${business.join(', ')},
    ${q(P.landedAt)}, ${q(P.lastModifiedAt)}, ${q(P.isDeleted)}, ${q(P.deletedAt)}, ${q(P.runId)}, ${q(P.rawData)}
  )
  SELECT $1::text, $2::text, ${business.join(', ')},
    now(), ${q(P.lastModifiedAt)}, ${q(P.isDeleted)},
    CASE WHEN ${q(P.isDeleted)} THEN now() END, $3::uuid, ${q(P.rawData)}
  FROM src
  ON CONFLICT (${key}) DO UPDATE SET
    ${[...typed, q(P.landedAt), q(P.lastModifiedAt), q(P.isDeleted), q(P.runId), q(P.rawData)]
      .map((c) => `${c} = EXCLUDED.${c}`)
      .join(',\n    ')},
    ${q(P.deletedAt)} = CASE WHEN EXCLUDED.${q(P.isDeleted)}
      THEN coalesce(landed.${q(P.deletedAt)}, EXCLUDED.${q(P.deletedAt)}) END
  WHERE landed.${q(P.lastModifiedAt)} <= EXCLUDED.${q(P.lastModifiedAt)}
    AND (${compared.map((c) => `landed.${c}`).join(', ')})
        IS DISTINCT FROM (${compared.map((c) => `EXCLUDED.${c}`).join(', ')})
  RETURNING (xmax = 0) AS inserted
)
SELECT
  (SELECT count(*) FROM src)::bigint AS distinct_records,
  count(*) FILTER (WHERE inserted)::bigint AS inserted,
  count(*) FILTER (WHERE NOT inserted)::bigint AS updated
FROM merged`;
  return { text, values: [params.provider, params.customerId, params.runId] };
}
