// The library's entry points that most users of openDestination() never call,
// loaded on first call. Their modules (the HTTP server, the job queue, the
// embedded server, ssh2) would otherwise cost every process that imports
// pgland about 12 MB of memory before it lands a row.
import type { DestinationConfig } from './config/resolve.js';
import type { CheckReport } from './connection/check.js';
import type { EmbeddedOptions, EmbeddedServer } from './embedded/server.js';
import type { Logger } from './log.js';
import type { Service, ServiceOptions } from './service/service.js';

/** Connection check, step by step (docs/connecting.md). */
export async function runCheck(cfg: DestinationConfig, options: { log?: Logger } = {}): Promise<CheckReport> {
  return (await import('./connection/check.js')).runCheck(cfg, options);
}

/** The destination service: HTTP API and scheduler (docs/service.md). */
export async function startService(options: ServiceOptions): Promise<Service> {
  return (await import('./service/service.js')).startService(options);
}

/** A throwaway (or persistent) PostgreSQL server of pgland's own. */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  return (await import('./embedded/server.js')).startEmbedded(options);
}
