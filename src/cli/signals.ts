import type { Logger } from '../log.js';
import { EXIT } from './exit.js';

/**
 * The first SIGINT or SIGTERM cancels the command's run (the batch in flight
 * rolls back, the run is recorded as cancelled, no later STATE is written); a
 * second one exits at once.
 */
export function cancelOnSignals(log: Logger): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(EXIT.failure);
    log.warn({ signal: sig }, 'cancelling: rolling back the batch in flight');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A command waiting for its next line on stdin stops reading: the input ends.
  controller.signal.addEventListener('abort', () => process.stdin.destroy(), { once: true });
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
