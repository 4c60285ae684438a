import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PglandError } from '../src/errors.js';
import { backoff, isRetryable, RETRYABLE_NETWORK_CODES, RETRYABLE_SQLSTATES } from '../src/connection/retry.js';
import { freshDatabase } from './support/db.js';

function withCode(code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { code });
}

describe('isRetryable', () => {
  it('accepts every named SQLSTATE and network code', () => {
    for (const code of ['40001', '40P01', '57P01', '57P02', '57P03', '08000', '08003', '08006', '53300']) {
      expect(RETRYABLE_SQLSTATES[code], code).toBeTypeOf('string');
      expect(isRetryable(withCode(code)), code).toBe(true);
    }
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']) {
      expect(RETRYABLE_NETWORK_CODES).toContain(code);
      expect(isRetryable(withCode(code)), code).toBe(true);
    }
  });

  it('refuses errors that would fail the same way again', () => {
    for (const code of ['23505', '42501', '42P01', '22P02', '28P01', '3D000', '57014', 'ENOTFOUND', 'config_invalid', 'host_key_mismatch']) {
      expect(isRetryable(withCode(code)), code).toBe(false);
    }
    expect(isRetryable(new Error('syntax error'))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
    expect(isRetryable(null)).toBe(false);
    expect(isRetryable('ECONNRESET')).toBe(false);
  });

  it("recognises node-postgres's code-less connection messages and tunnel loss", () => {
    expect(isRetryable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isRetryable(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isRetryable(new PglandError('tunnel_closed', 'the SSH tunnel closed'))).toBe(true);
    expect(isRetryable(new PglandError('bastion_auth_failed', 'the bastion refused the key'))).toBe(false);
  });

  it('looks through cause chains and AggregateErrors (without looping on cycles)', () => {
    expect(isRetryable(new PglandError('load_failed', 'batch 3 failed', { cause: withCode('40P01') }))).toBe(true);
    expect(isRetryable(new AggregateError([new Error('a'), withCode('ECONNREFUSED')]))).toBe(true);
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isRetryable(a)).toBe(false);
  });

  it('classifies real errors from a real server and a real refused socket', async () => {
    const db = await freshDatabase('retry');
    try {
      // A backend terminated by an administrator: 57P01 on the victim's next query (or a lost connection).
      const victim = new pg.Client({ connectionString: db.url });
      victim.on('error', () => undefined);
      await victim.connect();
      const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const lost = await victim.query('SELECT 1').then(
        () => null,
        (e: unknown) => e,
      );
      expect(lost).not.toBeNull();
      expect(isRetryable(lost)).toBe(true);
      await victim.end().catch(() => undefined);

      // A unique violation: not retryable.
      await db.pool.query('CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)');
      const dup = await db.pool.query('INSERT INTO u VALUES (1)').then(
        () => null,
        (e: unknown) => e,
      );
      expect((dup as { code?: string }).code).toBe('23505');
      expect(isRetryable(dup)).toBe(false);
    } finally {
      await db.drop();
    }

    // A port nobody listens on: ECONNREFUSED from node-postgres.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'x' });
    const refused = await c.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(isRetryable(refused)).toBe(true);
  });
});

describe('backoff', () => {
  it('grows exponentially, with half of each step jittered', () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    expect(backoff(1, { random: lo })).toBe(100);
    expect(backoff(1, { random: hi })).toBe(200);
    expect(backoff(2, { random: lo })).toBe(200);
    expect(backoff(3, { random: hi })).toBe(800);
    expect(backoff(4, { baseMs: 50, random: lo })).toBe(200);
  });

  it('is capped, and sane for odd attempts', () => {
    expect(backoff(50, { random: () => 0.999999 })).toBe(10_000);
    expect(backoff(1000, { maxMs: 3000, random: () => 0 })).toBe(1500);
    expect(backoff(0, { random: () => 0 })).toBe(100);
    expect(backoff(Number.NaN, { random: () => 0 })).toBe(100);
  });

  it('spreads concurrent retriers out (real randomness)', () => {
    const delays = Array.from({ length: 200 }, () => backoff(3));
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(400);
    for (const d of delays) expect(d).toBeLessThanOrEqual(800);
    expect(new Set(delays).size).toBeGreaterThan(20);
  });
});
