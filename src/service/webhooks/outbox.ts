import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PglandError } from '../../errors.js';
import type { ControlDb } from '../control/control-db.js';
import type { Egress } from '../outbound/egress.js';
import { MARK, redactUrl } from '../outbound/redact-url.js';
import type { SecretBox } from '../control/secrets.js';
import { parseWebhookSecret } from './signing.js';

/** The events pgland sends (docs/service.md, "Outbound webhooks"). */
export const EVENT_TYPES = ['sync.complete', 'sync.error', 'schema.evolved'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface OutboundEvent {
  type: EventType;
  /** Endpoints scoped to a destination only receive its events. */
  destinationId: string | null;
  data: Record<string, unknown>;
}

/** A message id: the webhook-id header, the same on every attempt and every endpoint. */
export function messageId(): string {
  return 'msg_' + randomBytes(16).toString('base64url');
}

/**
 * Puts events in the outbox, in the caller's transaction when given a client:
 * one message per event, one delivery per enabled endpoint that wants it. An
 * event no endpoint wants leaves nothing behind.
 */
export async function enqueue(db: pg.Pool | pg.PoolClient, ctl: ControlDb, events: readonly OutboundEvent[], now = new Date()): Promise<number> {
  let deliveries = 0;
  for (const e of events) {
    const id = messageId();
    const body = JSON.stringify({ type: e.type, timestamp: now.toISOString(), data: e.data });
    const { rowCount } = await db.query(
      `WITH wanted AS (
         SELECT id FROM ${ctl.table('webhook_endpoints')}
          WHERE enabled AND (cardinality(events) = 0 OR $2 = ANY (events))
            AND (destination_id IS NULL OR destination_id = $4::uuid)
       ), message AS (
         INSERT INTO ${ctl.table('webhook_messages')} (id, event_type, body)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM wanted)
         RETURNING id
       )
       INSERT INTO ${ctl.table('webhook_deliveries')} (id, message_id, endpoint_id)
       SELECT gen_random_uuid(), message.id, wanted.id FROM message, wanted`,
      [id, e.type, body, e.destinationId],
    );
    deliveries += rowCount ?? 0;
  }
  return deliveries;
}

export interface EndpointView {
  id: string;
  url: string;
  description: string;
  events: string[];
  destination_id: string | null;
  enabled: boolean;
  secret: string;
  created_at: Date;
}

export interface EndpointInput {
  url: string;
  secret: string;
  description?: string;
  events?: string[];
  destination_id?: string | null;
  enabled?: boolean;
}

function checkUrl(url: string, egress: Egress): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PglandError('config_invalid', 'url: not a valid URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new PglandError('config_invalid', 'url: must be http:// or https://');
  // An address is refused now; a host name when it is resolved, at each attempt.
  egress.checkLiteral(u);
}

/** Webhook endpoints: their signing secrets are sealed at rest and never returned, nor credentials in their URLs. */
export class EndpointStore {
  constructor(
    private readonly ctl: ControlDb,
    private readonly box: SecretBox,
    private readonly egress: Egress,
  ) {}

  private view(row: EndpointView): EndpointView {
    return { ...row, url: redactUrl(row.url), secret: MARK };
  }

  async create(input: EndpointInput): Promise<EndpointView> {
    checkUrl(input.url, this.egress);
    parseWebhookSecret(input.secret, 'secret');
    const id = randomUUID();
    try {
      const { rows } = await this.ctl.pool.query<EndpointView>(
        `INSERT INTO ${this.ctl.table('webhook_endpoints')} (id, url, description, events, destination_id, secret, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [
          id,
          input.url,
          input.description ?? '',
          input.events ?? [],
          input.destination_id ?? null,
          this.box.seal(input.secret, `endpoint:${id}`),
          input.enabled ?? true,
        ],
      );
      return this.view(rows[0]!);
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw new PglandError('not_found', `no destination ${input.destination_id}`);
      throw err;
    }
  }

  async list(): Promise<EndpointView[]> {
    const { rows } = await this.ctl.pool.query<EndpointView>(`SELECT * FROM ${this.ctl.table('webhook_endpoints')} ORDER BY created_at, id`);
    return rows.map((r) => this.view(r));
  }

  async get(id: string): Promise<EndpointView> {
    const { rows } = await this.ctl.pool.query<EndpointView>(`SELECT * FROM ${this.ctl.table('webhook_endpoints')} WHERE id = $1::uuid`, [id]);
    if (!rows[0]) throw new PglandError('not_found', `no webhook endpoint ${id}`);
    return this.view(rows[0]);
  }

  async delete(id: string): Promise<void> {
    const { rowCount } = await this.ctl.pool.query(`DELETE FROM ${this.ctl.table('webhook_endpoints')} WHERE id = $1::uuid`, [id]);
    if (!rowCount) throw new PglandError('not_found', `no webhook endpoint ${id}`);
  }
}

export interface DeliveryView {
  id: string;
  message_id: string;
  endpoint_id: string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: Date | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

export interface AttemptView {
  attempt: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_excerpt: string | null;
}

export async function listDeliveries(
  ctl: ControlDb,
  filter: { endpointId?: string; messageId?: string; status?: string; limit?: number },
): Promise<DeliveryView[]> {
  const { rows } = await ctl.pool.query<DeliveryView>(
    `SELECT d.id, d.message_id, d.endpoint_id, m.event_type, d.status, d.attempts,
            CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
            d.last_error, d.delivered_at, d.created_at
       FROM ${ctl.table('webhook_deliveries')} d JOIN ${ctl.table('webhook_messages')} m ON m.id = d.message_id
      WHERE ($1::uuid IS NULL OR d.endpoint_id = $1::uuid) AND ($2::text IS NULL OR d.message_id = $2)
        AND ($3::text IS NULL OR d.status = $3)
      ORDER BY d.created_at DESC, d.id LIMIT $4`,
    [filter.endpointId ?? null, filter.messageId ?? null, filter.status ?? null, filter.limit ?? 100],
  );
  return rows;
}

export async function listAttempts(ctl: ControlDb, deliveryId: string): Promise<AttemptView[]> {
  const found = await ctl.pool.query(`SELECT 1 FROM ${ctl.table('webhook_deliveries')} WHERE id = $1::uuid`, [deliveryId]);
  if (!found.rowCount) throw new PglandError('not_found', `no webhook delivery ${deliveryId}`);
  const { rows } = await ctl.pool.query<AttemptView>(
    `SELECT attempt, started_at, duration_ms, status_code, error, response_excerpt
       FROM ${ctl.table('webhook_attempts')} WHERE delivery_id = $1::uuid ORDER BY attempt`,
    [deliveryId],
  );
  return rows;
}

/** Sends a delivery that gave up (status failed) again, with a fresh attempt budget; its webhook-id stays. */
export async function redeliver(ctl: ControlDb, deliveryId: string): Promise<void> {
  const { rowCount } = await ctl.pool.query(
    `UPDATE ${ctl.table('webhook_deliveries')} SET status = 'pending', retry_from = attempts, next_attempt_at = now(), locked_until = NULL
      WHERE id = $1::uuid AND status = 'failed'`,
    [deliveryId],
  );
  if (!rowCount) throw new PglandError('conflict', `webhook delivery ${deliveryId} is not a failed delivery`);
}
