import { jsonNestsDeeper, MAX_JSON_DEPTH } from '../../encode/values.js';
import type { ControlDb } from '../control/control-db.js';
import { redactPayload } from './sync-requests.js';
import { verifySignature, WebhookVerifyError, type VerifyFailure } from './signing.js';

/**
 * Inbound sync webhooks from the platform (sync.started, sync.complete, …),
 * verified as Standard Webhooks: a valid signature by one of the configured
 * secrets, a timestamp within the tolerance, and an id never seen before
 * (kept in the control database, so a replay is refused by every process and
 * after a restart). A refused webhook changes nothing.
 */
export interface InboundResult {
  accepted: boolean;
  reason?: VerifyFailure | 'replayed' | 'not_json' | 'not_configured' | 'bad_payload';
  id?: string;
  /** With bad_payload: what in the (signed, well-formed) JSON pgland cannot keep. */
  problem?: string;
}

export const TOLERANCE_SECONDS = 300;

export async function receiveInbound(
  ctl: ControlDb,
  keys: readonly Buffer[],
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  now = Date.now(),
): Promise<InboundResult> {
  if (keys.length === 0) return { accepted: false, reason: 'not_configured' };
  let verified: { id: string; timestamp: Date };
  try {
    verified = verifySignature(keys, headers, body, { toleranceSeconds: TOLERANCE_SECONDS, now });
  } catch (err) {
    if (err instanceof WebhookVerifyError) return { accepted: false, reason: err.reason };
    throw err;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    return { accepted: false, reason: 'not_json', id: verified.id };
  }
  const problem = unstorable(payload, body);
  if (problem) return { accepted: false, reason: 'bad_payload', id: verified.id, problem };
  const type =
    typeof payload === 'object' && payload !== null && typeof (payload as { type?: unknown }).type === 'string' ? (payload as { type: string }).type : null;
  const { rowCount } = await ctl.pool.query(
    `INSERT INTO ${ctl.table('inbound_webhooks')} (webhook_id, event_type, payload, signed_at)
     VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (webhook_id) DO NOTHING`,
    [verified.id, type, JSON.stringify(redactPayload(payload), (_k, v: unknown) => (typeof v === 'string' ? v.replace(/\0/g, '') : v)), verified.timestamp],
  );
  if (rowCount === 0) return { accepted: false, reason: 'replayed', id: verified.id };
  return { accepted: true, id: verified.id };
}

/**
 * What of a JSON payload PostgreSQL's jsonb cannot hold: a NUL character in
 * a key (one in a value is dropped), or nesting past MAX_JSON_DEPTH. Both
 * failed the request with a 500 before; the sender is told instead.
 */
function unstorable(payload: unknown, body: Buffer): string | undefined {
  const text = body.toString('utf8');
  if (jsonNestsDeeper(text)) return `the JSON nests deeper than ${MAX_JSON_DEPTH} levels`;
  if (!text.includes('\\u0000')) return undefined;
  const todo: unknown[] = [payload];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null) continue;
    for (const [k, child] of Object.entries(v)) {
      if (k.includes('\0')) return `the JSON has a NUL character (\\u0000) in the key ${JSON.stringify(k.slice(0, 100))}, which PostgreSQL cannot store`;
      todo.push(child);
    }
  }
  return undefined;
}

/**
 * Inbound webhooks are kept a week, to be listed with what was done with
 * them; an id older than twice the tolerance is no longer needed against
 * replays (a request carrying one is refused as stale anyway).
 */
export const INBOUND_KEEP_SECONDS = 7 * 24 * 3600;

export async function pruneInbound(ctl: ControlDb, keepSeconds = INBOUND_KEEP_SECONDS): Promise<number> {
  const { rowCount } = await ctl.pool.query(
    `DELETE FROM ${ctl.table('inbound_webhooks')} WHERE signed_at < now() - $1 * interval '1 second' AND received_at < now() - $1 * interval '1 second'`,
    [keepSeconds],
  );
  return rowCount ?? 0;
}

export interface InboundView {
  webhook_id: string;
  event_type: string | null;
  payload: unknown;
  signed_at: Date;
  received_at: Date;
  /** queued (a run: job_id), coalesced (into job_id's run), ignored (detail says why); null before it was decided. */
  action: string | null;
  detail: string | null;
  job_id: string | null;
}

export async function listInbound(ctl: ControlDb, filter: { action?: string; limit?: number } = {}): Promise<InboundView[]> {
  const { rows } = await ctl.pool.query<InboundView>(
    `SELECT webhook_id, event_type, payload, signed_at, received_at, action, detail, job_id FROM ${ctl.table('inbound_webhooks')}
      WHERE ($1::text IS NULL OR action = $1) ORDER BY received_at DESC LIMIT $2`,
    [filter.action ?? null, filter.limit ?? 100],
  );
  return rows;
}
