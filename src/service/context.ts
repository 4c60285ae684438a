import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { ControlDb } from './control.js';
import type { DestinationStore } from './destinations.js';
import type { Ingest } from './ingest.js';
import type { ServiceMetrics } from './metrics.js';
import type { EndpointStore } from './outbox.js';
import type { DestinationPools } from './pools.js';
import type { Scheduler } from './scheduler.js';
import type { SecretBox } from './secrets.js';
import type { WebhookSender } from './sender.js';

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
