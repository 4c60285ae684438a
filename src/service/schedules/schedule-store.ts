import { randomUUID } from 'node:crypto';
import cronParser from 'cron-parser';
import { checkDeclared, resolveObject, type DeclaredSchema } from '../../catalog/declared.js';
import type { ObjectKind } from '../../catalog/definition.js';
import { PglandError } from '../../errors.js';
import type { SyncMode } from '../../load/runs.js';
import type { WriteMode } from '../../merge/merge.js';
import type { ControlDb } from '../control/control-db.js';
import { writeModeOf, type RunTarget } from '../runs/control-runs.js';
import type { SecretBox } from '../control/secrets.js';
import { keepMarkedPostgres } from './pg-import.js';
import { restoreMarked } from '../outbound/redact-url.js';
import { checkSource, redactSource, type SourceConfig, type SourcePolicy } from './sources.js';

/** A cron schedule for one (destination, tenant, object) and the source it reads. */
export interface ScheduleRecord {
  id: string;
  destination_id: string;
  provider: string;
  customer_id: string;
  object: string;
  kind: ObjectKind;
  mode: SyncMode;
  write_mode: WriteMode;
  options: { match_column?: string; ignore_deletes?: boolean; declared?: DeclaredSchema };
  cron: string;
  timezone: string;
  source: string;
  source_kind: SourceConfig['type'];
  timeout_seconds: number;
  enabled: boolean;
  last_fired_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleInput extends RunTarget {
  cron: string;
  timezone?: string;
  timeout_seconds?: number;
  enabled?: boolean;
  source: SourceConfig;
}

/** The next time the cron fires after `after`, or throws config_invalid naming the field. */
export function nextFire(cron: string, timezone: string, after: Date): Date {
  try {
    return cronParser.parseExpression(cron, { tz: timezone, currentDate: after }).next().toDate();
  } catch (err) {
    throw new PglandError('config_invalid', `cron "${cron.slice(0, 100)}" (timezone ${timezone.slice(0, 60)}): ${(err as Error).message}`, {
      hint: 'five fields (minute hour day month weekday) or six (seconds first), e.g. "*/15 * * * *"; an IANA timezone such as Europe/Paris',
    });
  }
}

/** The latest slot of the cron at or before `now`. */
export function lastSlot(cron: string, timezone: string, now: Date): Date {
  // prev() is strictly before currentDate: step a millisecond past now so a slot exactly at now counts.
  return cronParser
    .parseExpression(cron, { tz: timezone, currentDate: new Date(now.getTime() + 1) })
    .prev()
    .toDate();
}

export class ScheduleStore {
  constructor(
    private readonly ctl: ControlDb,
    private readonly box: SecretBox,
    /** What sources may do on this process: checked when a schedule is saved, and again when it runs. */
    readonly policy: SourcePolicy,
  ) {}

  /** The source with its secrets, for the worker. */
  source(r: ScheduleRecord): SourceConfig {
    return JSON.parse(this.box.open(r.source, `schedule:${r.id}`)) as SourceConfig;
  }

  view(r: ScheduleRecord, now = new Date()): Record<string, unknown> {
    const { source: _sealed, source_kind: _kind, write_mode, options, last_fired_at: _lf, ...rest } = r;
    return {
      ...rest,
      write: write_mode,
      match_column: options.match_column ?? 'id',
      ignore_deletes: options.ignore_deletes ?? false,
      // Read back whole, so that a client can GET, change one field and PUT.
      ...(options.declared ? { declared: options.declared } : {}),
      source: redactSource(this.source(r)),
      next_run_at: r.enabled ? nextFire(r.cron, r.timezone, now) : null,
    };
  }

  private fields(id: string, input: ScheduleInput): unknown[] {
    const kind = input.kind ?? 'common';
    resolveObject({ kind, object: input.object, provider: input.provider, ...(input.declared ? { declared: input.declared } : {}) });
    // The declaration is kept with the schedule, as jsonb.
    if (input.declared) checkDeclared(input.object, input.declared as Record<string, unknown>, { storable: true });
    const timezone = input.timezone ?? 'UTC';
    nextFire(input.cron, timezone, new Date());
    checkSource(input.source, this.policy);
    const mode = input.mode ?? 'incremental';
    const { write, ignoreDeletes } = writeModeOf(mode, input.write, input.ignore_deletes);
    const options = {
      match_column: input.match_column ?? 'id',
      ignore_deletes: ignoreDeletes,
      ...(input.declared ? { declared: input.declared } : {}),
    };
    return [
      id,
      input.destination_id,
      input.provider,
      input.customer_id,
      input.object,
      kind,
      mode,
      write,
      options,
      input.cron,
      timezone,
      this.box.seal(JSON.stringify(input.source), `schedule:${id}`),
      input.source.type,
      input.timeout_seconds ?? 3600,
      input.enabled ?? true,
    ];
  }

  async create(input: ScheduleInput): Promise<ScheduleRecord> {
    const id = randomUUID();
    try {
      const { rows } = await this.ctl.pool.query<ScheduleRecord>(
        `INSERT INTO ${this.ctl.table('schedules')}
           (id, destination_id, provider, customer_id, object, kind, mode, write_mode, options, cron, timezone, source, source_kind, timeout_seconds, enabled, last_fired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now()) RETURNING *`,
        this.fields(id, input),
      );
      return rows[0]!;
    } catch (err) {
      throw conflict(err, input);
    }
  }

  /** Replaces a schedule (its source too); header and environment values, and URL query parameters, sent as "[set]" keep their stored values. */
  async update(id: string, input: ScheduleInput): Promise<ScheduleRecord> {
    input = { ...input, source: keepMarked(input.source, this.source(await this.get(id))) };
    try {
      const { rows } = await this.ctl.pool.query<ScheduleRecord>(
        `UPDATE ${this.ctl.table('schedules')} SET
           destination_id = $2, provider = $3, customer_id = $4, object = $5, kind = $6, mode = $7, write_mode = $8, options = $9,
           cron = $10, timezone = $11, source = $12, source_kind = $13, timeout_seconds = $14, enabled = $15,
           last_fired_at = greatest(last_fired_at, now()), updated_at = now()
         WHERE id = $1 RETURNING *`,
        this.fields(id, input),
      );
      return rows[0]!;
    } catch (err) {
      throw conflict(err, input);
    }
  }

  async get(id: string): Promise<ScheduleRecord> {
    const { rows } = await this.ctl.pool.query<ScheduleRecord>(`SELECT * FROM ${this.ctl.table('schedules')} WHERE id = $1::uuid`, [id]);
    if (!rows[0]) throw new PglandError('not_found', `no schedule ${id}`);
    return rows[0];
  }

  async find(id: string): Promise<ScheduleRecord | undefined> {
    const { rows } = await this.ctl.pool.query<ScheduleRecord>(`SELECT * FROM ${this.ctl.table('schedules')} WHERE id = $1::uuid`, [id]);
    return rows[0];
  }

  async list(): Promise<ScheduleRecord[]> {
    const { rows } = await this.ctl.pool.query<ScheduleRecord>(`SELECT * FROM ${this.ctl.table('schedules')} ORDER BY created_at, id`);
    return rows;
  }

  async delete(id: string): Promise<void> {
    const { rowCount } = await this.ctl.pool.query(`DELETE FROM ${this.ctl.table('schedules')} WHERE id = $1::uuid`, [id]);
    if (!rowCount) throw new PglandError('not_found', `no schedule ${id}`);
  }
}

function keepMarked(next: SourceConfig, stored: SourceConfig): SourceConfig {
  if (next.type === 'postgres') return keepMarkedPostgres(next, stored.type === 'postgres' ? stored : undefined);
  const fill = (values: Record<string, string> | undefined, old: Record<string, string> | undefined, what: string): Record<string, string> | undefined => {
    if (!values) return values;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      if (v !== '[set]') out[k] = v;
      else if (old?.[k] !== undefined) out[k] = old[k];
      else throw new PglandError('config_invalid', `source.${what}.${k}: "[set]" stands for a stored value, and none is stored`);
    }
    return out;
  };
  if (next.type === 'url') {
    const headers = fill(next.headers, stored.type === 'url' ? stored.headers : undefined, 'headers');
    const url = restoreMarked(next.url, stored.type === 'url' ? stored.url : '', 'source.url');
    return { ...next, url, ...(headers ? { headers } : {}) };
  }
  const env = fill(next.env, stored.type === 'command' ? stored.env : undefined, 'env');
  return { ...next, ...(env ? { env } : {}) };
}

function conflict(err: unknown, input: ScheduleInput): unknown {
  const code = (err as { code?: string }).code;
  if (code === '23505') {
    return new PglandError('conflict', `a schedule for ${input.provider}/${input.customer_id}/${input.object} on this destination exists`, {
      hint: 'update that schedule instead',
      cause: err,
    });
  }
  if (code === '23503') return new PglandError('not_found', `no destination ${input.destination_id}`, { cause: err });
  return err;
}
