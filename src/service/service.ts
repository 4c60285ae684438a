import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PglandError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { PGLAND_VERSION } from '../package.js';
import { destinationRoutes } from './destinations/api-destinations.js';
import { opsRoutes } from './ops/api-ops.js';
import { queryActionRoutes } from './reads/api-query.js';
import { intoRoutes } from './runs/api-into.js';
import { recordRoutes } from './runs/api-records.js';
import { readRoutes } from './reads/api-reads.js';
import { runRoutes } from './runs/api-runs.js';
import { scheduleRoutes } from './schedules/api-schedules.js';
import { webhookRoutes } from './webhooks/api-webhooks.js';
import type { ServiceContext } from './context.js';
import { consoleRoutes } from './http/console.js';
import { openControlDb } from './control/control-db.js';
import { DestinationStore } from './destinations/destination-store.js';
import { Egress } from './outbound/egress.js';
import { createHttp } from './http/server.js';
import { pruneInbound } from './webhooks/inbound.js';
import { Ingest } from './runs/ingest.js';
import { HELD_OVERLAP, type HeldOverlap } from '../load/held-run.js';
import { LIMIT_DEFAULTS } from './runs/limits.js';
import { WRITE_THROUGH_DEFAULTS, type WriteThroughLimits } from './runs/write-through-limits.js';
import { ServiceMetrics } from './ops/metrics.js';
import { EndpointStore } from './webhooks/outbox.js';
import { ConnectionBudget } from './destinations/connection-budget.js';
import { DestinationPools } from './destinations/pools.js';
import { Scheduler, type SchedulerOptions } from './jobs/scheduler.js';
import { parseSecretKey, secretBox } from './control/secrets.js';
import { DEFAULT_SENDER, WebhookSender, type SenderOptions } from './webhooks/sender.js';
import { parseWebhookSecret } from './webhooks/signing.js';

export interface ServiceOptions {
  /** HTTP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1; any other needs an API token. */
  host?: string;
  /** The control database (postgres:// URL); an embedded one in dataDir when omitted. */
  controlUrl?: string;
  /** Where the embedded control database lives. Default .pgland/control. */
  dataDir?: string;
  /** 32 bytes (or their hex / base64 text) sealing secrets at rest: PGLAND_SECRET_KEY. */
  secretKey: Buffer | string;
  /** Bearer token every API call must carry: PGLAND_API_TOKEN. */
  apiToken?: string;
  /** whsec_… secrets inbound webhooks may be signed with. */
  inboundSecrets?: string[];
  /** Serve the HTTP API (a --worker serves only /healthz, /readyz and /metrics). Default true. */
  api?: boolean;
  /** Take scheduled jobs in this process. Default true. */
  jobs?: boolean;
  /** Largest decompressed batch body, in bytes. Default 1 GiB. */
  maxBatchBytes?: number;
  /** Open runs not committed within this many hours are aborted. Default 24. */
  runTtlHours?: number;
  /** Serve POST /destinations/{id}/query and /exec (arbitrary SQL as the destination's role): PGLAND_ALLOW_QUERY_ACTIONS. Default false. */
  allowQueryActions?: boolean;
  /** Networks (CIDRs) webhooks and URL sources may reach although they are not public: PGLAND_ALLOW_NETWORKS. Default none. */
  allowNetworks?: string[];
  /** The longest input line of an upload or a scheduled run; a longer one is a reject, skipped unread. Default 64 MiB. */
  maxRecordBytes?: number;
  /** An upload whose body sends nothing for this long fails with 408. Default 30 s. */
  bodyIdleTimeoutMs?: number;
  /** An upload whose body is still arriving after this long fails with 408. Default 10 min. */
  uploadTimeoutMs?: number;
  /** Batch uploads in flight per destination in this process; more get 429. Default 4 (the pool has 6). */
  maxUploadsPerDestination?: number;
  /** Open runs per destination; opening another gets 429. Default 50. */
  maxOpenRunsPerDestination?: number;
  /** How large one write-through may be (records, JSON body bytes). Default WRITE_THROUGH_DEFAULTS. */
  writeThrough?: WriteThroughLimits;
  /** Hold an HTTP run in one open transaction where its batches arrive (docs/service.md, "How a run is held"). Default true. */
  holdRuns?: boolean;
  /** A held run with no batch and no commit for this long is rolled back, its batches lost until sent again. Default 10 min. */
  heldRunIdleMs?: number;
  /** How long a commit of a run another process holds waits for that process to commit it; then 503 run_held_elsewhere. Default 2 min. */
  heldCommitWaitMs?: number;
  /** When a held run's batches overlap their merges (held-run.ts, HeldOverlap); the defaults otherwise. */
  heldOverlap?: Partial<HeldOverlap>;
  sender?: Partial<SenderOptions>;
  scheduler?: Partial<SchedulerOptions>;
  log?: Logger;
}

export interface Service {
  /** http://host:port, when the HTTP server listens. */
  url: string | undefined;
  context: ServiceContext;
  app: FastifyInstance;
  /** Graceful stop: no new jobs or requests, finish (or roll back) what runs, flush the outbox, close. */
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Starts pgland's service: control database, webhook sender, job worker, HTTP API. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const api = options.api ?? true;
  if (api && !options.apiToken && !isLoopback(host)) {
    throw new PglandError('config_invalid', `listening on ${host} without an API token would let anyone reaching the port configure destinations`, {
      hint: 'set PGLAND_API_TOKEN (e.g. openssl rand -base64 32), or listen on 127.0.0.1',
    });
  }
  const box = secretBox(Buffer.isBuffer(options.secretKey) ? options.secretKey : parseSecretKey(options.secretKey));
  const egress = new Egress(options.allowNetworks ?? []);
  const inboundKeys = (options.inboundSecrets ?? []).map((s, i) => parseWebhookSecret(s, `inbound webhook secret ${i + 1}`));
  const ctl = await openControlDb({ ...(options.controlUrl ? { url: options.controlUrl } : {}), dataDir: options.dataDir ?? join('.pgland', 'control'), log });
  const events = new EventEmitter();
  events.on('error', (err: Error) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'background task failed'));
  let stopping = false;

  const metrics = new ServiceMetrics(ctl);
  const destinations = new DestinationStore(ctl, box);
  const budget = new ConnectionBudget(ctl.pool, log);
  const pools = new DestinationPools(destinations, log, { maxRecordBytes: options.maxRecordBytes ?? LIMIT_DEFAULTS.maxRecordBytes }, undefined, budget);
  const sender = new WebhookSender(ctl, box, metrics, log, { ...DEFAULT_SENDER, ...options.sender }, egress);
  sender.on('error', (err: Error) => events.emit('error', err));
  const uploadTimeoutMs = options.uploadTimeoutMs ?? LIMIT_DEFAULTS.uploadTimeoutMs;
  const ingest = new Ingest({
    ctl,
    pools,
    metrics,
    log,
    onEnqueued: () => sender.wake(),
    maxBatchBytes: options.maxBatchBytes ?? 1024 ** 3,
    bodyTimeouts: { idleMs: options.bodyIdleTimeoutMs ?? LIMIT_DEFAULTS.bodyIdleTimeoutMs, totalMs: uploadTimeoutMs },
    maxUploadsPerDestination: options.maxUploadsPerDestination ?? LIMIT_DEFAULTS.maxUploadsPerDestination,
    maxOpenRunsPerDestination: options.maxOpenRunsPerDestination ?? LIMIT_DEFAULTS.maxOpenRunsPerDestination,
    holdRuns: options.holdRuns ?? true,
    heldRunIdleMs: options.heldRunIdleMs ?? 600_000,
    heldCommitWaitMs: options.heldCommitWaitMs ?? 120_000,
    heldOverlap: { ...HELD_OVERLAP, ...options.heldOverlap },
  });
  // A destination whose config changed or that was deleted: its pool closes, and the runs held on it roll back.
  pools.onClose((id) => ingest.letGo('the destination changed', id));
  const scheduler = new Scheduler({ ctl, box, pools, metrics, log, onEnqueued: () => sender.wake(), egress }, options.scheduler ?? {});
  scheduler.on('error', (err: Error) => events.emit('error', err));

  const context: ServiceContext = {
    ctl,
    box,
    destinations,
    pools,
    endpoints: new EndpointStore(ctl, box, egress),
    ingest,
    metrics,
    sender,
    scheduler,
    inboundKeys,
    log,
    events,
    async readiness() {
      const checks: Record<string, string> = { shutdown: stopping ? 'stopping' : 'ok' };
      try {
        await ctl.pool.query('SELECT 1');
        checks.control_db = 'ok';
      } catch (err) {
        // /readyz is public: the database's own words (host, role, database) go to the log only.
        log.warn({ err: { message: (err as Error).message } }, 'readiness: the control database does not answer');
        checks.control_db = 'failed';
      }
      checks.jobs = scheduler.state();
      return checks;
    },
  };

  const { app, openapi } = createHttp({
    log,
    ...(options.apiToken ? { apiToken: options.apiToken } : {}),
    title: 'pgland',
    version: PGLAND_VERSION,
    // Past the upload's own timers (limits.ts): a backstop for every request, the headers' time included.
    requestTimeoutMs: uploadTimeoutMs + 60_000,
  });
  opsRoutes(app, context, openapi);
  if (api) {
    destinationRoutes(app, context);
    runRoutes(app, context);
    recordRoutes(app, context, options.writeThrough ?? WRITE_THROUGH_DEFAULTS, options.maxUploadsPerDestination ?? LIMIT_DEFAULTS.maxUploadsPerDestination);
    intoRoutes(app, context);
    webhookRoutes(app, context);
    scheduleRoutes(app, context);
    queryActionRoutes(app, context, options.allowQueryActions ?? false);
    readRoutes(app, context);
    consoleRoutes(app);
  }

  const janitor = setInterval(() => {
    void (async () => {
      await pruneInbound(ctl);
      await ingest.expireOpenRuns(options.runTtlHours ?? 24);
    })().catch((err: unknown) => events.emit('error', err));
  }, 60_000);
  janitor.unref();

  let url: string | undefined;
  try {
    sender.start();
    await scheduler.start({ work: options.jobs ?? true });
    if (api) await ingest.startRelay();
    await app.listen({ port: options.port ?? 8080, host });
    const address = app.server.address();
    if (address && typeof address === 'object') url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    log.info({ url, api, jobs: options.jobs ?? true, keyId: box.keyId }, 'pgland service listening');
  } catch (err) {
    clearInterval(janitor);
    await scheduler.stop({ timeoutMs: 1000 }).catch(() => undefined);
    await sender.stop();
    await app.close().catch(() => undefined);
    await ingest.stopRelay();
    await pools.closeAll();
    await ctl.close();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    url,
    context,
    app,
    stop(stopOptions = {}) {
      stopped ??= (async () => {
        stopping = true;
        const timeoutMs = stopOptions.timeoutMs ?? 30_000;
        clearInterval(janitor);
        // Open to close in reverse: stop taking jobs (the one running finishes
        // or is cancelled, its batch rolled back), finish the requests in
        // flight, send what the outbox has due, then close the pools.
        await scheduler.stop({ timeoutMs }).catch((err: unknown) => events.emit('error', err));
        // Requests in flight get the same time; then their connections are
        // cut, which fails an upload's COPY and rolls its batch back.
        const cut = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
        cut.unref();
        await app.close();
        clearTimeout(cut);
        // Held runs roll back: their clients send those batches again to another process.
        await ingest.letGo('the service is stopping');
        await ingest.stopRelay();
        await sender.stop({ flush: true, timeoutMs: Math.min(timeoutMs, 10_000) });
        await pools.closeAll();
        await ctl.close();
        log.info('pgland service stopped');
      })();
      return stopped;
    },
  };
}
