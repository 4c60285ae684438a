-- A saved view's options (pg_class.reloptions: security_barrier,
-- security_invoker, check_option, a materialized view's storage parameters):
-- a view recreated from its saved text without security_invoker would read
-- the table with its owner's rights, past row-level security.
ALTER TABLE {{schema}}._pgland_saved_views ADD COLUMN options text[];
