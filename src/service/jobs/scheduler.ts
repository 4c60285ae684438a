import { EventEmitter } from 'node:events';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import { endPool } from '../../connection/pool.js';
import { PglandError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { qualify } from '../../sql/ident.js';
import type { ControlDb } from '../control/control-db.js';
import { listDeadLetters, takeDeadLetter, type DeadLetter } from './dead-letters.js';
import { runScheduledJob, type RequestedRun, type SyncJobData } from './job.js';
import type { ServiceMetrics } from '../ops/metrics.js';
import type { Egress } from '../outbound/egress.js';
import type { DestinationPools } from '../destinations/pools.js';
import { lastSlot, ScheduleStore, type ScheduleRecord } from '../schedules/schedule-store.js';
import type { SecretBox } from '../control/secrets.js';

/** pg-boss queues: scheduled runs, their dead letters, and the minute tick that fires the crons. */
export const QUEUES = { sync: 'pgland-sync', dead: 'pgland-sync-dead', tick: 'pgland-tick' } as const;

export interface SchedulerOptions {
  /** The schema pg-boss keeps its tables in, in the control database. */
  schema: string;
  /** Jobs this process runs at once. */
  concurrency: number;
  /** How often an idle worker asks for a job (seconds, at least 0.5). */
  pollingIntervalSeconds: number;
  /** How often expired jobs (a worker that died) are failed and retried (seconds). */
  maintenanceIntervalSeconds: number;
  /** Retries of a failed run before it goes to the dead-letter queue. */
  retryLimit: number;
  /** First retry delay (seconds); doubled with jitter on each retry. */
  retryDelaySeconds: number;
  /** Whether schedules may read from a command (it runs on the worker). */
  allowCommands: boolean;
}

export const DEFAULT_SCHEDULER: SchedulerOptions = {
  schema: 'pgland_jobs',
  concurrency: 1,
  pollingIntervalSeconds: 2,
  maintenanceIntervalSeconds: 60,
  retryLimit: 3,
  retryDelaySeconds: 30,
  allowCommands: false,
};

export interface SchedulerDeps {
  ctl: ControlDb;
  box: SecretBox;
  pools: DestinationPools;
  metrics: ServiceMetrics;
  log: Logger;
  onEnqueued: () => void;
  /** Where URL sources may connect. */
  egress: Egress;
}

/** One run per (destination, tenant, object) at a time: pg-boss activates one job per key, the loader holds the advisory lock. */
export function singletonKey(s: Pick<ScheduleRecord, 'destination_id' | 'provider' | 'customer_id' | 'object'>): string {
  return JSON.stringify([s.destination_id, s.provider, s.customer_id, s.object]);
}

/** A pg-boss connection that runs inside one of our transactions. */
function inClient(client: pg.PoolClient): { executeSql: (text: string, values: unknown[]) => Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => client.query(text, values as unknown[]) };
}

/**
 * Schedules on pg-boss. Every minute a tick job (pg-boss's own cron, so one
 * process per minute does it) enqueues a sync job for each schedule whose
 * cron fired since it last did; workers (`pgland serve`, `pgland serve
 * --worker`) take sync jobs from the one queue. The queue's singleton policy
 * keeps a key's jobs from running at once; a failed run is retried with
 * jittered exponential backoff and, past retryLimit, moved to the
 * dead-letter queue. A job whose worker died is failed (then retried) when
 * its expiration (the schedule's timeout) passes.
 */
export class Scheduler extends EventEmitter {
  readonly schedules: ScheduleStore;
  private boss: PgBoss | undefined;
  private readonly opts: SchedulerOptions;
  private readonly running = new Set<AbortController>();
  /** This process's sync workers, woken when a request queues a run. */
  private readonly workers: string[] = [];
  private status = 'not started';

  constructor(
    private readonly deps: SchedulerDeps,
    options: Partial<SchedulerOptions>,
  ) {
    super();
    this.opts = { ...DEFAULT_SCHEDULER, ...options };
    this.schedules = new ScheduleStore(deps.ctl, deps.box, { allowCommands: this.opts.allowCommands, egress: deps.egress });
  }

  state(): string {
    return this.status;
  }

  async start(options: { work: boolean }): Promise<void> {
    const o = this.opts;
    const boss = new PgBoss({
      connectionString: this.deps.ctl.url,
      schema: o.schema,
      application_name: 'pgland-jobs',
      max: 4,
      supervise: true,
      schedule: true,
      migrate: true,
      maintenanceIntervalSeconds: o.maintenanceIntervalSeconds,
    });
    boss.on('error', (err: Error) => this.emit('error', err));
    await boss.start();
    this.boss = boss;
    const retry = { retryLimit: o.retryLimit, retryDelay: o.retryDelaySeconds, retryBackoff: true };
    await boss.createQueue(QUEUES.dead, { name: QUEUES.dead, policy: 'standard' });
    await boss.createQueue(QUEUES.sync, { name: QUEUES.sync, policy: 'singleton', ...retry, deadLetter: QUEUES.dead });
    await boss.updateQueue(QUEUES.sync, { name: QUEUES.sync, policy: 'singleton', ...retry, deadLetter: QUEUES.dead });
    await boss.createQueue(QUEUES.tick, { name: QUEUES.tick, policy: 'singleton', retryLimit: 0 });
    await boss.schedule(QUEUES.tick, '* * * * *', {}, { singletonKey: 'tick' });
    if (options.work) {
      await boss.work(QUEUES.tick, { pollingIntervalSeconds: 10 }, async () => {
        await this.dispatchDue(new Date());
      });
      for (let i = 0; i < o.concurrency; i++) {
        this.workers.push(
          await boss.work<SyncJobData>(QUEUES.sync, { batchSize: 1, pollingIntervalSeconds: o.pollingIntervalSeconds, includeMetadata: true }, async ([job]) =>
            this.runJob(job!),
          ),
        );
      }
    }
    this.status = 'ok';
  }

  private async runJob(job: PgBoss.JobWithMetadata<SyncJobData>): Promise<Record<string, unknown>> {
    const controller = new AbortController();
    this.running.add(controller);
    try {
      return await runScheduledJob({ ...this.deps, schedules: this.schedules }, job, controller.signal);
    } catch (err) {
      const last = job.retryCount >= job.retryLimit;
      this.deps.log.warn(
        { jobId: job.id, attempt: job.retryCount + 1, attempts: job.retryLimit + 1, err: { message: (err as Error).message } },
        last ? 'sync job failed for good: dead-lettered (GET /jobs/dead-letters)' : 'sync job failed: it will be retried',
      );
      throw err;
    } finally {
      this.running.delete(controller);
    }
  }

  /**
   * Enqueues one sync job for each enabled schedule whose cron fired after
   * its last firing and at or before `now` (missed slots coalesce into one).
   * The firing is recorded in the same transaction as the job, so a slot is
   * enqueued once even when ticks overlap.
   */
  async dispatchDue(now: Date): Promise<number> {
    const boss = this.requireBoss();
    const { ctl } = this.deps;
    const client = await ctl.pool.connect();
    let sent = 0;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<ScheduleRecord>(`SELECT * FROM ${ctl.table('schedules')} WHERE enabled FOR UPDATE SKIP LOCKED`);
      for (const s of rows) {
        let slot: Date;
        try {
          slot = lastSlot(s.cron, s.timezone, now);
        } catch (err) {
          this.emit('error', err);
          continue;
        }
        if (s.last_fired_at && slot <= s.last_fired_at) continue;
        await client.query(`UPDATE ${ctl.table('schedules')} SET last_fired_at = $2 WHERE id = $1`, [s.id, slot]);
        // A slot that comes while the object's previous run is still queued or
        // running is skipped: a sync catches up on its own, and a queue of
        // runs of one object would hold back the others' (the queue's head
        // waits while its object runs).
        const busy = await client.query(
          `SELECT 1 FROM ${qualify(this.opts.schema, 'job')} WHERE name = $1 AND singleton_key = $2 AND state < 'completed' LIMIT 1`,
          [QUEUES.sync, singletonKey(s)],
        );
        if (busy.rowCount) continue;
        await boss.send(QUEUES.sync, { schedule_id: s.id, reason: 'cron', slot: slot.toISOString() } satisfies SyncJobData, {
          singletonKey: singletonKey(s),
          expireInSeconds: s.timeout_seconds,
          db: inClient(client),
        });
        sent++;
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    return sent;
  }

  /** Enqueues a run of a schedule now (the API's "run now"). */
  async trigger(scheduleId: string): Promise<string | null> {
    const s = await this.schedules.get(scheduleId);
    return this.requireBoss().send(QUEUES.sync, { schedule_id: s.id, reason: 'manual' } satisfies SyncJobData, {
      singletonKey: singletonKey(s),
      expireInSeconds: s.timeout_seconds,
    });
  }

  /**
   * Queues the run a sync.requested asked for, or coalesces it into the same
   * run (same coalesce key) already queued and not yet started. Requests for
   * one object take turns (a transaction lock on its singleton key), and
   * `decided` records the outcome in the same transaction as the job.
   * A worker of this process is woken at once.
   */
  async enqueueRequested(
    data: SyncJobData & { request: RequestedRun; coalesce_key: string },
    decided: (client: pg.PoolClient, action: { action: 'queued' | 'coalesced'; job_id: string }) => Promise<void>,
  ): Promise<{ action: 'queued' | 'coalesced'; job_id: string }> {
    const boss = this.requireBoss();
    const key = singletonKey(data.request);
    const client = await this.deps.ctl.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('pgland.sync-request.' || $1, 0))`, [key]);
      const queued = await client.query<{ id: string }>(
        `SELECT id FROM ${qualify(this.opts.schema, 'job')}
          WHERE name = $1 AND singleton_key = $2 AND state IN ('created', 'retry') AND data->>'coalesce_key' = $3
          ORDER BY created_on LIMIT 1`,
        [QUEUES.sync, key, data.coalesce_key],
      );
      let outcome: { action: 'queued' | 'coalesced'; job_id: string };
      if (queued.rows[0]) {
        outcome = { action: 'coalesced', job_id: queued.rows[0].id };
      } else {
        const id = await boss.send(QUEUES.sync, data, { singletonKey: key, expireInSeconds: data.request.timeout_seconds, db: inClient(client) });
        if (!id) throw new Error('the job queue did not take the run');
        outcome = { action: 'queued', job_id: id };
      }
      await decided(client, outcome);
      await client.query('COMMIT');
      if (outcome.action === 'queued') for (const w of this.workers) boss.notifyWorker(w);
      return outcome;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Runs that kept failing, newest first (dead-letters.ts). */
  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    return listDeadLetters(this.deps.ctl, { schema: this.opts.schema, queue: QUEUES.dead }, limit);
  }

  /** Queues a dead letter's run again (and drops the letter), in one transaction; the job id. */
  async retryDeadLetter(id: string): Promise<string> {
    const boss = this.requireBoss();
    const client = await this.deps.ctl.pool.connect();
    try {
      await client.query('BEGIN');
      const data = await takeDeadLetter(client, { schema: this.opts.schema, queue: QUEUES.dead }, id);
      const target = data.request ?? (data.schedule_id ? await this.schedules.get(data.schedule_id) : undefined);
      if (!target) throw new PglandError('conflict', `dead letter ${id} names no schedule or request to run again`);
      const jobId = await boss.send(QUEUES.sync, { ...data, reason: data.reason === 'cron' ? 'manual' : data.reason } satisfies SyncJobData, {
        singletonKey: singletonKey(target),
        expireInSeconds: target.timeout_seconds,
        db: inClient(client),
      });
      if (!jobId) throw new Error('the job queue did not take the run');
      await client.query('COMMIT');
      for (const w of this.workers) boss.notifyWorker(w);
      return jobId;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Drops a dead letter: its run will not be retried. */
  async deleteDeadLetter(id: string): Promise<void> {
    const client = await this.deps.ctl.pool.connect();
    try {
      await takeDeadLetter(client, { schema: this.opts.schema, queue: QUEUES.dead }, id);
    } finally {
      client.release();
    }
  }

  requireBoss(): PgBoss {
    if (!this.boss) throw new Error('the job queue is not started');
    return this.boss;
  }

  /**
   * Stops taking jobs and waits for the ones running, up to timeoutMs; then
   * cancels them (their current batch rolls back, the job is retried later).
   */
  async stop(options: { timeoutMs: number }): Promise<void> {
    const boss = this.boss;
    if (!boss) return;
    this.status = 'stopping';
    const cancel = setTimeout(
      () => {
        for (const c of this.running) c.abort();
      },
      Math.max(0, options.timeoutMs - 5000),
    );
    try {
      // pg-boss's own close ends its pool without waiting for the connections
      // to close (see endPool): the control server stopped next would report them.
      await boss.stop({ graceful: true, wait: true, close: false, timeout: options.timeoutMs });
      const pool = (boss.getDb() as { pool?: pg.Pool }).pool;
      if (pool) await endPool(pool);
    } finally {
      clearTimeout(cancel);
      this.boss = undefined;
      this.status = 'stopped';
    }
  }
}
