-- update-hard: {"schema":"pgland","def":"hubspot_deal","provider":"hubspot","customerId":"acme","runId":"00000000-0000-0000-0000-000000000000","write":"update","deleteMode":"hard","ignoreDeletes":false,"matchColumn":"id","trackSeen":false}
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM "_pgland_stage"
  ORDER BY "id", "_pgland_last_modified_at" DESC, "_pgland_line" DESC
),
changed AS (
  UPDATE "pgland"."hubspot_deal" AS landed SET
    "amount" = src."amount",
    "email" = src."email",
    "stages" = src."stages",
    "_pgland_last_modified_at" = src."_pgland_last_modified_at",
    "_pgland_is_deleted" = src."_pgland_is_deleted",
    "_pgland_raw_data" = src."_pgland_raw_data",
    "_pgland_landed_at" = now(),
    "_pgland_run_id" = $3::uuid,
    "_pgland_deleted_at" = CASE WHEN src."_pgland_is_deleted" THEN coalesce(landed."_pgland_deleted_at", now()) END
  FROM src
  WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND (src."_pgland_is_deleted" OR NOT landed."_pgland_is_deleted") AND NOT src."_pgland_is_deleted" AND landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
    AND (landed."amount", landed."email", landed."stages", landed."_pgland_last_modified_at", landed."_pgland_is_deleted", landed."_pgland_raw_data")
        IS DISTINCT FROM (src."amount", src."email", src."stages", src."_pgland_last_modified_at", src."_pgland_is_deleted", src."_pgland_raw_data")
  RETURNING src."id" AS k, landed."id", landed."_pgland_is_deleted" AS now_deleted, (SELECT o."_pgland_is_deleted" FROM "pgland"."hubspot_deal" AS o WHERE o."_pgland_provider" = $1::text AND o."_pgland_customer_id" = $2::text AND o."id" = landed."id") AS was_deleted
),
removed AS (
  DELETE FROM "pgland"."hubspot_deal" AS landed
  USING src
  WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND src."_pgland_is_deleted" AND landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
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
  (SELECT count(DISTINCT c.k) FILTER (WHERE NOT (c.now_deleted AND NOT c.was_deleted)) FROM changed c)::bigint AS updated,
  ((SELECT count(DISTINCT c.k) FILTER (WHERE c.now_deleted AND NOT c.was_deleted) FROM changed c) + (SELECT count(DISTINCT k) FROM removed))::bigint AS deleted,
  (SELECT count(DISTINCT c.k) FILTER (WHERE NOT c.now_deleted AND c.was_deleted) FROM changed c)::bigint AS undeleted,
  ((SELECT count(*) FROM src WHERE true AND NOT EXISTS (
      SELECT 1 FROM "pgland"."hubspot_deal" AS landed WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND (src."_pgland_is_deleted" OR NOT landed."_pgland_is_deleted"))) + 0)::bigint AS skipped,
  0::bigint AS duplicates,
  $3::uuid AS run_id -- every merge statement takes the same three parameters
