import type pg from 'pg';
import type { DeclaredSchema } from '../../catalog/declared.js';
import type { ObjectKind } from '../../catalog/definition.js';
import { PglandError } from '../../errors.js';
import type { RunCounts, SyncMode } from '../../load/runs.js';
import type { WriteMode } from '../../merge/merge.js';
import type { ControlDb } from '../control/control-db.js';
import type { OutboundEvent } from '../webhooks/outbox.js';
import type { EvolutionReport } from '../../schema/apply.js';

/**
 * A run as the control database keeps it: opened over HTTP (staged until
 * commit) or run by a schedule. Shared by ingest and the job worker.
 */
export type ControlStatus = 'open' | 'committing' | 'running' | 'succeeded' | 'partial' | 'failed' | 'cancelled';

/** What a run lands and how: the body of POST /runs, and the target of a schedule. */
export interface RunTarget {
  destination_id: string;
  provider: string;
  customer_id: string;
  object: string;
  kind?: ObjectKind;
  mode?: SyncMode;
  write?: WriteMode | 'sync' | 'additive' | 'enrich';
  match_column?: string;
  ignore_deletes?: boolean;
  declared?: DeclaredSchema;
}

export interface RunOptions {
  match_column?: string;
  ignore_deletes?: boolean;
  declared?: DeclaredSchema;
  delete_mode?: 'soft' | 'hard';
}

export interface RunRecord {
  id: string;
  destination_id: string | null;
  destination_run_id: string | null;
  origin: 'http' | 'schedule' | 'webhook';
  schedule_id: string | null;
  job_id: string | null;
  /** The webhook-id of the sync.requested that asked for the run (origin webhook). */
  inbound_id: string | null;
  provider: string;
  customer_id: string;
  object: string;
  kind: ObjectKind;
  mode: SyncMode;
  write_mode: WriteMode;
  options: RunOptions;
  schema_name: string;
  status: ControlStatus;
  counts: Record<string, number> | null;
  watermark: Date | null;
  error: string | null;
  /** What schema evolution did to the landed table in the run; null when it changed nothing. */
  evolution: RunEvolution | null;
  created_at: Date;
  finished_at: Date | null;
}

/** schema.evolved's change, per evolution action (docs/schema-evolution.md). */
const CHANGE = { create: 'table_created', alter: 'table_altered', rebuild: 'table_rebuilt' } as const;

/** A run's evolution report as the API, the control database and the schema.evolved webhook spell it. */
export interface RunEvolution {
  table: string;
  schema: string;
  change: (typeof CHANGE)[keyof typeof CHANGE];
  reasons: string[];
  not_restored: { label: string; error: string }[];
  problems: number;
  full_refresh_required: string | null;
}

/** The report of an evolution that changed the table; null when it changed nothing (or there was none). */
export function evolutionOf(schema: string, evolved: { table?: string; evolution?: EvolutionReport; fullRefreshRequired?: string }): RunEvolution | null {
  const ev = evolved.evolution;
  if (!ev || ev.action === 'none') return null;
  return {
    table: evolved.table ?? ev.table,
    schema,
    change: CHANGE[ev.action],
    reasons: ev.reasons,
    not_restored: ev.notRestored,
    problems: ev.problems,
    full_refresh_required: evolved.fullRefreshRequired ?? ev.fullRefreshReason,
  };
}

/** Grouparoo's sync modes, as pgland write modes (docs/sync-semantics.md). */
const GROUPAROO: Record<string, { write: WriteMode; ignoreDeletes: boolean }> = {
  sync: { write: 'upsert', ignoreDeletes: false },
  additive: { write: 'upsert', ignoreDeletes: true },
  enrich: { write: 'update', ignoreDeletes: true },
};

/** The write mode and ignore-deletes of a request that may use Grouparoo's names; a full refresh must upsert or insert. */
export function writeModeOf(
  mode: SyncMode,
  write: WriteMode | 'sync' | 'additive' | 'enrich' | undefined,
  ignoreDeletes: boolean | undefined,
): { write: WriteMode; ignoreDeletes: boolean } {
  const alias = GROUPAROO[write ?? 'upsert'];
  const out = {
    write: alias?.write ?? (write as WriteMode | undefined) ?? 'upsert',
    ignoreDeletes: (alias?.ignoreDeletes ?? false) || (ignoreDeletes ?? false),
  };
  if (mode === 'full' && (out.write === 'update' || out.write === 'delete')) {
    throw new PglandError('config_invalid', `a full refresh cannot use write mode ${out.write}`, {
      hint: 'a full refresh delivers every record: use write upsert (or insert)',
    });
  }
  return out;
}

export type RunView = Omit<RunRecord, 'options' | 'schema_name' | 'write_mode'> & {
  write: WriteMode;
  match_column: string;
  ignore_deletes: boolean;
};

export function viewOf(r: RunRecord): RunView {
  const { options, schema_name: _schema, write_mode, ...rest } = r;
  return { ...rest, write: write_mode, match_column: options.match_column ?? 'id', ignore_deletes: options.ignore_deletes ?? false };
}

/** Run counters as the API and webhooks spell them. */
export function countsView(c: RunCounts): Record<string, number> {
  return {
    batches: c.batches,
    rows_read: c.rowsRead,
    inserted: c.inserted,
    updated: c.updated,
    unchanged: c.unchanged,
    superseded: c.superseded,
    deleted: c.deleted,
    undeleted: c.undeleted,
    skipped: c.skipped,
    rejected: c.rejected,
    problems: c.problems,
    nul_stripped: c.nulStripped,
  };
}

export async function insertRun(
  db: pg.Pool | pg.PoolClient,
  ctl: ControlDb,
  r: Omit<RunRecord, 'counts' | 'watermark' | 'error' | 'evolution' | 'created_at' | 'finished_at'>,
): Promise<RunRecord> {
  const { rows } = await db.query<RunRecord>(
    `INSERT INTO ${ctl.table('runs')}
       (id, destination_id, destination_run_id, origin, schedule_id, job_id, inbound_id, provider, customer_id, object, kind, mode, write_mode, options, schema_name, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *`,
    [
      r.id,
      r.destination_id,
      r.destination_run_id,
      r.origin,
      r.schedule_id,
      r.job_id,
      r.inbound_id,
      r.provider,
      r.customer_id,
      r.object,
      r.kind,
      r.mode,
      r.write_mode,
      r.options,
      r.schema_name,
      r.status,
    ],
  );
  return rows[0]!;
}

export async function getRun(db: pg.Pool | pg.PoolClient, ctl: ControlDb, id: string): Promise<RunRecord> {
  const { rows } = await db.query<RunRecord>(`SELECT * FROM ${ctl.table('runs')} WHERE id = $1::uuid`, [id]);
  if (!rows[0]) throw new PglandError('not_found', `no run ${id}`, { context: { runId: id } });
  return rows[0];
}

/** Moves a run from one of `from` to `to`; false when it was in none of them (another request got there first). */
export async function moveRun(db: pg.Pool | pg.PoolClient, ctl: ControlDb, id: string, from: ControlStatus[], to: ControlStatus): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE ${ctl.table('runs')} SET status = $3 WHERE id = $1::uuid AND status = ANY ($2::text[])`, [id, from, to]);
  return rowCount === 1;
}

const FINISHED: ControlStatus[] = ['succeeded', 'partial', 'failed', 'cancelled'];

/**
 * Records a run's outcome, unless another process already did (two commits
 * of one run racing): then undefined, and the caller must not send its
 * webhooks again.
 */
export async function finishControlRun(
  db: pg.Pool | pg.PoolClient,
  ctl: ControlDb,
  id: string,
  outcome: {
    status: ControlStatus;
    counts: RunCounts | null;
    watermark: Date | null;
    error: string | null;
    destinationRunId?: string;
    evolution?: RunEvolution | null;
  },
): Promise<RunRecord | undefined> {
  const { rows } = await db.query<RunRecord>(
    `UPDATE ${ctl.table('runs')} SET status = $2, counts = $3, watermark = $4, error = $5, finished_at = now(),
            destination_run_id = coalesce($6::uuid, destination_run_id), evolution = coalesce($8::jsonb, evolution)
      WHERE id = $1::uuid AND (status <> ALL ($7::text[]) OR $2 = 'cancelled') RETURNING *`,
    [
      id,
      outcome.status,
      outcome.counts && countsView(outcome.counts),
      outcome.watermark,
      outcome.error,
      outcome.destinationRunId ?? null,
      FINISHED,
      outcome.evolution ? JSON.stringify(outcome.evolution) : null,
    ],
  );
  return rows[0];
}

export async function listControlRuns(
  ctl: ControlDb,
  filter: { destinationId?: string; status?: string; object?: string; provider?: string; customerId?: string; limit?: number },
): Promise<RunRecord[]> {
  const { rows } = await ctl.pool.query<RunRecord>(
    `SELECT * FROM ${ctl.table('runs')}
      WHERE ($1::uuid IS NULL OR destination_id = $1::uuid) AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR object = $3)
        AND ($5::text IS NULL OR provider = $5) AND ($6::text IS NULL OR customer_id = $6)
      ORDER BY created_at DESC, id LIMIT $4`,
    [filter.destinationId ?? null, filter.status ?? null, filter.object ?? null, filter.limit ?? 100, filter.provider ?? null, filter.customerId ?? null],
  );
  return rows;
}

/**
 * The webhooks a finished run sends: sync.complete (succeeded, partial) or
 * sync.error (failed, cancelled), and schema.evolved when the landed table
 * was created or changed (the run's stored evolution report).
 */
export function runEvents(r: RunRecord): OutboundEvent[] {
  const data = {
    run_id: r.id,
    destination_run_id: r.destination_run_id,
    destination_id: r.destination_id,
    origin: r.origin,
    schedule_id: r.schedule_id,
    inbound_id: r.inbound_id,
    tenant: { provider: r.provider, customer_id: r.customer_id },
    provider: r.provider,
    customer_id: r.customer_id,
    object: r.object,
    mode: r.mode,
    write: r.write_mode,
    status: r.status,
    counts: r.counts,
    watermark: r.watermark,
    error: r.error,
  };
  const events: OutboundEvent[] = [];
  const complete = r.status === 'succeeded' || r.status === 'partial';
  events.push({ type: complete ? 'sync.complete' : 'sync.error', destinationId: r.destination_id, data });
  const ev = r.evolution;
  if (ev) {
    events.push({
      type: 'schema.evolved',
      destinationId: r.destination_id,
      data: {
        run_id: r.id,
        destination_id: r.destination_id,
        tenant: { provider: r.provider, customer_id: r.customer_id },
        object: r.object,
        table: ev.table,
        schema: ev.schema,
        change: ev.change,
        reasons: ev.reasons,
        not_restored: ev.not_restored,
        problems: ev.problems,
        full_refresh_required: ev.full_refresh_required,
      },
    });
  }
  return events;
}
