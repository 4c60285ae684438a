-- What schema evolution did to the landed table in each run (docs/service.md,
-- "Runs"): the schema.evolved webhook's report, kept with the run so that it
-- can be read whether or not a webhook endpoint listened. NULL when the run
-- changed no table (or has not finished).
ALTER TABLE {{schema}}.runs ADD COLUMN evolution jsonb;
