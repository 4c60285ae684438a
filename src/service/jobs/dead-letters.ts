import type pg from 'pg';
import { PglandError } from '../../errors.js';
import { qualify } from '../../sql/ident.js';
import type { ControlDb } from '../control/control-db.js';
import type { SyncJobData } from './job.js';

/** A run that kept failing, as the API shows it: what it ran, its last error, how many attempts it had. */
export interface DeadLetter {
  id: string;
  reason: SyncJobData['reason'] | null;
  schedule_id: string | null;
  inbound_id: string | null;
  destination_id: string | null;
  provider: string | null;
  customer_id: string | null;
  object: string | null;
  attempts: number;
  last_error: string | null;
  created_on: Date;
}

interface Row {
  id: string;
  data: SyncJobData | null;
  output: { message?: unknown } | null;
  retry_limit: number;
  created_on: Date;
}

/**
 * The failure pg-boss kept is the thrown error, serialized with its stack:
 * only its message is shown (a stack names the server's files).
 */
function lastError(output: Row['output']): string | null {
  return typeof output?.message === 'string' ? output.message.slice(0, 2000) : null;
}

/** The dead-letter job of a run that failed every attempt (pg-boss copies data, output and retry limit). */
function view(r: Row, target: { destination_id?: string; provider?: string; customer_id?: string; object?: string } | undefined): DeadLetter {
  return {
    id: r.id,
    reason: r.data?.reason ?? null,
    schedule_id: r.data?.schedule_id ?? null,
    inbound_id: r.data?.inbound_id ?? null,
    destination_id: target?.destination_id ?? null,
    provider: target?.provider ?? null,
    customer_id: target?.customer_id ?? null,
    object: target?.object ?? null,
    attempts: r.retry_limit + 1,
    last_error: lastError(r.output),
    created_on: r.created_on,
  };
}

/** `jobs`: pg-boss's schema and the dead-letter queue (scheduler.ts). */
export async function listDeadLetters(ctl: ControlDb, jobs: { schema: string; queue: string }, limit: number): Promise<DeadLetter[]> {
  const { rows } = await ctl.pool.query<
    Row & { s_destination_id: string | null; s_provider: string | null; s_customer_id: string | null; s_object: string | null }
  >(
    `SELECT j.id, j.data, j.output, j.retry_limit, j.created_on,
            s.destination_id AS s_destination_id, s.provider AS s_provider, s.customer_id AS s_customer_id, s.object AS s_object
       FROM ${qualify(jobs.schema, 'job')} j
       LEFT JOIN ${ctl.table('schedules')} s ON s.id::text = j.data->>'schedule_id'
      WHERE j.name = $1 ORDER BY j.created_on DESC LIMIT $2`,
    [jobs.queue, limit],
  );
  return rows.map((r) =>
    view(
      r,
      r.data?.request ??
        (r.s_destination_id ? { destination_id: r.s_destination_id, provider: r.s_provider!, customer_id: r.s_customer_id!, object: r.s_object! } : undefined),
    ),
  );
}

/** Removes a dead letter and answers its job data; not_found when there is none (or another request took it). */
export async function takeDeadLetter(client: pg.PoolClient, jobs: { schema: string; queue: string }, id: string): Promise<SyncJobData> {
  const { rows } = await client.query<{ data: SyncJobData }>(`DELETE FROM ${qualify(jobs.schema, 'job')} WHERE name = $1 AND id = $2::uuid RETURNING data`, [
    jobs.queue,
    id,
  ]);
  if (!rows[0]) throw new PglandError('not_found', `no dead letter ${id}`, { hint: 'GET /jobs/dead-letters lists them' });
  return rows[0].data;
}
