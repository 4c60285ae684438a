/** `pgland serve --help`'s environment part: its own file, so that main.ts loads the service only when it runs. */
export const SERVE_HELP = `
Environment (flags win):
  PGLAND_SECRET_KEY              required: 32 bytes, hex or base64, that seal secrets at rest
                                 (openssl rand -base64 32; keep it)
  PGLAND_API_TOKEN               bearer token for the API; required unless listening on 127.0.0.1
  PGLAND_CONTROL_URL             postgres:// URL of the control database (else an embedded one in
                                 .pgland/control, or PGLAND_CONTROL_DATA_DIR)
  PGLAND_SERVE_PORT, PGLAND_SERVE_HOST, PGLAND_WORKER_CONCURRENCY
  PGLAND_INBOUND_WEBHOOK_SECRET  whsec_… secret(s) inbound webhooks are signed with (comma-separated)
  PGLAND_ALLOW_COMMAND_SOURCES   1 lets schedules run a command as their source
  PGLAND_LOG_LEVEL               trace, debug, info (default), warn, error, silent
  More (batch size limit, timeouts, retries): docs/service.md, "Settings".

pgland serve runs the HTTP API and takes scheduled jobs; pgland serve --worker only takes jobs
(and answers /healthz, /readyz, /metrics), for more workers on other machines.
SIGTERM or SIGINT stops gracefully: no new jobs or requests, the running ones finish (or are
cancelled, their current batch rolled back), the webhook outbox is flushed; a second one exits at once.`;
