import type { Logger } from '../log.js';
import { resolveServeOptions, type ServeFlags } from '../service/options.js';
import { EXIT } from './exit.js';

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
