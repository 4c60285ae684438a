import type { ControlDb } from '../control/control-db.js';
import type { DestinationPools } from '../destinations/pools.js';
import { getRun } from '../runs/control-runs.js';
import { qualify } from '../../sql/ident.js';

/**
 * What a run left behind besides its counters, for the console and anyone
 * reading a run: its rejects and problems (kept in the destination's
 * _pgland_rejects and _pgland_problems, docs/landed-tables.md), a page at a
 * time, and the webhooks it sent (the outbox keeps each message's body).
 */
export interface Page<T> {
  total: number;
  offset: number;
  limit: number;
  items: T[];
}

export interface RejectRow {
  line_number: number;
  record_id: string | null;
  reason: string;
  raw_text: string;
  rejected_at: Date;
}

export interface ProblemRow {
  line_number: number;
  record_id: string;
  field: string;
  column_name: string;
  reason: string;
  value_excerpt: string | null;
  noted_at: Date;
}

/** The first characters of a rejected line shown in a page (the table keeps up to 64 KiB). */
const RAW_EXCERPT = 2000;

function empty<T>(offset: number, limit: number): Page<T> {
  return { total: 0, offset, limit, items: [] };
}

/**
 * A page of one of a run's per-line tables in the destination, in input
 * order; empty while the run has not reached the destination yet. The table
 * and columns are constants of this file, never the caller's.
 */
async function pageOf<T>(
  ctl: ControlDb,
  pools: DestinationPools,
  id: string,
  table: '_pgland_rejects' | '_pgland_problems',
  columns: string,
  page: { offset: number; limit: number },
): Promise<Page<T>> {
  const run = await getRun(ctl.pool, ctl, id);
  if (!run.destination_id || !run.destination_run_id) return empty(page.offset, page.limit);
  const dest = await pools.get(run.destination_id);
  const from = qualify(run.schema_name, table);
  const [{ rows: count }, { rows }] = await Promise.all([
    dest.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${from} WHERE run_id = $1::uuid`, [run.destination_run_id]),
    dest.pool.query<T & object>(
      `SELECT line_number::float8 AS line_number, ${columns} FROM ${from} WHERE run_id = $1::uuid ORDER BY line_number, ctid LIMIT $2 OFFSET $3`,
      [run.destination_run_id, page.limit, page.offset],
    ),
  ]);
  return { total: Number(count[0]?.n ?? 0), ...page, items: rows };
}

/** A page of a run's rejects: input lines that could not land at all. */
export function runRejects(ctl: ControlDb, pools: DestinationPools, id: string, page: { offset: number; limit: number }): Promise<Page<RejectRow>> {
  return pageOf(ctl, pools, id, '_pgland_rejects', `record_id, reason, left(raw_text, ${RAW_EXCERPT}) AS raw_text, rejected_at`, page);
}

/** A page of a run's problems: values that did not fit their column (the record landed). */
export function runProblems(ctl: ControlDb, pools: DestinationPools, id: string, page: { offset: number; limit: number }): Promise<Page<ProblemRow>> {
  return pageOf(ctl, pools, id, '_pgland_problems', 'record_id, field, column_name, reason, value_excerpt, noted_at', page);
}

export interface RunWebhook {
  message_id: string;
  event_type: string;
  created_at: Date;
  /** The event's data as it was sent (the schema.evolved one carries the evolution report). */
  data: unknown;
  deliveries: { id: string; endpoint_id: string; status: string; attempts: number; last_error: string | null; delivered_at: Date | null }[];
}

/**
 * The webhooks a run sent, oldest first, with their deliveries. The outbox
 * keeps a message only when some endpoint wanted it, so a run finished while
 * no endpoint listened has none.
 */
export async function runWebhooks(ctl: ControlDb, id: string): Promise<RunWebhook[]> {
  await getRun(ctl.pool, ctl, id);
  const { rows } = await ctl.pool.query<RunWebhook>(
    `SELECT m.id AS message_id, m.event_type, m.created_at, (m.body::jsonb) -> 'data' AS data,
            coalesce(json_agg(json_build_object('id', d.id, 'endpoint_id', d.endpoint_id, 'status', d.status, 'attempts', d.attempts,
                                                'last_error', d.last_error, 'delivered_at', d.delivered_at) ORDER BY d.created_at)
                     FILTER (WHERE d.id IS NOT NULL), '[]') AS deliveries
       FROM ${ctl.table('webhook_messages')} m
       LEFT JOIN ${ctl.table('webhook_deliveries')} d ON d.message_id = m.id
      -- strpos first: only the bodies that mention the id are parsed (a scan of the outbox either way).
      WHERE strpos(m.body, $1) > 0 AND (m.body::jsonb) -> 'data' ->> 'run_id' = $1
      GROUP BY m.id ORDER BY m.created_at, m.id`,
    [id],
  );
  return rows;
}
