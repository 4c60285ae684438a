import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { ControlDb } from './control/control-db.js';
import type { DestinationStore } from './destinations/destination-store.js';
import type { Ingest } from './runs/ingest.js';
import type { ServiceMetrics } from './ops/metrics.js';
import type { EndpointStore } from './webhooks/outbox.js';
import type { DestinationPools } from './destinations/pools.js';
import type { Scheduler } from './jobs/scheduler.js';
import type { SecretBox } from './control/secrets.js';
import type { WebhookSender } from './webhooks/sender.js';

/** What the routes and background parts of a running service share. */
export interface ServiceContext {
  ctl: ControlDb;
  box: SecretBox;
  destinations: DestinationStore;
  pools: DestinationPools;
  endpoints: EndpointStore;
  ingest: Ingest;
  metrics: ServiceMetrics;
  sender: WebhookSender;
  scheduler: Scheduler;
  /** Keys of the inbound webhook secrets (several during a rotation). */
  inboundKeys: Buffer[];
  log: Logger;
  /** 'inbound' (an accepted inbound webhook), 'error' (a background failure). */
  events: EventEmitter;
  /** One entry per dependency: 'ok' or what is wrong. */
  readiness(): Promise<Record<string, string>>;
}
