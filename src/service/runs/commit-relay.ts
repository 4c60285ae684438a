import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { isErrorCode } from '../../error-codes.js';
import { PglandError } from '../../errors.js';
import { backoff, type BackoffOptions } from '../../connection/retry.js';
import type { SentBatches } from '../../load/http-run.js';
import type { Logger } from '../../log.js';
import type { ControlDb } from '../control/control-db.js';

/** A commit asked of the holder, and its answer; NOTIFY payloads are at most 8000 bytes. */
const REQUESTS = 'pgland_held_commit';
const ANSWERS = 'pgland_held_commit_done';
const MAX_PAYLOAD = 7900;

interface Request {
  id: string;
  runId: string;
  sent?: SentBatches;
  /** The run was aborted: its holder rolls it back (no answer). */
  abort?: true;
}

export type RelayAnswer = { id: string; ok: true } | { id: string; ok: false; code: string; message: string; hint?: string };

/** Reconnecting after the LISTEN connection is lost: 100 ms doubling to 10 s, half of each step jittered (retry.ts). */
const RECONNECT: BackoffOptions = { baseMs: 100, maxMs: 10_000 };
/** A connection attempt (TCP, startup, LISTEN) that takes longer is abandoned and tried again: stop() waits for one at most this long. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Commits carried to the serve process that holds a run (docs/service.md,
 * "How a run is held"). Every serve process LISTENs on the control database
 * on a connection of its own. A process that receives the commit of a run
 * another live process holds NOTIFYs the request; the holder commits as if
 * the request had reached it, records the outcome in the control database,
 * and NOTIFYs the answer (success, or the error the client should get).
 * Without an answer in time (no holder listening, or its commit still
 * running) the caller answers 503, and the client commits again.
 *
 * The LISTEN connection is re-established when it is lost (a terminated
 * backend, a restarted control database, a network cut: node-postgres
 * emits 'error' then 'end'; both are listened to, so a close without an
 * 'error' is a loss too, and a loss is handled once), after a jittered
 * exponential backoff, for as long as the relay is started. While it is
 * down, forward() answers undefined at once (the caller answers 503
 * run_held_elsewhere, the client commits again).
 *
 * NOTIFY is not queued for a session that is not listening: what was sent
 * while the connection was down is lost, and nothing is replayed. What a
 * missed message means, and what is checked again once listening:
 * - A request this process missed as a holder was never acted on: the run
 *   is as it was, the asker's wait ends in 503, and the client's next
 *   commit reaches this process again, listening by then.
 * - An abort this process missed as a holder: the asker marked the run
 *   cancelled in the control database before NOTIFYing, and waits for the
 *   holder's transaction to let go of the run's stage. So, once listening
 *   again, the relay calls `here.reconnected`, which rolls back the held
 *   runs the control database no longer has open (rather than at the idle
 *   timeout, PGLAND_HELD_RUN_IDLE_MS). An abort NOTIFYed after the LISTEN
 *   is received as usual; rolling back twice is harmless.
 * - An answer this process missed as the asker: the forward() waiting for
 *   it is kept across the reconnect (an answer sent after it arrives on the
 *   new connection), so a missed one only ends in the wait's timeout, 503,
 *   and the client's next commit reads the outcome the holder recorded
 *   (commit() of a decided run answers it) or reaches the holder again.
 *   Answering every waiter 503 at the loss instead would be quicker when
 *   the answer was missed but would turn an answer still to come into a
 *   409 conflict (the holder still committing) for the client's retry.
 */
export class CommitRelay {
  /** The connection that LISTENs; undefined while the relay is down (or stopped). */
  private client: pg.Client | undefined;
  private readonly waiting = new Map<string, (answer: RelayAnswer) => void>();
  /** Between start() and stop(): a lost connection is re-established. */
  private running = false;
  /** The next reconnection attempt, while down. */
  private retry: NodeJS.Timeout | undefined;
  /** Reconnection attempts in flight, which stop() waits for (an attempt ends its connection when it sees the relay stopped). */
  private readonly reconnecting = new Set<Promise<void>>();
  /** Failed attempts since the connection was lost, and when it was. */
  private attempts = 0;
  private downSince = 0;

  constructor(
    private readonly ctl: ControlDb,
    private readonly log: Logger,
    private readonly here: {
      /** Commits the run if this process holds it; false when it does not. */
      commit: (runId: string, sent: SentBatches | undefined) => Promise<boolean>;
      /** Rolls the run back if this process holds it. */
      abort: (runId: string) => Promise<void>;
      /** Listening again after a loss: acts on what requests missed meanwhile would have asked. */
      reconnected: () => Promise<void>;
    },
  ) {}

  /** Connects and LISTENs; a failure here fails the start (the control database was reachable a moment ago). */
  async start(): Promise<void> {
    this.running = true;
    try {
      await this.listen();
    } catch (err) {
      this.running = false;
      throw err;
    }
  }

  /** Cancels a pending reconnection, waits for one in flight, and closes the connection: no timer or socket is left. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retry);
    this.retry = undefined;
    await Promise.all(this.reconnecting);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** A new connection that LISTENs on both channels, made the relay's connection unless the relay stopped meanwhile. */
  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.ctl.url,
      application_name: 'pgland-commit-relay',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // Its one query, the LISTEN.
      query_timeout: CONNECT_TIMEOUT_MS,
      // A peer that vanished without a word (a dropped route, a failover) is noticed by the operating system's probes.
      keepAlive: true,
    });
    // Before it is the relay's connection, an 'error' or 'end' makes the attempt fail (below); after, it is a loss.
    let gone = false;
    const lost = (err?: Error): void => {
      gone = true;
      if (this.client === client) this.lost(client, err);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      if (msg.channel === ANSWERS) this.answered(msg.payload);
      else if (msg.channel === REQUESTS) void this.requested(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${REQUESTS}; LISTEN ${ANSWERS}`);
      if (gone) throw new Error('the connection ended while it started listening');
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (!this.running) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
  }

  /** Logged once per loss: the error's message only (never the control database's URL). */
  private lost(client: pg.Client, err: Error | undefined): void {
    this.client = undefined;
    // After an 'error' the socket may still be open.
    void client.end().catch(() => undefined);
    this.log.warn(
      { err: { message: err?.message ?? 'the connection ended' } },
      'commit relay: connection to the control database lost; reconnecting (meanwhile commits of runs held by other processes answer 503)',
    );
    this.attempts = 0;
    this.downSince = Date.now();
    this.schedule();
  }

  private schedule(): void {
    if (!this.running) return;
    this.retry = setTimeout(
      () => {
        this.retry = undefined;
        const attempt = this.reconnect();
        this.reconnecting.add(attempt);
        void attempt.finally(() => this.reconnecting.delete(attempt));
      },
      backoff(this.attempts + 1, RECONNECT),
    );
  }

  private async reconnect(): Promise<void> {
    try {
      await this.listen();
    } catch {
      // Not logged: the loss was, and the return will be; a control database down for long is on /readyz.
      this.attempts++;
      this.schedule();
      return;
    }
    if (!this.client) return;
    this.log.info({ attempts: this.attempts + 1, downMs: Date.now() - this.downSince }, 'commit relay: connection to the control database re-established');
    await this.here
      .reconnected()
      .catch((err: unknown) => this.log.warn({ err: { message: (err as Error).message } }, 'commit relay: could not check the held runs after reconnecting'));
  }

  private answered(payload: string): void {
    let answer: RelayAnswer;
    try {
      answer = JSON.parse(payload) as RelayAnswer;
    } catch {
      return;
    }
    this.waiting.get(answer.id)?.(answer);
  }

  private async requested(payload: string): Promise<void> {
    let req: Request;
    try {
      req = JSON.parse(payload) as Request;
    } catch {
      return;
    }
    if (req.abort) {
      await this.here.abort(req.runId).catch(() => undefined);
      return;
    }
    let answer: RelayAnswer;
    try {
      if (!(await this.here.commit(req.runId, req.sent))) return;
      answer = { id: req.id, ok: true };
    } catch (err) {
      const e = err instanceof PglandError ? err : undefined;
      answer = {
        id: req.id,
        ok: false,
        code: e?.code ?? 'internal',
        message: ((err as Error).message ?? String(err)).slice(0, 2000),
        ...(e?.hint ? { hint: e.hint.slice(0, 1000) } : {}),
      };
    }
    await this.ctl.pool
      .query('SELECT pg_notify($1, $2)', [ANSWERS, JSON.stringify(answer)])
      .catch((err: unknown) => this.log.warn({ runId: req.runId, err: { message: (err as Error).message } }, 'commit relay: could not answer'));
  }

  /** Tells the holder of an aborted run, if another process holds it, to roll it back; nothing is waited for. */
  async abort(runId: string): Promise<void> {
    const req: Request = { id: randomUUID(), runId, abort: true };
    await this.ctl.pool
      .query('SELECT pg_notify($1, $2)', [REQUESTS, JSON.stringify(req)])
      .catch((err: unknown) => this.log.warn({ runId, err: { message: (err as Error).message } }, 'commit relay: could not tell the holder'));
  }

  /**
   * Asks the holder of `runId` to commit it; the holder's answer, or
   * undefined when none came within `waitMs` (or the relay is down, or the
   * batch list is too long to carry).
   */
  async forward(runId: string, sent: SentBatches | undefined, waitMs: number): Promise<RelayAnswer | undefined> {
    if (!this.client) return undefined;
    const req: Request = { id: randomUUID(), runId, ...(sent === undefined ? {} : { sent }) };
    const payload = JSON.stringify(req);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<RelayAnswer | undefined>((resolve) => {
      this.waiting.set(req.id, resolve);
      timer = setTimeout(resolve, waitMs, undefined);
    });
    try {
      await this.ctl.pool.query('SELECT pg_notify($1, $2)', [REQUESTS, payload]);
      return await answer;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(req.id);
    }
  }
}

/** The holder's answer as the error this process gives the client. */
export function relayedError(answer: Extract<RelayAnswer, { ok: false }>): PglandError {
  return new PglandError(isErrorCode(answer.code) ? answer.code : 'internal', answer.message, answer.hint ? { hint: answer.hint } : {});
}
