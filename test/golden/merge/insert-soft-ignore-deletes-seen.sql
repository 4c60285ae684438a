-- insert-soft-ignore-deletes-seen: {"schema":"pgland","def":"hubspot_deal","provider":"hubspot","customerId":"acme","runId":"00000000-0000-0000-0000-000000000000","write":"insert","deleteMode":"soft","ignoreDeletes":true,"matchColumn":"id","trackSeen":true}
WITH src AS (
  SELECT DISTINCT ON ("id") *
  FROM "_pgland_stage"
  ORDER BY "id", "_pgland_last_modified_at" DESC, "_pgland_line" DESC
),
merged AS (
  INSERT INTO "pgland"."hubspot_deal" AS landed (
    "_pgland_provider", "_pgland_customer_id", "id", "amount", "email", "stages",
    "_pgland_landed_at", "_pgland_last_modified_at", "_pgland_is_deleted", "_pgland_deleted_at", "_pgland_run_id", "_pgland_raw_data"
  )
  SELECT $1::text, $2::text, "id", "amount", "email", "stages",
    now(), "_pgland_last_modified_at", "_pgland_is_deleted",
    CASE WHEN "_pgland_is_deleted" THEN now() END, $3::uuid, "_pgland_raw_data"
  FROM src
  WHERE NOT "_pgland_is_deleted"
  ON CONFLICT ("_pgland_provider", "_pgland_customer_id", "id") DO NOTHING
  RETURNING "id", true AS inserted, "_pgland_is_deleted" AS now_deleted, NULL::boolean AS was_deleted
),
duplicates AS (
  INSERT INTO "pgland"._pgland_problems (run_id, line_number, record_id, field, column_name, reason, value_excerpt)
  SELECT $3::uuid, s._pgland_line, s."id", 'id', 'id',
         'duplicate key: this id is already landed and the write mode is insert (append only); use --write upsert to update it',
         NULL
  FROM src s
  WHERE NOT s."_pgland_is_deleted"
    AND NOT EXISTS (SELECT 1 FROM merged m WHERE m."id" = s."id")
  RETURNING 1
),
seen AS (
  INSERT INTO "pgland"._pgland_full_refresh_seen (run_id, "id")
  SELECT $3::uuid, "id" FROM src
  ON CONFLICT DO NOTHING
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
  (count(*) FILTER (WHERE NOT m.inserted AND m.now_deleted AND NOT m.was_deleted) + 0)::bigint AS deleted,
  count(*) FILTER (WHERE NOT m.inserted AND NOT m.now_deleted AND m.was_deleted)::bigint AS undeleted,
  ((SELECT deleted_records FROM staged) + (SELECT count(*) FROM duplicates))::bigint AS skipped,
  (SELECT count(*) FROM duplicates)::bigint AS duplicates
FROM merged m
