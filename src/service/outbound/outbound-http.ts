import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { PglandError } from '../../errors.js';
import { isEgressRefused, refused, type Egress } from './egress.js';

/**
 * One HTTP request of the service to a URL an API caller named (a webhook
 * endpoint, a URL source), through the egress policy: an IP address in the URL
 * is checked before connecting, a host name in the connection's own lookup,
 * and the address the socket connected to once more. No connection pooling,
 * no proxy from the environment, no redirect followed here.
 */
export function sendOutbound(
  egress: Egress,
  url: URL,
  options: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return reject(new PglandError('config_invalid', 'only http:// and https:// URLs are fetched'));
    try {
      egress.checkLiteral(url);
    } catch (err) {
      return reject(err);
    }
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: options.method,
      headers: options.headers,
      agent: false,
      lookup: egress.lookup,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.once('socket', (socket: Socket) => {
      socket.once('connect', () => {
        const address = socket.remoteAddress;
        if (address && !egress.allows(address)) req.destroy(refused(url.hostname));
      });
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end(options.body);
  });
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name not found (temporary DNS failure)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/**
 * A failed request in a few words: never the raw error text, which names the
 * address and port connected to (and so would make the error a port scanner).
 */
export function describeOutboundError(err: unknown): string {
  if (isEgressRefused(err)) return err.message;
  if (err instanceof PglandError) return err.message;
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (e.name === 'AbortError' || code === 'ABORT_ERR') return 'cancelled';
  if (NETWORK[code]) return NETWORK[code];
  if (/^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH)/.test(code)) return `TLS failed (${code})`;
  if (code.startsWith('HPE_')) return 'the answer is not valid HTTP';
  if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') return 'a header name or value is not valid in HTTP';
  return 'network error';
}

/** Reads at most `limit` bytes of an answer, then drops the connection. */
export async function readExcerpt(res: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= limit) break;
    }
  } catch {
    // a broken answer: keep what came
  } finally {
    res.destroy();
  }
  return Buffer.concat(chunks)
    .subarray(0, limit)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}
