import { createHmac, timingSafeEqual } from 'node:crypto';
import { PglandError } from '../../errors.js';

/**
 * Standard Webhooks signatures (standardwebhooks.com), both ways:
 * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * = space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
 * by the bytes of a `whsec_<base64>` secret.
 */

const PREFIX = 'whsec_';
/** Shorter keys are refused: HMAC-SHA256 wants at least 128 bits, the spec suggests 24 to 64 bytes. */
const MIN_SECRET_BYTES = 16;

/** The key bytes of a whsec_… secret. Errors never repeat the secret. */
export function parseWebhookSecret(secret: string, what = 'webhook secret'): Buffer {
  if (!secret.startsWith(PREFIX)) {
    throw new PglandError('config_invalid', `${what}: must start with ${PREFIX} followed by base64`, { hint: 'e.g. whsec_$(openssl rand -base64 32)' });
  }
  const body = secret.slice(PREFIX.length);
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64') : Buffer.alloc(0);
  if (key.length < MIN_SECRET_BYTES) {
    throw new PglandError('config_invalid', `${what}: the part after ${PREFIX} must be base64 of at least ${MIN_SECRET_BYTES} bytes`, {
      hint: 'e.g. whsec_$(openssl rand -base64 32)',
    });
  }
  return key;
}

/**
 * The signature over `id.timestamp.body`, with the timestamp exactly as the
 * webhook-timestamp header carries it (as Standard Webhooks says): signing a
 * parsed number would let "01700000000" and "1700000000" share a signature.
 */
export function signature(key: Buffer, id: string, timestamp: string, body: string | Buffer): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a signed request. */
export function signedHeaders(key: Buffer, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature(key, id, timestamp, body) };
}

export type VerifyFailure = 'missing_headers' | 'bad_timestamp' | 'stale' | 'bad_signature';

export class WebhookVerifyError extends Error {
  constructor(
    readonly reason: VerifyFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks a signed request against any of the keys (several during a secret
 * rotation). The timestamp must be within `toleranceSeconds` of now, either
 * way; the comparison is constant-time. Returns the webhook id and time.
 */
export function verifySignature(
  keys: readonly Buffer[],
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  options: { toleranceSeconds?: number; now?: number } = {},
): { id: string; timestamp: Date } {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one('webhook-id');
  const ts = one('webhook-timestamp');
  const sigs = one('webhook-signature');
  if (!id || !ts || !sigs) throw new WebhookVerifyError('missing_headers', 'webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerifyError('bad_timestamp', 'webhook-timestamp must be Unix seconds');
  const timestamp = Number(ts);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - timestamp) > tolerance) throw new WebhookVerifyError('stale', `webhook-timestamp is more than ${tolerance} s away from now`);
  const offered = sigs
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const key of keys) {
    const expected = Buffer.from(signature(key, id, ts, body).slice(3), 'base64');
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return { id, timestamp: new Date(timestamp * 1000) };
  }
  throw new WebhookVerifyError('bad_signature', 'no webhook-signature matches');
}
