import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { isErrorCode } from '../../error-codes.js';
import { PglandError } from '../../errors.js';
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

/**
 * Commits carried to the serve process that holds a run (docs/service.md,
 * "How a run is held"). Every serve process LISTENs on the control database
 * on a connection of its own. A process that receives the commit of a run
 * another live process holds NOTIFYs the request; the holder commits as if
 * the request had reached it, records the outcome in the control database,
 * and NOTIFYs the answer (success, or the error the client should get).
 * Without an answer in time (no holder listening, or its commit still
 * running) the caller answers 503, and the client commits again.
 */
export class CommitRelay {
  private client: pg.Client | undefined;
  private readonly waiting = new Map<string, (answer: RelayAnswer) => void>();

  constructor(
    private readonly ctl: ControlDb,
    private readonly log: Logger,
    private readonly here: {
      /** Commits the run if this process holds it; false when it does not. */
      commit: (runId: string, sent: SentBatches | undefined) => Promise<boolean>;
      /** Rolls the run back if this process holds it. */
      abort: (runId: string) => Promise<void>;
    },
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.ctl.url, application_name: 'pgland-commit-relay' });
    client.on('error', (err) => {
      this.log.warn({ err: { message: err.message } }, 'commit relay: connection lost; commits of runs held elsewhere answer 503 until restart');
      if (this.client === client) this.client = undefined;
    });
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      if (msg.channel === ANSWERS) this.answered(msg.payload);
      else if (msg.channel === REQUESTS) void this.requested(msg.payload);
    });
    await client.connect();
    await client.query(`LISTEN ${REQUESTS}; LISTEN ${ANSWERS}`);
    this.client = client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
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
