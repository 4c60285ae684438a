// The library's entry points that most users of openDestination() never call,
// loaded on first call. Their modules (the HTTP server, the job queue, the
// embedded server, ssh2) would otherwise cost every process that imports
// pgland about 12 MB of memory before it lands a row. The signatures are the
// modules' own (type-only imports load nothing).
type Check = typeof import('./connection/check.js');
type ServiceModule = typeof import('./service/service.js');
type Embedded = typeof import('./embedded/server.js');

/** Connection check, step by step (docs/connecting.md). */
export async function runCheck(...args: Parameters<Check['runCheck']>): ReturnType<Check['runCheck']> {
  return (await import('./connection/check.js')).runCheck(...args);
}

/** The destination service: HTTP API and scheduler (docs/service.md). */
export async function startService(...args: Parameters<ServiceModule['startService']>): ReturnType<ServiceModule['startService']> {
  return (await import('./service/service.js')).startService(...args);
}

/** A throwaway (or persistent) PostgreSQL server of pgland's own. */
export async function startEmbedded(...args: Parameters<Embedded['startEmbedded']>): ReturnType<Embedded['startEmbedded']> {
  return (await import('./embedded/server.js')).startEmbedded(...args);
}
