/**
 * Which failures are worth retrying, and how long to wait before the next try.
 *
 * A batch runs in one transaction; when it fails on one of these errors the
 * transaction did not commit (or the connection that held it is gone), so the
 * batch can be replayed on a fresh connection without duplicating rows.
 * Everything else (constraint violations, permission errors, bad data, a
 * statement timeout, authentication) would fail the same way again.
 */

import { RETRYABLE_CODES } from '../error-codes.js';

/** SQLSTATEs after which replaying the transaction is safe and may succeed. */
export const RETRYABLE_SQLSTATES: Readonly<Record<string, string>> = {
  '40001': 'serialization_failure',
  '40P01': 'deadlock_detected',
  '57P01': 'admin_shutdown',
  '57P02': 'crash_shutdown',
  '57P03': 'cannot_connect_now',
  '57P05': 'idle_session_timeout',
  '08000': 'connection_exception',
  '08001': 'sqlclient_unable_to_establish_sqlconnection',
  '08003': 'connection_does_not_exist',
  '08006': 'connection_failure',
  '53300': 'too_many_connections',
};

/** Node.js socket error codes of a lost or refused connection. */
export const RETRYABLE_NETWORK_CODES: readonly string[] = [
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN', // a temporary DNS failure; ENOTFOUND is not retried
];

/** pgland error codes (PglandError.code) marked retryable in ERROR_CODES (src/error-codes.ts), such as a lost SSH tunnel. */
export const RETRYABLE_PGLAND_CODES: readonly string[] = RETRYABLE_CODES;

/** Messages node-postgres (and pg-pool) give a lost or timed-out connection, which carry no code. */
const RETRYABLE_MESSAGES: readonly RegExp[] = [
  /Connection terminated unexpectedly/i,
  /Connection terminated due to connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /SSH tunnel (?:closed|lost)/i,
];

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function oneIsRetryable(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const code = codeOf(err);
  if (code !== undefined) {
    if (Object.hasOwn(RETRYABLE_SQLSTATES, code)) return true;
    if (RETRYABLE_NETWORK_CODES.includes(code)) return true;
    if (RETRYABLE_PGLAND_CODES.includes(code)) return true;
  }
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && RETRYABLE_MESSAGES.some((re) => re.test(message));
}

/**
 * True when `err` (or an error it wraps: `cause`, or the `errors` of an
 * AggregateError, as Node gives for a refused multi-address connect) is a
 * transient failure listed above.
 */
export function isRetryable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    if (oneIsRetryable(e)) return true;
    const { cause, errors } = e as { cause?: unknown; errors?: unknown };
    if (cause !== undefined) queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return false;
}

export interface BackoffOptions {
  /** Delay before the first retry, before jitter (ms). Default 200. */
  baseMs?: number;
  /** Upper bound of any delay (ms). Default 10,000. */
  maxMs?: number;
  /** A source of numbers in [0, 1); Math.random by default (tests pass their own). */
  random?: () => number;
}

/**
 * Milliseconds to wait before retry number `attempt` (1 for the first retry):
 * exponential (base·2^(attempt-1), capped at maxMs) with "equal jitter" — half
 * of the step is fixed, the other half random — so concurrent retriers spread
 * out but never retry immediately.
 */
export function backoff(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 200;
  const max = opts.maxMs ?? 10_000;
  const random = opts.random ?? Math.random;
  const n = Math.max(1, Math.floor(Number.isFinite(attempt) ? attempt : 1));
  const step = Math.min(max, base * 2 ** Math.min(n - 1, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
