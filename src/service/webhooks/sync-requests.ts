import { createHmac } from 'node:crypto';
import type pg from 'pg';
import { resolveObject } from '../../catalog/declared.js';
import type { ObjectKind } from '../../catalog/definition.js';
import { PglandError } from '../../errors.js';
import type { SyncMode } from '../../load/runs.js';
import type { ControlDb } from '../control/control-db.js';
import type { DestinationStore } from '../destinations/destination-store.js';
import type { RequestedRun, SyncJobData } from '../jobs/job.js';
import { writeModeOf, type RunTarget } from '../runs/control-runs.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { SecretBox } from '../control/secrets.js';
import { checkSource, redactSource, type SourceConfig } from '../schedules/sources.js';

/**
 * Inbound sync webhooks that drive runs (docs/service.md, "Inbound
 * webhooks"). A verified `sync.requested` names a destination, a tenant, an
 * object, a mode and where the records are (a schedule's source, or a URL
 * source in the event); pgland queues a run of it on the job queue, as a
 * schedule's, or coalesces it into the same run already queued. Every other
 * event, and a request pgland cannot act on, is stored as ignored, with why.
 */
export const SYNC_REQUESTED = 'sync.requested';

export interface InboundAction {
  action: 'queued' | 'coalesced' | 'ignored';
  detail?: string;
  job_id?: string;
}

export interface SyncRequestDeps {
  ctl: ControlDb;
  box: SecretBox;
  destinations: DestinationStore;
  scheduler: Scheduler;
  /** Keys the coalescing digest of a source (it may hold credentials): the first inbound webhook key. */
  digestKey: Buffer;
}

/** The event's data, as far as pgland reads it. */
interface RequestData {
  destination_id?: unknown;
  tenant?: { provider?: unknown; customer_id?: unknown };
  object?: unknown;
  kind?: unknown;
  mode?: unknown;
  write?: unknown;
  match_column?: unknown;
  schedule_id?: unknown;
  source?: unknown;
  timeout_seconds?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function text(v: unknown, field: string, max = 1000): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new PglandError('config_invalid', `data.${field} must be a non-empty string`);
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new PglandError('config_invalid', `data.${field} must be one of: ${allowed.join(', ')}`);
  return v as T;
}

/** The event's source: only a URL source (an event never runs a command), checked as a schedule's is. */
function urlSource(v: unknown, deps: SyncRequestDeps): SourceConfig {
  const s = v as { type?: unknown; url?: unknown; headers?: unknown };
  if (typeof s !== 'object' || s === null || s.type !== 'url') {
    throw new PglandError('config_invalid', 'data.source must be {"type": "url", "url": …, "headers"?: {…}}: an event cannot run a command');
  }
  const headers = s.headers;
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((h) => typeof h !== 'string'))) {
    throw new PglandError('config_invalid', 'data.source.headers must map names to strings');
  }
  const extra = Object.keys(s).filter((k) => !['type', 'url', 'headers'].includes(k));
  if (extra.length) throw new PglandError('config_invalid', `data.source: unknown key ${JSON.stringify(extra[0]!.slice(0, 60))}`);
  const source: SourceConfig = { type: 'url', url: text(s.url, 'source.url', 8000), ...(headers ? { headers: headers as Record<string, string> } : {}) };
  checkSource(source, deps.scheduler.schedules.policy);
  return source;
}

/** What the request asks to run, or a config_invalid error saying what is wrong with it. */
async function requestedRun(deps: SyncRequestDeps, webhookId: string, data: RequestData): Promise<{ run: RequestedRun; scheduleId?: string; digest: string }> {
  if (typeof data !== 'object' || data === null) throw new PglandError('config_invalid', 'data must be an object');
  const destinationId = text(data.destination_id, 'destination_id', 36);
  if (!UUID.test(destinationId)) throw new PglandError('config_invalid', 'data.destination_id must be a destination id (a UUID)');
  await deps.destinations.get(destinationId);
  const target: RunTarget = {
    destination_id: destinationId,
    provider: text(data.tenant?.provider, 'tenant.provider'),
    customer_id: text(data.tenant?.customer_id, 'tenant.customer_id'),
    object: text(data.object, 'object'),
    kind: oneOf<ObjectKind>(data.kind, 'kind', ['common', 'standard', 'custom'], 'common'),
    mode: oneOf<SyncMode>(data.mode, 'mode', ['incremental', 'full'], 'incremental'),
  };
  let scheduleId: string | undefined;
  let sealed: string | undefined;
  let sourceKey: string;
  let timeout = 3600;
  let options: RequestedRun['options'] = {};
  let write = oneOf(data.write, 'write', ['upsert', 'insert', 'update', 'delete', 'sync', 'additive', 'enrich'] as const, 'upsert');
  if (data.schedule_id !== undefined) {
    if (data.source !== undefined) throw new PglandError('config_invalid', 'data names both schedule_id and source: give one');
    const id = text(data.schedule_id, 'schedule_id', 36);
    if (!UUID.test(id)) throw new PglandError('config_invalid', 'data.schedule_id must be a schedule id (a UUID)');
    const s = await deps.scheduler.schedules.get(id);
    if (s.destination_id !== target.destination_id || s.provider !== target.provider || s.customer_id !== target.customer_id || s.object !== target.object) {
      throw new PglandError('config_invalid', `schedule ${id} lands another destination, tenant or object than the event names`);
    }
    scheduleId = s.id;
    sourceKey = `schedule:${s.id}`;
    timeout = s.timeout_seconds;
    options = s.options;
    target.kind = s.kind;
    if (data.write === undefined) write = s.write_mode;
  } else if (data.source !== undefined) {
    const source = urlSource(data.source, deps);
    sealed = deps.box.seal(JSON.stringify(source), `inbound:${webhookId}`);
    sourceKey = JSON.stringify(source);
  } else {
    throw new PglandError('config_invalid', 'data must name where the records are: schedule_id (its source) or source ({"type": "url", …})');
  }
  if (data.timeout_seconds !== undefined) {
    if (!Number.isInteger(data.timeout_seconds) || (data.timeout_seconds as number) < 10 || (data.timeout_seconds as number) > 86_400) {
      throw new PglandError('config_invalid', 'data.timeout_seconds must be an integer from 10 to 86400');
    }
    timeout = data.timeout_seconds as number;
  }
  const mode = target.mode!;
  const w = writeModeOf(mode, write, options.ignore_deletes);
  resolveObject({ kind: target.kind!, object: target.object, provider: target.provider, ...(options.declared ? { declared: options.declared } : {}) });
  const run: RequestedRun = {
    destination_id: target.destination_id,
    provider: target.provider,
    customer_id: target.customer_id,
    object: target.object,
    kind: target.kind!,
    mode,
    write_mode: w.write,
    options: { ...options, ignore_deletes: w.ignoreDeletes, match_column: options.match_column ?? 'id' },
    timeout_seconds: timeout,
    ...(sealed ? { source: sealed } : {}),
  };
  // Two requests are the same run when they land the same object the same way from the same source.
  const digest = createHmac('sha256', deps.digestKey)
    .update(JSON.stringify([run.destination_id, run.provider, run.customer_id, run.object, run.kind, run.mode, run.write_mode, sourceKey]))
    .digest('base64url');
  return { run, ...(scheduleId ? { scheduleId } : {}), digest };
}

/**
 * The payload as stored and listed: a source's URL credentials and header
 * values read "[set]" (the real source is sealed in the job).
 */
export function redactPayload(payload: unknown): unknown {
  const p = payload as { type?: unknown; data?: { source?: unknown } };
  if (p?.type !== SYNC_REQUESTED || typeof p.data !== 'object' || p.data === null || typeof p.data.source !== 'object' || p.data.source === null)
    return payload;
  const s = p.data.source as { type?: unknown; url?: unknown; headers?: unknown };
  let shown: unknown;
  try {
    shown = redactSource({ type: 'url', url: typeof s.url === 'string' ? s.url : '', headers: (s.headers ?? {}) as Record<string, string> });
  } catch {
    shown = '[set]';
  }
  return { ...p, data: { ...p.data, source: shown } };
}

/**
 * Acts on an accepted inbound webhook, in one control transaction with the
 * record of what was done: queues the run a sync.requested asks for, or
 * coalesces it into the same run already queued (not yet started), or
 * records why it was ignored.
 */
export async function actOnInbound(deps: SyncRequestDeps, webhookId: string, payload: unknown): Promise<InboundAction> {
  const type = (payload as { type?: unknown })?.type;
  let action: InboundAction;
  if (type !== SYNC_REQUESTED) {
    action = {
      action: 'ignored',
      detail: `pgland acts on ${SYNC_REQUESTED} only; ${typeof type === 'string' ? type.slice(0, 100) : 'an event without a type'} is kept`,
    };
  } else {
    try {
      const req = await requestedRun(deps, webhookId, (payload as { data?: RequestData }).data as RequestData);
      const data: SyncJobData & { request: RequestedRun; coalesce_key: string } = {
        reason: 'webhook',
        inbound_id: webhookId,
        request: req.run,
        coalesce_key: req.digest,
        ...(req.scheduleId ? { schedule_id: req.scheduleId } : {}),
      };
      return await deps.scheduler.enqueueRequested(data, (client, decided) => record(client, deps.ctl, webhookId, decided));
    } catch (err) {
      if (!(err instanceof PglandError)) throw err;
      action = { action: 'ignored', detail: `not acted on: ${err.message}` };
    }
  }
  await record(deps.ctl.pool, deps.ctl, webhookId, action);
  return action;
}

async function record(db: pg.Pool | pg.PoolClient, ctl: ControlDb, webhookId: string, a: InboundAction): Promise<void> {
  await db.query(`UPDATE ${ctl.table('inbound_webhooks')} SET action = $2, detail = $3, job_id = $4 WHERE webhook_id = $1`, [
    webhookId,
    a.action,
    a.detail ?? null,
    a.job_id ?? null,
  ]);
}
