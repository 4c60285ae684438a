-- schema pgland_control

TABLE _pgland_migrations
  id integer NOT NULL
  name text NOT NULL
  applied_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT _pgland_migrations_pkey PRIMARY KEY (id)
  CREATE UNIQUE INDEX _pgland_migrations_pkey ON pgland_control._pgland_migrations USING btree (id)

TABLE destinations
  id uuid NOT NULL
  name text NOT NULL
  config jsonb NOT NULL
  secrets text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT destinations_name_key UNIQUE (name)
  CONSTRAINT destinations_pkey PRIMARY KEY (id)
  CREATE UNIQUE INDEX destinations_name_key ON pgland_control.destinations USING btree (name)
  CREATE UNIQUE INDEX destinations_pkey ON pgland_control.destinations USING btree (id)

TABLE import_states
  schedule_id uuid NOT NULL
  state jsonb NOT NULL
  run_id uuid NOT NULL
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT import_states_pkey PRIMARY KEY (schedule_id)
  CONSTRAINT import_states_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES pgland_control.schedules(id) ON DELETE CASCADE
  CREATE UNIQUE INDEX import_states_pkey ON pgland_control.import_states USING btree (schedule_id)

TABLE inbound_webhooks
  webhook_id text NOT NULL
  event_type text
  payload jsonb NOT NULL
  signed_at timestamp with time zone NOT NULL
  received_at timestamp with time zone NOT NULL DEFAULT now()
  action text
  detail text
  job_id uuid
  CONSTRAINT inbound_webhooks_action_check CHECK ((action = ANY (ARRAY['queued'::text, 'coalesced'::text, 'ignored'::text])))
  CONSTRAINT inbound_webhooks_pkey PRIMARY KEY (webhook_id)
  CREATE INDEX inbound_webhooks_job_idx ON pgland_control.inbound_webhooks USING btree (job_id) WHERE (job_id IS NOT NULL)
  CREATE UNIQUE INDEX inbound_webhooks_pkey ON pgland_control.inbound_webhooks USING btree (webhook_id)
  CREATE INDEX inbound_webhooks_received_idx ON pgland_control.inbound_webhooks USING btree (received_at)

TABLE query_actions
  id uuid NOT NULL
  destination_id uuid
  action text NOT NULL
  caller text NOT NULL
  statement_sha256 text NOT NULL
  params integer NOT NULL
  row_count integer
  duration_ms integer NOT NULL
  outcome text NOT NULL
  started_at timestamp with time zone NOT NULL
  CONSTRAINT query_actions_action_check CHECK ((action = ANY (ARRAY['query'::text, 'exec'::text])))
  CONSTRAINT query_actions_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES pgland_control.destinations(id) ON DELETE SET NULL
  CONSTRAINT query_actions_pkey PRIMARY KEY (id)
  CREATE INDEX query_actions_destination_idx ON pgland_control.query_actions USING btree (destination_id, started_at DESC)
  CREATE UNIQUE INDEX query_actions_pkey ON pgland_control.query_actions USING btree (id)

TABLE runs
  id uuid NOT NULL
  destination_id uuid
  destination_run_id uuid
  origin text NOT NULL
  schedule_id uuid
  job_id uuid
  provider text NOT NULL
  customer_id text NOT NULL
  object text NOT NULL
  kind text NOT NULL
  mode text NOT NULL
  write_mode text NOT NULL
  options jsonb NOT NULL DEFAULT '{}'::jsonb
  schema_name text NOT NULL
  status text NOT NULL
  counts jsonb
  watermark timestamp with time zone
  error text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  finished_at timestamp with time zone
  inbound_id text
  evolution jsonb
  CONSTRAINT runs_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES pgland_control.destinations(id) ON DELETE SET NULL
  CONSTRAINT runs_mode_check CHECK ((mode = ANY (ARRAY['full'::text, 'incremental'::text])))
  CONSTRAINT runs_origin_check CHECK ((origin = ANY (ARRAY['http'::text, 'schedule'::text, 'webhook'::text])))
  CONSTRAINT runs_pkey PRIMARY KEY (id)
  CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['open'::text, 'committing'::text, 'running'::text, 'succeeded'::text, 'partial'::text, 'failed'::text, 'cancelled'::text])))
  CREATE INDEX runs_destination_idx ON pgland_control.runs USING btree (destination_id, created_at DESC)
  CREATE UNIQUE INDEX runs_pkey ON pgland_control.runs USING btree (id)
  CREATE INDEX runs_status_idx ON pgland_control.runs USING btree (status, created_at)

TABLE schedules
  id uuid NOT NULL
  destination_id uuid NOT NULL
  provider text NOT NULL
  customer_id text NOT NULL
  object text NOT NULL
  kind text NOT NULL
  mode text NOT NULL
  write_mode text NOT NULL
  options jsonb NOT NULL DEFAULT '{}'::jsonb
  cron text NOT NULL
  timezone text NOT NULL DEFAULT 'UTC'::text
  source text NOT NULL
  source_kind text NOT NULL
  timeout_seconds integer NOT NULL
  enabled boolean NOT NULL DEFAULT true
  last_fired_at timestamp with time zone
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT schedules_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES pgland_control.destinations(id) ON DELETE RESTRICT
  CONSTRAINT schedules_destination_id_provider_customer_id_object_key UNIQUE (destination_id, provider, customer_id, object)
  CONSTRAINT schedules_mode_check CHECK ((mode = ANY (ARRAY['full'::text, 'incremental'::text])))
  CONSTRAINT schedules_pkey PRIMARY KEY (id)
  CONSTRAINT schedules_source_kind_check CHECK ((source_kind = ANY (ARRAY['command'::text, 'url'::text, 'postgres'::text])))
  CREATE UNIQUE INDEX schedules_destination_id_provider_customer_id_object_key ON pgland_control.schedules USING btree (destination_id, provider, customer_id, object)
  CREATE UNIQUE INDEX schedules_pkey ON pgland_control.schedules USING btree (id)

TABLE webhook_attempts
  delivery_id uuid NOT NULL
  attempt integer NOT NULL
  started_at timestamp with time zone NOT NULL
  duration_ms integer NOT NULL
  status_code integer
  error text
  response_excerpt text
  CONSTRAINT webhook_attempts_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES pgland_control.webhook_deliveries(id) ON DELETE CASCADE
  CONSTRAINT webhook_attempts_pkey PRIMARY KEY (delivery_id, attempt)
  CREATE UNIQUE INDEX webhook_attempts_pkey ON pgland_control.webhook_attempts USING btree (delivery_id, attempt)

TABLE webhook_deliveries
  id uuid NOT NULL
  message_id text NOT NULL
  endpoint_id uuid NOT NULL
  status text NOT NULL DEFAULT 'pending'::text
  attempts integer NOT NULL DEFAULT 0
  retry_from integer NOT NULL DEFAULT 0
  next_attempt_at timestamp with time zone NOT NULL DEFAULT now()
  locked_until timestamp with time zone
  last_error text
  delivered_at timestamp with time zone
  created_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES pgland_control.webhook_endpoints(id) ON DELETE CASCADE
  CONSTRAINT webhook_deliveries_message_id_endpoint_id_key UNIQUE (message_id, endpoint_id)
  CONSTRAINT webhook_deliveries_message_id_fkey FOREIGN KEY (message_id) REFERENCES pgland_control.webhook_messages(id) ON DELETE CASCADE
  CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id)
  CONSTRAINT webhook_deliveries_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
  CREATE INDEX webhook_deliveries_due_idx ON pgland_control.webhook_deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::text)
  CREATE UNIQUE INDEX webhook_deliveries_message_id_endpoint_id_key ON pgland_control.webhook_deliveries USING btree (message_id, endpoint_id)
  CREATE UNIQUE INDEX webhook_deliveries_pkey ON pgland_control.webhook_deliveries USING btree (id)

TABLE webhook_endpoints
  id uuid NOT NULL
  url text NOT NULL
  description text NOT NULL DEFAULT ''::text
  events text[] NOT NULL DEFAULT '{}'::text[]
  destination_id uuid
  secret text NOT NULL
  enabled boolean NOT NULL DEFAULT true
  created_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT webhook_endpoints_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES pgland_control.destinations(id) ON DELETE CASCADE
  CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id)
  CREATE UNIQUE INDEX webhook_endpoints_pkey ON pgland_control.webhook_endpoints USING btree (id)

TABLE webhook_messages
  id text NOT NULL
  event_type text NOT NULL
  body text NOT NULL
  created_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT webhook_messages_pkey PRIMARY KEY (id)
  CREATE UNIQUE INDEX webhook_messages_pkey ON pgland_control.webhook_messages USING btree (id)
