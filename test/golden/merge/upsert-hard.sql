-- upsert-hard: {"schema":"pgland","def":"hubspot_deal","provider":"hubspot","customerId":"acme","runId":"00000000-0000-0000-0000-000000000000","write":"upsert","deleteMode":"hard","ignoreDeletes":false,"matchColumn":"id","trackSeen":false}
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM "_pgland_stage"
  ORDER BY "id", "_pgland_last_modified_at" DESC, "_pgland_line" DESC
),
changed AS (
  SELECT src.* FROM src
  LEFT JOIN LATERAL (
    SELECT * FROM "pgland"."hubspot_deal" AS landed WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" LIMIT 1
  ) AS landed ON true
  WHERE landed."id" IS NULL OR (landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
    AND (landed."amount", landed."email", landed."stages", landed."_pgland_last_modified_at", landed."_pgland_is_deleted", landed."_pgland_raw_data")
        IS DISTINCT FROM (src."amount", src."email", src."stages", src."_pgland_last_modified_at", src."_pgland_is_deleted", src."_pgland_raw_data"))
),
merged AS (
  INSERT INTO "pgland"."hubspot_deal" AS landed (
    "_pgland_provider", "_pgland_customer_id", "id", "amount", "email", "stages",
    "_pgland_landed_at", "_pgland_last_modified_at", "_pgland_is_deleted", "_pgland_deleted_at", "_pgland_run_id", "_pgland_raw_data"
  )
  SELECT $1::text, $2::text, "id", "amount", "email", "stages",
    now(), "_pgland_last_modified_at", "_pgland_is_deleted",
    CASE WHEN "_pgland_is_deleted" THEN now() END, $3::uuid, "_pgland_raw_data"
  FROM changed
  WHERE NOT "_pgland_is_deleted"
  ON CONFLICT ("_pgland_provider", "_pgland_customer_id", "id") DO UPDATE SET
    "amount" = EXCLUDED."amount",
    "email" = EXCLUDED."email",
    "stages" = EXCLUDED."stages",
    "_pgland_last_modified_at" = EXCLUDED."_pgland_last_modified_at",
    "_pgland_is_deleted" = EXCLUDED."_pgland_is_deleted",
    "_pgland_raw_data" = EXCLUDED."_pgland_raw_data",
    "_pgland_landed_at" = now(),
    "_pgland_run_id" = $3::uuid,
    "_pgland_deleted_at" = CASE WHEN EXCLUDED."_pgland_is_deleted" THEN coalesce(landed."_pgland_deleted_at", now()) END
  WHERE landed."_pgland_last_modified_at" <= EXCLUDED."_pgland_last_modified_at"
    AND (landed."amount", landed."email", landed."stages", landed."_pgland_last_modified_at", landed."_pgland_is_deleted", landed."_pgland_raw_data")
        IS DISTINCT FROM (EXCLUDED."amount", EXCLUDED."email", EXCLUDED."stages", EXCLUDED."_pgland_last_modified_at", EXCLUDED."_pgland_is_deleted", EXCLUDED."_pgland_raw_data")
  RETURNING "id", (xmax = 0) AS inserted, "_pgland_is_deleted" AS now_deleted,
    CASE WHEN xmax <> 0 THEN (SELECT o."_pgland_is_deleted" FROM "pgland"."hubspot_deal" AS o WHERE o."_pgland_provider" = $1::text AND o."_pgland_customer_id" = $2::text AND o."id" = landed."id") END AS was_deleted
),
removed AS (
  DELETE FROM "pgland"."hubspot_deal" AS landed
  USING src
  WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND src."_pgland_is_deleted"
    AND landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
  RETURNING landed."id"
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
  count(*) FILTER (WHERE m.inserted)::bigint AS inserted,
  count(*) FILTER (WHERE NOT m.inserted AND NOT (m.now_deleted AND NOT m.was_deleted))::bigint AS updated,
  (count(*) FILTER (WHERE NOT m.inserted AND m.now_deleted AND NOT m.was_deleted) + (SELECT count(*) FROM removed))::bigint AS deleted,
  count(*) FILTER (WHERE NOT m.inserted AND NOT m.now_deleted AND m.was_deleted)::bigint AS undeleted,
  (0 + 0)::bigint AS skipped,
  0::bigint AS duplicates
FROM merged m
