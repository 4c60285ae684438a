-- Inbound sync webhooks that drive runs (docs/service.md, "Inbound webhooks").

-- What pgland did with each accepted inbound webhook: 'queued' a run (job_id),
-- 'coalesced' into a run already queued (job_id), or 'ignored' it (detail says why).
ALTER TABLE {{schema}}.inbound_webhooks
  ADD COLUMN action text CHECK (action IN ('queued', 'coalesced', 'ignored')),
  ADD COLUMN detail text,
  ADD COLUMN job_id uuid;
CREATE INDEX inbound_webhooks_job_idx ON {{schema}}.inbound_webhooks (job_id) WHERE job_id IS NOT NULL;

-- A run asked for by a sync.requested webhook: origin 'webhook', and the webhook-id it came from.
ALTER TABLE {{schema}}.runs DROP CONSTRAINT runs_origin_check;
ALTER TABLE {{schema}}.runs ADD CONSTRAINT runs_origin_check CHECK (origin IN ('http', 'schedule', 'webhook'));
ALTER TABLE {{schema}}.runs ADD COLUMN inbound_id text;
