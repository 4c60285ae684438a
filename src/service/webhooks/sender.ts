import { EventEmitter } from 'node:events';
import { backoff } from '../../connection/retry.js';
import type { Logger } from '../../log.js';
import { PGLAND_VERSION } from '../../package.js';
import type { ControlDb } from '../control/control-db.js';
import { Egress, isEgressRefused } from '../outbound/egress.js';
import type { ServiceMetrics } from '../ops/metrics.js';
import { describeOutboundError, readExcerpt, sendOutbound } from '../outbound/outbound-http.js';
import type { SecretBox } from '../control/secrets.js';
import { parseWebhookSecret, signedHeaders } from './signing.js';

export interface SenderOptions {
  /** How often the outbox is polled for due deliveries (ms). */
  pollMs: number;
  /** How long one attempt may take (ms). */
  timeoutMs: number;
  /** Backoff between attempts: first step and cap (ms), jittered (src/connection/retry.ts). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Attempts before a delivery is marked failed. */
  maxAttempts: number;
  /** Deliveries sent at once by this process. */
  concurrency: number;
}

export const DEFAULT_SENDER: SenderOptions = {
  pollMs: 1000,
  timeoutMs: 10_000,
  retryBaseMs: 5_000,
  retryMaxMs: 60 * 60_000,
  maxAttempts: 15,
  concurrency: 8,
};

/**
 * How much of a receiver's answer an attempt keeps (GET
 * /webhooks/deliveries/{id}/attempts shows it): enough to see why a receiver
 * refused, too little to read a service through it.
 */
export const RESPONSE_EXCERPT_BYTES = 256;

interface Due {
  id: string;
  attempts: number;
  retry_from: number;
  message_id: string;
  body: string;
  url: string;
  secret: string;
  endpoint_id: string;
}

/**
 * Delivers the outbox. Each round claims due deliveries with a lease (FOR
 * UPDATE SKIP LOCKED, so several processes share the outbox and a process
 * that dies lets go when its lease ends), POSTs each signed with its
 * endpoint's secret, records the attempt, and either marks it delivered or
 * schedules the next attempt with jittered exponential backoff. The webhook-id
 * is the message id: the same on every attempt, so receivers can drop
 * duplicates. A background component: failures are 'error' events, never
 * exceptions out of a timer.
 */
export class WebhookSender extends EventEmitter {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly ctl: ControlDb,
    private readonly box: SecretBox,
    private readonly metrics: ServiceMetrics,
    private readonly log: Logger,
    private readonly opts: SenderOptions = DEFAULT_SENDER,
    private readonly egress: Egress = new Egress(),
  ) {
    super();
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs a round now (after an enqueue). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref();
  }

  private round(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const n = await this.deliverDue();
          if (n === this.opts.concurrency) this.again = true;
        } while (this.again && !this.stopped);
      } catch (err) {
        this.emit('error', err);
      } finally {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.opts.pollMs);
      }
    })();
    return this.running;
  }

  /** Claims and sends one round of due deliveries; returns how many were claimed. */
  async deliverDue(): Promise<number> {
    const leaseMs = this.opts.timeoutMs + 30_000;
    const { rows } = await this.ctl.pool.query<Due>(
      `WITH due AS (
         SELECT id FROM ${this.ctl.table('webhook_deliveries')}
          WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE ${this.ctl.table('webhook_deliveries')} d
          SET locked_until = now() + $2 * interval '1 millisecond', attempts = d.attempts + 1
         FROM due, ${this.ctl.table('webhook_messages')} m, ${this.ctl.table('webhook_endpoints')} e
        WHERE d.id = due.id AND m.id = d.message_id AND e.id = d.endpoint_id
        RETURNING d.id, d.attempts, d.retry_from, d.message_id, m.body, e.url, e.secret, e.id AS endpoint_id`,
      [this.opts.concurrency, leaseMs],
    );
    await Promise.all(rows.map((d) => this.attempt(d).catch((err: unknown) => this.emit('error', err))));
    return rows.length;
  }

  private async attempt(d: Due): Promise<void> {
    const started = new Date();
    let status: number | null = null;
    let error: string | null = null;
    let excerpt: string | null = null;
    let failure = 'http_status';
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      const key = parseWebhookSecret(this.box.open(d.secret, `endpoint:${d.endpoint_id}`));
      // Redirects are not followed: a 3xx is a failed attempt.
      const res = await sendOutbound(this.egress, new URL(d.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `pgland/${PGLAND_VERSION}`, ...signedHeaders(key, d.message_id, d.body) },
        body: d.body,
        signal: timeout,
      });
      status = res.statusCode ?? 0;
      excerpt = (await readExcerpt(res, RESPONSE_EXCERPT_BYTES)) || null;
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      error = timeout.aborted ? `no answer within ${this.opts.timeoutMs} ms` : describeOutboundError(err);
      failure = timeout.aborted ? 'timeout' : isEgressRefused(err) ? 'refused' : 'network';
    }
    const ok = error === null;
    const budgetLeft = this.opts.maxAttempts - (d.attempts - d.retry_from);
    const next = ok || budgetLeft <= 0 ? null : backoff(d.attempts - d.retry_from, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs });
    const client = await this.ctl.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO ${this.ctl.table('webhook_attempts')} (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [d.id, d.attempts, started, Date.now() - started.getTime(), status, error, excerpt],
      );
      await client.query(
        `UPDATE ${this.ctl.table('webhook_deliveries')} SET
           status = CASE WHEN $2 THEN 'delivered' WHEN $3::integer IS NULL THEN 'failed' ELSE 'pending' END,
           delivered_at = CASE WHEN $2 THEN now() END,
           next_attempt_at = CASE WHEN $3::integer IS NULL THEN next_attempt_at ELSE now() + $3 * interval '1 millisecond' END,
           locked_until = NULL, last_error = $4
         WHERE id = $1`,
        [d.id, ok, next, error],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    if (ok) this.metrics.webhookDeliveries.inc({ result: 'delivered' });
    else {
      this.metrics.webhookDeliveries.inc({ result: next === null ? 'dead' : 'failed' });
      this.metrics.webhookFailures.inc({ reason: failure });
    }
    const fields = { deliveryId: d.id, webhookId: d.message_id, attempt: d.attempts, status };
    if (ok) this.log.debug(fields, 'webhook delivered');
    else if (next === null) this.log.warn({ ...fields, error }, 'webhook delivery gave up');
    else this.log.info({ ...fields, error, retryInMs: next }, 'webhook delivery failed: will retry');
  }

  /**
   * Stops polling. With flush, first sends what is due now (once: a delivery
   * that fails stays in the outbox for the next start), within timeoutMs.
   */
  async stop(options: { flush?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const work = (async () => {
      await this.running;
      if (options.flush) await this.deliverDue().catch((err: unknown) => this.emit('error', err));
    })();
    await Promise.race([work, new Promise((resolve) => setTimeout(resolve, options.timeoutMs ?? 10_000).unref())]);
  }
}
