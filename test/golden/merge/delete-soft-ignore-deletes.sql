-- delete-soft-ignore-deletes: {"schema":"pgland","def":"hubspot_deal","provider":"hubspot","customerId":"acme","runId":"00000000-0000-0000-0000-000000000000","write":"delete","deleteMode":"soft","ignoreDeletes":true,"matchColumn":"id","trackSeen":false}
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM "_pgland_stage"
  ORDER BY "id", "_pgland_last_modified_at" DESC, "_pgland_line" DESC
),
changed AS (
  UPDATE "pgland"."hubspot_deal" AS landed SET
    "_pgland_is_deleted" = true,
    "_pgland_deleted_at" = coalesce(landed."_pgland_deleted_at", now()),
    "_pgland_last_modified_at" = src."_pgland_last_modified_at",
    "_pgland_landed_at" = now(),
    "_pgland_run_id" = $3::uuid
  FROM src
  WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id" AND NOT landed."_pgland_is_deleted" AND landed."_pgland_last_modified_at" <= src."_pgland_last_modified_at"
  RETURNING src."id" AS k, landed."id", true AS now_deleted, false AS was_deleted
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
  ((SELECT count(DISTINCT c.k) FILTER (WHERE c.now_deleted AND NOT c.was_deleted) FROM changed c) + 0)::bigint AS deleted,
  (SELECT count(DISTINCT c.k) FILTER (WHERE NOT c.now_deleted AND c.was_deleted) FROM changed c)::bigint AS undeleted,
  ((SELECT count(*) FROM src WHERE true AND NOT EXISTS (
      SELECT 1 FROM "pgland"."hubspot_deal" AS landed WHERE landed."_pgland_provider" = $1::text AND landed."_pgland_customer_id" = $2::text AND landed."id" = src."id")) + 0)::bigint AS skipped,
  0::bigint AS duplicates,
  $3::uuid AS run_id -- every merge statement takes the same three parameters
