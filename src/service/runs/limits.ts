import type pg from 'pg';
import { PglandError } from '../../errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../../input/lines.js';
import type { ControlDb } from '../control/control-db.js';

/*
 * What keeps one caller from exhausting a destination (docs/security.md,
 * "Limits"): six uploads sending a byte every 2 s once held all six of a
 * destination's pool connections for 46 s, and every other run got 503.
 */

/** The defaults of the limits on memory and connections (docs/service.md, "Settings"). */
export const LIMIT_DEFAULTS = {
  maxRecordBytes: DEFAULT_MAX_LINE_BYTES,
  bodyIdleTimeoutMs: 30_000,
  uploadTimeoutMs: 600_000,
  maxUploadsPerDestination: 4,
  maxOpenRunsPerDestination: 50,
};

/** What an upload's body may take: a pause between two reads, and the whole body. */
export interface BodyTimeouts {
  idleMs: number;
  totalMs: number;
}

/** A batch body that stalled or took too long: 408, the batch rolled back, the connection closed. */
export class BodyTimeoutError extends PglandError {
  constructor(message: string) {
    super('body_timeout', message, { hint: 'send the body at a steady rate, or split the run into smaller batches; nothing of this batch was staged' });
  }
}

/**
 * The body, ended with BodyTimeoutError when no bytes come for `idleMs`, or
 * when it is still arriving `totalMs` after the first read. Only the waits for
 * the client count: time the database takes to accept a chunk does not.
 */
export async function* withBodyTimeouts<T>(body: AsyncIterable<T>, t: BodyTimeouts): AsyncGenerator<T> {
  const it = body[Symbol.asyncIterator]();
  const deadline = Date.now() + t.totalMs;
  for (;;) {
    const left = deadline - Date.now();
    const idle = t.idleMs <= left;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new BodyTimeoutError(
              idle
                ? `no bytes of the batch body arrived for ${t.idleMs} ms (body_idle_timeout_ms)`
                : `the batch body was still arriving after ${t.totalMs} ms (upload_timeout_ms)`,
            ),
          ),
        Math.max(0, Math.min(t.idleMs, left)),
      );
    });
    let r: IteratorResult<T>;
    try {
      // The read left waiting when the timer wins is not awaited again: the
      // request is answered and its connection closed.
      r = await Promise.race([it.next(), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Batch uploads in flight per destination, in this process. Each holds one of
 * the destination's pool connections while its body streams in; keeping
 * their number below the pool's size leaves connections for commits, opens
 * and scheduled runs.
 */
export class UploadSlots {
  private readonly inUse = new Map<string, number>();

  /** `what` and `hint`: the uploads counted, and what to do, as the answer past the limit says them. */
  constructor(
    private readonly max: number,
    private readonly what = 'batch uploads',
    private readonly hint = "retry after the Retry-After seconds; send a run's batches one after another",
  ) {}

  /** Takes a slot, or throws too_many_uploads (429 with Retry-After); the function given back frees it, once. */
  take(destinationId: string): () => void {
    const n = this.inUse.get(destinationId) ?? 0;
    if (n >= this.max) {
      throw new PglandError('too_many_uploads', `destination ${destinationId} already has ${n} ${this.what} in flight (max_uploads_per_destination)`, {
        hint: this.hint,
        context: { retryAfterSeconds: 5 },
      });
    }
    this.inUse.set(destinationId, n + 1);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      const left = (this.inUse.get(destinationId) ?? 1) - 1;
      if (left === 0) this.inUse.delete(destinationId);
      else this.inUse.set(destinationId, left);
    };
  }
}

/**
 * Refuses a new run when the destination already has `max` runs open (each
 * holds a staging table in the customer's schema until it is committed or
 * aborted). Takes a transaction-scoped lock on the destination, so that
 * opens racing in several processes cannot pass the limit together: call in
 * the transaction that inserts the run.
 */
export async function assertRoomForRun(client: pg.PoolClient, ctl: ControlDb, destinationId: string, max: number): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('pgland.open_runs:' || $1::text, 0))`, [destinationId]);
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${ctl.table('runs')} WHERE destination_id = $1::uuid AND origin = 'http' AND status IN ('open', 'committing')`,
    [destinationId],
  );
  const n = rows[0]!.n;
  if (n >= max) {
    throw new PglandError('too_many_open_runs', `destination ${destinationId} has ${n} open runs (max_open_runs_per_destination is ${max})`, {
      hint: 'commit or abort open runs first (GET /runs?status=open lists them); each holds a staging table in the destination',
      context: { retryAfterSeconds: 60 },
    });
  }
}
