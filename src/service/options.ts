import { z } from 'zod';
import { PglandError } from '../errors.js';
import { parseNetworks } from './outbound/egress.js';
import { LIMIT_DEFAULTS } from './runs/limits.js';
import { WRITE_THROUGH_CEILING, WRITE_THROUGH_DEFAULTS } from './runs/write-through-limits.js';
import type { ServiceOptions } from './service.js';

/**
 * `pgland serve`'s settings, resolved in one place: flag > environment >
 * default (docs/service.md lists each). Secrets (the secret key, the API
 * token, webhook secrets, the control URL) come from the environment; errors
 * name the setting, never its value.
 */
export interface ServeFlags {
  port?: string;
  host?: string;
  worker?: boolean;
  controlUrl?: string;
  dataDir?: string;
  concurrency?: string;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z
  .string()
  .optional()
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const settings = z.object({
  port: int(0, 65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  worker: z.boolean().default(false),
  control_url: z.string().min(1).optional(),
  data_dir: z.string().min(1).default('.pgland/control'),
  concurrency: int(1, 64).default(1),
  secret_key: z.string().optional(),
  api_token: z.string().min(16, 'must be at least 16 characters').optional(),
  inbound_secrets: z.string().optional(),
  allow_command_sources: flag,
  allow_query_actions: flag,
  allow_networks: z.string().optional(),
  max_batch_bytes: int(1024, 64 * 1024 ** 3).default(1024 ** 3),
  max_record_bytes: int(1024, 1024 ** 3).default(LIMIT_DEFAULTS.maxRecordBytes),
  body_idle_timeout_ms: int(100, 3_600_000).default(LIMIT_DEFAULTS.bodyIdleTimeoutMs),
  upload_timeout_ms: int(1000, 86_400_000).default(LIMIT_DEFAULTS.uploadTimeoutMs),
  max_uploads_per_destination: int(1, 1000).default(LIMIT_DEFAULTS.maxUploadsPerDestination),
  max_open_runs_per_destination: int(1, 100_000).default(LIMIT_DEFAULTS.maxOpenRunsPerDestination),
  write_through_max_records: int(1, WRITE_THROUGH_CEILING.maxRecords).default(WRITE_THROUGH_DEFAULTS.maxRecords),
  write_through_max_bytes: int(1024, WRITE_THROUGH_CEILING.maxBytes).default(WRITE_THROUGH_DEFAULTS.maxBytes),
  held_run_idle_ms: int(1000, 86_400_000).default(600_000),
  no_held_runs: flag,
  run_ttl_hours: z.coerce
    .number()
    .positive()
    .max(24 * 365)
    .default(24),
  shutdown_timeout_ms: int(0, 3_600_000).default(30_000),
  jobs_poll_interval_s: z.coerce.number().min(0.5).max(600).default(2),
  jobs_maintenance_interval_s: int(1, 3600).default(60),
  jobs_retry_limit: int(0, 100).default(3),
  jobs_retry_delay_s: int(0, 86_400).default(30),
  webhook_retry_base_ms: int(10, 3_600_000).default(5000),
  webhook_retry_max_ms: int(10, 86_400_000).default(3_600_000),
  webhook_max_attempts: int(1, 100).default(15),
  webhook_timeout_ms: int(100, 120_000).default(10_000),
});

/** The environment variable of each setting. */
export const SERVE_ENV: Record<string, string> = {
  port: 'PGLAND_SERVE_PORT',
  host: 'PGLAND_SERVE_HOST',
  control_url: 'PGLAND_CONTROL_URL',
  data_dir: 'PGLAND_CONTROL_DATA_DIR',
  concurrency: 'PGLAND_WORKER_CONCURRENCY',
  secret_key: 'PGLAND_SECRET_KEY',
  api_token: 'PGLAND_API_TOKEN',
  inbound_secrets: 'PGLAND_INBOUND_WEBHOOK_SECRET',
  allow_command_sources: 'PGLAND_ALLOW_COMMAND_SOURCES',
  allow_query_actions: 'PGLAND_ALLOW_QUERY_ACTIONS',
  allow_networks: 'PGLAND_ALLOW_NETWORKS',
  max_batch_bytes: 'PGLAND_MAX_BATCH_BYTES',
  held_run_idle_ms: 'PGLAND_HELD_RUN_IDLE_MS',
  no_held_runs: 'PGLAND_NO_HELD_RUNS',
  max_record_bytes: 'PGLAND_MAX_RECORD_BYTES',
  body_idle_timeout_ms: 'PGLAND_BODY_IDLE_TIMEOUT_MS',
  upload_timeout_ms: 'PGLAND_UPLOAD_TIMEOUT_MS',
  max_uploads_per_destination: 'PGLAND_MAX_UPLOADS_PER_DESTINATION',
  max_open_runs_per_destination: 'PGLAND_MAX_OPEN_RUNS_PER_DESTINATION',
  write_through_max_records: 'PGLAND_WRITE_THROUGH_MAX_RECORDS',
  write_through_max_bytes: 'PGLAND_WRITE_THROUGH_MAX_BYTES',
  run_ttl_hours: 'PGLAND_RUN_TTL_HOURS',
  shutdown_timeout_ms: 'PGLAND_SHUTDOWN_TIMEOUT_MS',
  jobs_poll_interval_s: 'PGLAND_JOBS_POLL_INTERVAL_S',
  jobs_maintenance_interval_s: 'PGLAND_JOBS_MAINTENANCE_INTERVAL_S',
  jobs_retry_limit: 'PGLAND_JOBS_RETRY_LIMIT',
  jobs_retry_delay_s: 'PGLAND_JOBS_RETRY_DELAY_S',
  webhook_retry_base_ms: 'PGLAND_WEBHOOK_RETRY_BASE_MS',
  webhook_retry_max_ms: 'PGLAND_WEBHOOK_RETRY_MAX_MS',
  webhook_max_attempts: 'PGLAND_WEBHOOK_MAX_ATTEMPTS',
  webhook_timeout_ms: 'PGLAND_WEBHOOK_TIMEOUT_MS',
};

const SECRET_SETTINGS = new Set(['secret_key', 'api_token', 'inbound_secrets', 'control_url']);

export interface ResolvedServe {
  options: Omit<ServiceOptions, 'log'>;
  shutdownTimeoutMs: number;
}

export function resolveServeOptions(flags: ServeFlags, env: NodeJS.ProcessEnv): ResolvedServe {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(SERVE_ENV)) if (env[name] !== undefined && env[name] !== '') raw[key] = env[name];
  const fromFlags: Record<string, unknown> = {
    port: flags.port,
    host: flags.host,
    control_url: flags.controlUrl,
    data_dir: flags.dataDir,
    concurrency: flags.concurrency,
  };
  for (const [k, v] of Object.entries(fromFlags)) if (v !== undefined) raw[k] = v;
  raw.worker = flags.worker ?? false;
  const parsed = settings.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0]);
      return `${SERVE_ENV[key] ?? key}: ${i.message}${SECRET_SETTINGS.has(key) ? ' (value hidden)' : ''}`;
    });
    throw new PglandError('config_invalid', `invalid service settings:\n  ${lines.join('\n  ')}`, { hint: 'see docs/service.md, "Settings"' });
  }
  const s = parsed.data;
  if (s.worker && !s.control_url) {
    throw new PglandError('config_invalid', 'a worker needs the control database the API uses', {
      hint: 'give --control-url or PGLAND_CONTROL_URL (the embedded control database serves one process only)',
    });
  }
  return {
    shutdownTimeoutMs: s.shutdown_timeout_ms,
    options: {
      port: s.port,
      host: s.host,
      ...(s.control_url ? { controlUrl: s.control_url } : {}),
      dataDir: s.data_dir,
      secretKey: s.secret_key ?? '',
      ...(s.api_token ? { apiToken: s.api_token } : {}),
      inboundSecrets: (s.inbound_secrets ?? '').split(/[\s,]+/).filter(Boolean),
      allowNetworks: parseNetworks(s.allow_networks ?? ''),
      allowQueryActions: s.allow_query_actions,
      api: !s.worker,
      jobs: true,
      maxBatchBytes: s.max_batch_bytes,
      maxRecordBytes: s.max_record_bytes,
      bodyIdleTimeoutMs: s.body_idle_timeout_ms,
      uploadTimeoutMs: s.upload_timeout_ms,
      maxUploadsPerDestination: s.max_uploads_per_destination,
      maxOpenRunsPerDestination: s.max_open_runs_per_destination,
      writeThrough: { maxRecords: s.write_through_max_records, maxBytes: s.write_through_max_bytes },
      holdRuns: !s.no_held_runs,
      heldRunIdleMs: s.held_run_idle_ms,
      runTtlHours: s.run_ttl_hours,
      sender: {
        retryBaseMs: s.webhook_retry_base_ms,
        retryMaxMs: s.webhook_retry_max_ms,
        maxAttempts: s.webhook_max_attempts,
        timeoutMs: s.webhook_timeout_ms,
      },
      scheduler: {
        concurrency: s.concurrency,
        pollingIntervalSeconds: s.jobs_poll_interval_s,
        maintenanceIntervalSeconds: s.jobs_maintenance_interval_s,
        retryLimit: s.jobs_retry_limit,
        retryDelaySeconds: s.jobs_retry_delay_s,
        allowCommands: s.allow_command_sources,
      },
    },
  };
}
