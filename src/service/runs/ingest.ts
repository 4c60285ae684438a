import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { checkDeclared, resolveObject } from '../../catalog/declared.js';
import { isRetryable } from '../../connection/retry.js';
import type { Destination } from '../../destination.js';
import { PglandError } from '../../errors.js';
import { InputError } from '../../load/copy-writer.js';
import { stageBatch, type StagedBatch } from '../../load/http-batch.js';
import { checkHeldBatches, RunHeldElsewhereError } from '../../load/held-ledger.js';
import { CommitRelay, relayedError } from './commit-relay.js';
import { HeldRun, RunNotHeldError, type HeldOverlap } from '../../load/held-run.js';
import { abortHttpRun, commitHttpRun, openHttpRun, RunClosedError, type HttpRun, type SentBatches } from '../../load/http-run.js';
import { mergeSql } from '../../merge/merge.js';
import type { Logger } from '../../log.js';
import { inPoolTransaction, type ControlDb } from '../control/control-db.js';
import { assertRoomForRun, UploadSlots, withBodyTimeouts, type BodyTimeouts } from './limits.js';
import type { ServiceMetrics } from '../ops/metrics.js';
import { enqueue } from '../webhooks/outbox.js';
import type { DestinationPools } from '../destinations/pools.js';
import {
  evolutionOf,
  finishControlRun,
  getRun,
  insertRun,
  moveRun,
  runEvents,
  viewOf,
  writeModeOf,
  type RunRecord,
  type RunTarget,
  type RunView,
} from './control-runs.js';

export type OpenRunRequest = RunTarget;

export interface IngestDeps {
  ctl: ControlDb;
  pools: DestinationPools;
  metrics: ServiceMetrics;
  log: Logger;
  /** Called after webhooks were put in the outbox. */
  onEnqueued: () => void;
  /** Largest decompressed batch body, in bytes. */
  maxBatchBytes: number;
  /** How long an upload's body may pause, and take in all. */
  bodyTimeouts: BodyTimeouts;
  /** Batch uploads in flight per destination (in this process). */
  maxUploadsPerDestination: number;
  /** Open runs per destination (each holds a staging table there). */
  maxOpenRunsPerDestination: number;
  /** Hold runs in one open transaction where their batches arrive (held-run.ts); false: always the staged path. */
  holdRuns: boolean;
  /** A held run with no batch and no commit for this long is rolled back (its batches lost). */
  heldRunIdleMs: number;
  /** How long a commit of a run held by another process waits for that process's answer (commit-relay.ts). */
  heldCommitWaitMs: number;
  heldOverlap: HeldOverlap;
}

/** The body was larger than max_batch_bytes once decompressed. */
export class BodyTooLargeError extends PglandError {
  constructor(limit: number) {
    super('body_too_large', `the batch body is larger than ${limit} bytes (decompressed)`, {
      hint: 'split the run into more batches; each batch is one request',
    });
  }
}

/** Counts the body's bytes against the limit; a failing body becomes an InputError (the client's fault, never retried). */
async function* guarded(body: AsyncIterable<Buffer | string>, limit: number): AsyncGenerator<Buffer | string> {
  let seen = 0;
  // Leaving the loop early must not destroy a request stream: its socket still carries the answer.
  const source = body instanceof Readable ? body.iterator({ destroyOnReturn: false }) : body;
  try {
    for await (const chunk of source) {
      seen += chunk.length;
      if (seen > limit) throw new BodyTooLargeError(limit);
      yield chunk as Buffer | string;
    }
  } catch (err) {
    if (err instanceof PglandError) throw err;
    throw new InputError(`reading the request body failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Runs over HTTP: open, stage batches, commit or abort (src/load/http-run.ts
 * does the database side). The control database says which runs are open;
 * the destination holds what they staged.
 */
export class Ingest {
  /** Commits in flight in this process: a second commit of the same run waits its turn elsewhere. */
  private readonly committing = new Set<string>();
  private readonly uploads: UploadSlots;
  /** Runs this process holds (held-run.ts), and runs it is starting to hold. */
  private readonly held = new Map<string, HeldRun>();
  private readonly holding = new Map<string, Promise<HeldRun | undefined>>();

  private readonly relay: CommitRelay;

  constructor(private readonly deps: IngestDeps) {
    this.uploads = new UploadSlots(deps.maxUploadsPerDestination);
    this.relay = new CommitRelay(deps.ctl, deps.log, {
      commit: async (id, sent) => {
        if (!this.held.has(id)) return false;
        await this.commit(id, sent);
        return true;
      },
      abort: async (id) => this.held.get(id)?.rollback('aborted by a request to another process'),
      reconnected: async () => {
        // Aborts NOTIFYed while the relay was down: the control database has them (commit-relay.ts).
        for (const id of [...this.held.keys()]) {
          const r = await getRun(deps.ctl.pool, deps.ctl, id);
          if (r.status !== 'open' && r.status !== 'committing') await this.held.get(id)?.rollback('the run is no longer open');
        }
      },
    });
  }

  /** Listens for commits of the runs this process holds that reach other processes. */
  startRelay(): Promise<void> {
    return this.relay.start();
  }

  stopRelay(): Promise<void> {
    return this.relay.stop();
  }

  /** A commit of a run another live process holds, carried to it; its answer, or 503 run_held_elsewhere without one. */
  private async commitElsewhere(id: string, sent: SentBatches | undefined, refused: RunHeldElsewhereError): Promise<RunView> {
    const answer = await this.relay.forward(id, sent, this.deps.heldCommitWaitMs);
    if (!answer) throw refused;
    if (!answer.ok) throw relayedError(answer);
    return viewOf(await getRun(this.deps.ctl.pool, this.deps.ctl, id));
  }

  /**
   * The run's holder in this process: the one there is, or a new one when
   * the run can be held here. A held run keeps a connection of the
   * destination's pool for its whole run: at most a third of the pool's
   * connections hold runs, the rest serve everything else.
   */
  private async holderOf(r: RunRecord, dest: Destination, run: HttpRun): Promise<HeldRun | undefined> {
    const have = this.held.get(r.id);
    if (have || !this.deps.holdRuns) return have;
    const pending = this.holding.get(r.id);
    if (pending) return pending;
    const max = Math.max(1, Math.floor((dest.pool.options.max ?? 10) / 3));
    if ([...this.held.values()].filter((h) => h.destinationId === r.destination_id).length >= max) return undefined;
    const { log } = this.deps;
    const starting = HeldRun.start(
      {
        pool: dest.pool,
        destinationId: r.destination_id!,
        idleMs: this.deps.heldRunIdleMs,
        overlap: this.deps.heldOverlap,
        log,
        onEnd: () => this.held.delete(r.id),
      },
      run,
    )
      .then((h) => {
        if (h) this.held.set(r.id, h);
        return h;
      })
      .catch((err: unknown) => {
        if (err instanceof RunClosedError) throw err;
        log.warn({ runId: r.id, err: { message: (err as Error).message } }, 'could not hold the run: its batches are staged');
        return undefined;
      })
      .finally(() => this.holding.delete(r.id));
    this.holding.set(r.id, starting);
    return starting;
  }

  /** Rolls back the runs this process holds (of one destination, or all at shutdown): their clients send those batches again. */
  async letGo(reason: string, destinationId?: string): Promise<void> {
    const runs = [...this.held.values()].filter((h) => destinationId === undefined || h.destinationId === destinationId);
    await Promise.all(runs.map((h) => h.rollback(reason)));
  }

  private httpRunOf(r: RunRecord, dest: Destination): HttpRun {
    return {
      runId: r.id,
      schema: r.schema_name,
      def: resolveObject({ kind: r.kind, object: r.object, provider: r.provider, ...(r.options.declared ? { declared: r.options.declared } : {}) }),
      provider: r.provider,
      customerId: r.customer_id,
      mode: r.mode,
      write: r.write_mode,
      matchColumn: r.options.match_column ?? 'id',
      ignoreDeletes: r.options.ignore_deletes ?? false,
      deleteMode: r.options.delete_mode ?? dest.config.delete_mode,
    };
  }

  async open(req: OpenRunRequest): Promise<RunView> {
    const { ctl, pools } = this.deps;
    const kind = req.kind ?? 'common';
    const mode = req.mode ?? 'incremental';
    const { write, ignoreDeletes } = writeModeOf(mode, req.write, req.ignore_deletes);
    const def = resolveObject({ kind, object: req.object, provider: req.provider, ...(req.declared ? { declared: req.declared } : {}) });
    // The declaration is kept with the run, as jsonb.
    if (req.declared) checkDeclared(req.object, req.declared as Record<string, unknown>, { storable: true });
    const dest = await pools.get(req.destination_id);
    const id = randomUUID();
    const run: HttpRun = {
      runId: id,
      schema: dest.schema,
      def,
      provider: req.provider,
      customerId: req.customer_id,
      mode,
      write,
      matchColumn: req.match_column ?? 'id',
      ignoreDeletes,
      deleteMode: dest.config.delete_mode,
    };
    mergeSql({ ...run, runId: id, trackSeen: false }); // refuses a bad match column now rather than at commit
    const record = await inPoolTransaction(ctl.pool, async (c) => {
      await assertRoomForRun(c, ctl, req.destination_id, this.deps.maxOpenRunsPerDestination);
      return insertRun(c, ctl, {
        id,
        destination_id: req.destination_id,
        destination_run_id: id,
        origin: 'http',
        schedule_id: null,
        job_id: null,
        inbound_id: null,
        provider: req.provider,
        customer_id: req.customer_id,
        object: req.object,
        kind,
        mode,
        write_mode: write,
        options: {
          match_column: run.matchColumn,
          ignore_deletes: ignoreDeletes,
          delete_mode: run.deleteMode,
          ...(req.declared ? { declared: req.declared } : {}),
        },
        schema_name: dest.schema,
        status: 'open',
      });
    });
    try {
      await openHttpRun(dest.pool, run);
    } catch (err) {
      await finishControlRun(ctl.pool, ctl, id, { status: 'failed', counts: null, watermark: null, error: (err as Error).message }).catch(() => undefined);
      throw err;
    }
    return viewOf(record);
  }

  async get(id: string): Promise<RunView> {
    return viewOf(await getRun(this.deps.ctl.pool, this.deps.ctl, id));
  }

  async stage(id: string, body: AsyncIterable<Buffer | string> | undefined, batchNo?: number): Promise<StagedBatch> {
    const { ctl, pools, metrics } = this.deps;
    const r = await getRun(ctl.pool, ctl, id);
    if (r.origin !== 'http' || r.status !== 'open') {
      // Ended elsewhere (a commit in flight may still be refused, and the run held on).
      if (r.status !== 'committing') await this.held.get(id)?.rollback('the run is no longer open');
      throw new RunClosedError(id);
    }
    if (!body) throw new InputError('a batch needs a body: NDJSON records, Content-Type application/x-ndjson');
    const release = this.uploads.take(r.destination_id!);
    try {
      const dest = await pools.get(r.destination_id!);
      const stop = metrics.batchSeconds.startTimer({ step: 'stage' });
      const input = withBodyTimeouts(guarded(body, this.deps.maxBatchBytes), this.deps.bodyTimeouts);
      const run = this.httpRunOf(r, dest);
      const options = { ...(batchNo === undefined ? {} : { batchNo }), maxRecordBytes: dest.config.max_record_bytes };
      const holder = await this.holderOf(r, dest, run);
      let staged: StagedBatch | undefined;
      let rest: AsyncIterable<Buffer | string> = input;
      if (holder) {
        staged = await holder.land(input, options).catch((err: unknown) => {
          // Let go before this batch began: it is staged (its body whole again when the holder read some of it ahead).
          if (!(err instanceof RunNotHeldError)) throw err;
          rest = err.input ?? input;
          return undefined;
        });
      }
      staged ??= await stageBatch(dest.pool, run, rest, options);
      stop();
      return staged;
    } finally {
      release();
    }
  }

  async commit(id: string, sent?: SentBatches): Promise<RunView> {
    const { ctl, pools, metrics, log } = this.deps;
    const r = await getRun(ctl.pool, ctl, id);
    if (['succeeded', 'partial', 'failed'].includes(r.status)) return viewOf(r);
    if (r.status === 'cancelled' || r.origin !== 'http') throw new RunClosedError(id);
    if (this.committing.has(id) || !(await moveRun(ctl.pool, ctl, id, ['open', 'committing'], 'committing'))) {
      throw new PglandError('conflict', `run ${id} is being committed or aborted by another request`, { hint: 'get the run to see how it ended' });
    }
    this.committing.add(id);
    try {
      const dest = await pools.get(r.destination_id!);
      const run = this.httpRunOf(r, dest);
      const stop = metrics.batchSeconds.startTimer({ step: 'commit' });
      let outcome;
      try {
        const holder = this.held.get(id);
        outcome = await holder?.commit(sent).catch((err: unknown) => {
          if (err instanceof RunNotHeldError) return undefined;
          throw err;
        });
        if (!outcome) {
          // Held by another process (carried there), or lost by a holder that is gone (refused, naming what to send again).
          try {
            await checkHeldBatches(dest.pool, run);
          } catch (err) {
            if (!(err instanceof RunHeldElsewhereError)) throw err;
            this.committing.delete(id); // the holder commits it, maybe in this very process
            return await this.commitElsewhere(id, sent, err);
          }
          outcome = await commitHttpRun({ pool: dest.pool, lockTimeoutMs: dest.config.lock_timeout_ms }, run, sent);
        }
      } catch (err) {
        // Nothing was decided: the client may commit again later.
        if (isRetryable(err) || (err instanceof PglandError && ['object_locked', 'batches_differ', 'batches_lost', 'run_held_elsewhere'].includes(err.code)))
          await moveRun(ctl.pool, ctl, id, ['committing'], 'open');
        throw err;
      }
      stop();
      const status = outcome.status === 'succeeded' || outcome.status === 'partial' ? outcome.status : 'failed';
      const error = status === 'failed' ? (outcome.error ?? `the run ended ${outcome.status}`) : null;
      const done = await inPoolTransaction(ctl.pool, async (c) => {
        const evolution = evolutionOf(r.schema_name, { table: run.def.table, ...(outcome.evolution ? { evolution: outcome.evolution } : {}) });
        const finished = await finishControlRun(c, ctl, id, { status, counts: outcome.counts, watermark: outcome.watermark, error, evolution });
        if (finished) await enqueue(c, ctl, runEvents(finished));
        return finished;
      });
      // Another process's commit of the same run recorded it first (and sent its webhooks).
      if (!done) return viewOf(await getRun(ctl.pool, ctl, id));
      this.deps.onEnqueued();
      metrics.runsFinished.inc({ origin: 'http', status });
      if (status !== 'failed') metrics.landed(done.object, outcome.counts);
      log.info({ runId: id, object: done.object, status, counts: done.counts }, 'run committed');
      if (outcome.evolution?.problems)
        log.warn({ runId: id, problems: outcome.evolution.problems }, 'landed values no longer fit their column after the table evolved: see _pgland_problems');
      return viewOf(done);
    } finally {
      this.committing.delete(id);
    }
  }

  /** Aborts HTTP runs left open longer than the TTL (a platform that never committed), so their stages do not linger. */
  async expireOpenRuns(ttlHours: number): Promise<number> {
    const { ctl, log } = this.deps;
    const { rows } = await ctl.pool.query<{ id: string }>(
      `SELECT id FROM ${ctl.table('runs')} WHERE origin = 'http' AND status = 'open' AND created_at < now() - $1 * interval '1 hour'`,
      [ttlHours],
    );
    let n = 0;
    for (const { id } of rows) {
      try {
        await this.abort(id);
        n++;
        log.warn({ runId: id, ttlHours }, 'an open run was not committed in time: aborted');
      } catch (err) {
        log.warn({ runId: id, err: { message: (err as Error).message } }, 'could not abort an expired run');
      }
    }
    return n;
  }

  async abort(id: string): Promise<RunView> {
    const { ctl, pools, metrics } = this.deps;
    const r = await getRun(ctl.pool, ctl, id);
    if (r.status === 'cancelled') return viewOf(r);
    if (r.origin !== 'http' || !(await moveRun(ctl.pool, ctl, id, ['open'], 'cancelled'))) {
      throw new PglandError('conflict', `run ${id} is ${r.status}: only an open run can be aborted`);
    }
    try {
      const dest = await pools.get(r.destination_id!);
      const holder = this.held.get(id);
      await holder?.rollback('aborted');
      // Held by another process: it lets the run go now (its open transaction holds the run's row, which the abort records).
      if (!holder) await this.relay.abort(id);
      const counts = await abortHttpRun(dest.pool, this.httpRunOf(r, dest));
      metrics.runsFinished.inc({ origin: 'http', status: 'cancelled' });
      await finishControlRun(ctl.pool, ctl, id, { status: 'cancelled', counts, watermark: null, error: 'aborted before commit: nothing of it landed' });
      return viewOf(await getRun(ctl.pool, ctl, id));
    } catch (err) {
      // The stage is still there: the run stays open, and abort may be asked again.
      await moveRun(ctl.pool, ctl, id, ['cancelled'], 'open');
      throw err;
    }
  }
}
