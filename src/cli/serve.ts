import type { Logger } from '../log.js';
import { resolveServeOptions, type ServeFlags } from '../service/options.js';
import { EXIT } from './exit.js';

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

/** `pgland serve [--port N] [--worker]`: runs until SIGTERM or SIGINT. */
export async function serveCommand(flags: ServeFlags, log: Logger): Promise<number> {
  const { options, shutdownTimeoutMs } = resolveServeOptions(flags, process.env);
  // Loaded here, not at the top: the service's modules (HTTP server, metrics, job queue) cost every other command's start.
  const { startService } = await import('../service/service.js');
  const service = await startService({ ...options, log });
  process.stderr.write(options.api ? `pgland serve: listening on ${service.url}\n` : `pgland serve --worker: taking jobs (health on ${service.url})\n`);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second signal does not wait.
      const hard = (): never => process.exit(EXIT.failure);
      process.once('SIGINT', hard);
      process.once('SIGTERM', hard);
      log.info({ signal: sig }, 'stopping: finishing the work in flight');
      service.stop({ timeoutMs: shutdownTimeoutMs }).then(resolve, (err: unknown) => {
        log.error({ err: { message: (err as Error).message } }, 'stopping failed');
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return EXIT.ok;
}
