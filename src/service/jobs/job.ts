import { randomUUID } from 'node:crypto';
import type { Logger } from '../../log.js';
import { inPoolTransaction, type ControlDb } from '../control/control-db.js';
import type { ServiceMetrics } from '../ops/metrics.js';
import { enqueue } from '../webhooks/outbox.js';
import type { DestinationPools } from '../destinations/pools.js';
import { evolutionOf, finishControlRun, insertRun, runEvents } from '../runs/control-runs.js';
import type { ScheduleRecord, ScheduleStore } from '../schedules/schedule-store.js';
import type { SecretBox } from '../control/secrets.js';
import { ImportStates, openPostgresSource } from '../schedules/pg-import.js';
import { openSource, type OpenedSource, type SourceConfig } from '../schedules/sources.js';

/** What a sync job carries. */
export interface SyncJobData {
  /** The schedule whose source the run reads (cron, manual; a sync.requested naming a schedule). */
  schedule_id?: string;
  /** cron: fired by the schedule; manual: asked for through the API; webhook: a sync.requested. */
  reason: 'cron' | 'manual' | 'webhook';
  slot?: string;
  /** The webhook-id of the sync.requested that queued the job. */
  inbound_id?: string;
  /** What a sync.requested asked for (sync-requests.ts); its source is sealed. */
  request?: RequestedRun;
  /** Requests for the same run (object, mode, source) coalesce into a queued job with this key. */
  coalesce_key?: string;
}

/** The target of a run a sync.requested asked for, and its URL source sealed under `inbound:<webhook-id>`. */
export interface RequestedRun {
  destination_id: string;
  provider: string;
  customer_id: string;
  object: string;
  kind: ScheduleRecord['kind'];
  mode: ScheduleRecord['mode'];
  write_mode: ScheduleRecord['write_mode'];
  options: ScheduleRecord['options'];
  timeout_seconds: number;
  /** Sealed: the source given in the event. Absent: the schedule's. */
  source?: string;
}

/** What a job runs: the target, where its records come from, and the schedule it belongs to (if any). */
type JobPlan = { s: Omit<RequestedRun, 'source'>; source: SourceConfig; scheduleId: string | null; enabled: boolean };

/** The job's target and source: its schedule's, or what its sync.requested gave; undefined when the schedule is gone. */
async function planOf(deps: JobDeps, data: SyncJobData): Promise<JobPlan | undefined> {
  const schedule = data.schedule_id ? await deps.schedules.find(data.schedule_id) : undefined;
  if (data.schedule_id && !schedule) return undefined;
  const r = data.request;
  if (r) {
    const source = r.source ? (JSON.parse(deps.box.open(r.source, `inbound:${data.inbound_id}`)) as SourceConfig) : deps.schedules.source(schedule!);
    const { source: _sealed, ...target } = r;
    return { s: target, source, scheduleId: schedule?.id ?? null, enabled: true };
  }
  return { s: schedule!, source: deps.schedules.source(schedule!), scheduleId: schedule!.id, enabled: schedule!.enabled };
}

export interface JobDeps {
  ctl: ControlDb;
  box: SecretBox;
  pools: DestinationPools;
  schedules: ScheduleStore;
  metrics: ServiceMetrics;
  log: Logger;
  onEnqueued: () => void;
}

/** A scheduled run that did not complete: thrown so that pg-boss retries the job (then dead-letters it). */
export class ScheduledRunFailed extends Error {}

/**
 * One scheduled run: read the schedule, open its source (with the object's
 * watermark for an incremental run), land the records through the ordinary
 * load path (batches, the object's advisory lock, retries of transient
 * failures), record the run in the control database and put its webhooks in
 * the outbox. A run that fails or is cancelled throws, so that the job is
 * retried with backoff; the load path makes a retry safe (a re-delivered
 * record changes nothing).
 */
export async function runScheduledJob(deps: JobDeps, job: { id: string; data: SyncJobData }, signal: AbortSignal): Promise<Record<string, unknown>> {
  const { ctl, pools, schedules, metrics } = deps;
  const plan = await planOf(deps, job.data);
  if (!plan) return { skipped: 'the schedule was deleted' };
  if (!plan.enabled && job.data.reason === 'cron') return { skipped: 'the schedule is disabled' };
  const { s } = plan;
  const origin = job.data.reason === 'webhook' ? 'webhook' : 'schedule';
  const log = deps.log.child({ jobId: job.id, scheduleId: plan.scheduleId, inboundId: job.data.inbound_id, object: s.object });
  const dest = await pools.get(s.destination_id);
  const declared = s.options.declared;
  const watermark =
    s.mode === 'incremental' ? (await dest.watermark({ provider: s.provider, customerId: s.customer_id, object: s.object }))?.highWaterMark : undefined;

  // A retry of a job whose worker died: that attempt's run never finished.
  await ctl.pool.query(
    `UPDATE ${ctl.table('runs')} SET status = 'failed', finished_at = now(),
            error = 'the worker stopped before finishing (killed, or lost its connection); the job was retried'
      WHERE job_id = $1::uuid AND status = 'running'`,
    [job.id],
  );
  const id = randomUUID();
  await insertRun(ctl.pool, ctl, {
    id,
    destination_id: s.destination_id,
    destination_run_id: null,
    origin,
    schedule_id: plan.scheduleId,
    job_id: job.id,
    inbound_id: job.data.inbound_id ?? null,
    provider: s.provider,
    customer_id: s.customer_id,
    object: s.object,
    kind: s.kind,
    mode: s.mode,
    write_mode: s.write_mode,
    options: s.options,
    schema_name: dest.schema,
    status: 'running',
  });

  // The run must end before pg-boss gives the job up as expired (it then
  // retries it elsewhere): cancel it a little before that.
  const timeout = AbortSignal.timeout(s.timeout_seconds * 1000 - Math.min(5000, s.timeout_seconds * 100));
  const stop = AbortSignal.any([signal, timeout]);
  const started = metrics.batchSeconds.startTimer({ step: 'scheduled' });
  let source: OpenedSource;
  try {
    const config = plan.source;
    // A postgres source comes from a schedule only (an event gives a URL): its import state is the schedule's.
    source =
      config.type === 'postgres'
        ? await openPostgresSource(config, plan.scheduleId!, new ImportStates(ctl), schedules.policy, stop, { fromStart: s.mode === 'full' })
        : await openSource(config, watermark, stop, schedules.policy);
  } catch (err) {
    const error = `the source could not be opened: ${(err as Error).message}`;
    await finish(deps, id, { status: 'failed', counts: null, watermark: watermark ?? null, error }, s.object, origin);
    throw new ScheduledRunFailed(error, { cause: err });
  }
  let settled = false;
  try {
    log.info({ reason: job.data.reason, watermark }, 'scheduled run started');
    const result = await dest.load({
      kind: s.kind,
      object: s.object,
      provider: s.provider,
      customerId: s.customer_id,
      mode: s.mode,
      write: s.write_mode,
      matchColumn: s.options.match_column ?? 'id',
      ignoreDeletes: s.options.ignore_deletes ?? false,
      ...(declared ? { declared } : {}),
      input: source.records,
      signal: stop,
    });
    started();
    const after = await dest.watermark({ provider: s.provider, customerId: s.customer_id, object: s.object });
    const status = result.status === 'succeeded' || result.status === 'partial' ? result.status : result.status === 'cancelled' ? 'cancelled' : 'failed';
    // Only once the run has committed does a source's own bookmark move.
    if (status === 'succeeded' || status === 'partial') await source.commit?.(id);
    const error = result.error ? (timeout.aborted && !signal.aborted ? `timed out after ${s.timeout_seconds} s` : result.error.message) : null;
    const evolution = evolutionOf(dest.schema, {
      table: result.table,
      ...(result.evolution ? { evolution: result.evolution } : {}),
      ...(result.fullRefreshRequired ? { fullRefreshRequired: result.fullRefreshRequired } : {}),
    });
    await finish(
      deps,
      id,
      { status, counts: result.counts, watermark: after?.highWaterMark ?? null, error, destinationRunId: result.runId, evolution },
      s.object,
      origin,
    );
    settled = true;
    log.info({ status, counts: result.counts }, 'scheduled run finished');
    if (status === 'failed' || status === 'cancelled') throw new ScheduledRunFailed(`scheduled run ${id} ${status}: ${error ?? ''}`);
    return { run_id: id, destination_run_id: result.runId, status };
  } catch (err) {
    // The load refused to start (a bad setting), or recording its outcome failed: the run is failed, the job retried.
    if (!settled) {
      await finish(deps, id, { status: 'failed', counts: null, watermark: watermark ?? null, error: (err as Error).message }, s.object, origin).catch(
        (e: unknown) => log.warn({ err: { message: (e as Error).message } }, 'could not record the failed run'),
      );
    }
    throw err;
  } finally {
    source.close();
  }
}

async function finish(
  deps: JobDeps,
  id: string,
  outcome: Parameters<typeof finishControlRun>[3],
  object: string,
  origin: 'schedule' | 'webhook',
): Promise<void> {
  const { ctl, metrics } = deps;
  await inPoolTransaction(ctl.pool, async (c) => {
    const done = await finishControlRun(c, ctl, id, outcome);
    if (done) await enqueue(c, ctl, runEvents(done));
  });
  deps.onEnqueued();
  metrics.runsFinished.inc({ origin, status: outcome.status });
  if (outcome.counts && outcome.status !== 'failed') metrics.landed(object, outcome.counts);
}
