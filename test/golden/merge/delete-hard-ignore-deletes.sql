-- delete-hard-ignore-deletes: {"schema":"pgland","def":"hubspot_deal","provider":"hubspot","customerId":"acme","runId":"00000000-0000-0000-0000-000000000000","write":"delete","deleteMode":"hard","ignoreDeletes":true,"matchColumn":"id","trackSeen":false}
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM "_pgland_stage"
  ORDER BY "id", "_pgland_last_modified_at" DESC, "_pgland_line" DESC
),
removed AS (
  DELETE FROM "pgland"."hubspot_deal" AS landed
  USING src
  WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
  RETURNING src."id" AS k
),
staged AS MATERIALIZED (
  SELECT count(*) AS records,
         count(*) FILTER (WHERE "_pgland_is_deleted") AS deleted_records,
         max("_pgland_last_modified_at") AS max_lm
  FROM src
)
SELECT
  (SELECT records FROM staged)::bigint AS distinct_records,
  (SELECT max_lm FROM staged) AS max_lm,
  0::bigint AS inserted,
  0::bigint AS updated,
  (0 + (SELECT count(DISTINCT k) FROM removed))::bigint AS deleted,
  0::bigint AS undeleted,
  ((SELECT count(*) FROM src WHERE true AND NOT EXISTS (
      SELECT 1 FROM "pgland"."hubspot_deal" AS landed WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id")) + 0)::bigint AS skipped,
  0::bigint AS duplicates,
  $3::uuid AS run_id -- every merge statement takes the same three parameters
