import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { ObjectLease } from '../load/lease.js';
import { finishRunSql, insertRunSql } from '../load/runs.js';
import type { DeleteMode, SqlQuery } from '../merge/merge.js';
import { PGLAND_VERSION } from '../package.js';
import { claimTable, evolveInTransaction } from '../schema/evolve.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { begin } from '../sql/transaction.js';

/*
 * Versions and generations (docs/protocols.md): every landed row of a protocol
 * stream carries the version (Singer ACTIVATE_VERSION) or generation (Airbyte
 * refreshes) it was last delivered with, in a column of its own. Retiring a
 * version deletes, soft or hard per delete_mode, the tenant's rows that were
 * not delivered with a recent enough one. It is one statement in one
 * transaction, under the object's lease, and it is recorded as a run.
 */

/** Singer: the version a row was last delivered with (the name Singer's SQL targets use). */
export const SINGER_VERSION_COLUMN = '_sdc_table_version';
/** Airbyte: the generation a row was last delivered with (the name Airbyte's destinations use). */
export const AIRBYTE_GENERATION_COLUMN = '_airbyte_generation_id';
/** Airbyte: the record's `meta` as sent (the changes the source made to it), as Airbyte's destinations keep it. */
export const AIRBYTE_META_COLUMN = '_airbyte_meta';

export interface RetireRequest {
  def: ObjectDef;
  provider: string;
  customerId: string;
  column: string;
  /** Rows whose version is below this, or NULL, are retired. */
  below: number;
  /** Rows whose version is above this are retired too (left behind by a synthetic generation). */
  above?: number;
  deleteMode: DeleteMode;
}

/** The retiring statement; the run id is recorded on soft-deleted rows. */
export function retireSql(schema: string, r: RetireRequest, runId: string): SqlQuery {
  const values: unknown[] = [r.provider, r.customerId];
  const param = (v: unknown, cast: string): string => {
    values.push(v);
    return `$${values.length}::${cast}`;
  };
  const col = `landed.${q(r.column)}`;
  const above = r.above === undefined ? '' : ` OR ${col} > ${param(String(r.above), 'bigint')}`;
  const stale = `(${col} IS NULL OR ${col} < ${param(String(r.below), 'bigint')}${above})`;
  const tenant = `landed.${q(P.provider)} = $1::text AND landed.${q(P.customerId)} = $2::text`;
  const table = qualify(schema, r.def.table);
  const text =
    r.deleteMode === 'hard'
      ? `DELETE FROM ${table} AS landed WHERE ${tenant} AND ${stale}`
      : `UPDATE ${table} AS landed SET
           ${q(P.isDeleted)} = true, ${q(P.deletedAt)} = now(), ${q(P.landedAt)} = now(), ${q(P.runId)} = ${param(runId, 'uuid')}
         WHERE ${tenant} AND NOT landed.${q(P.isDeleted)} AND ${stale}`;
  return { text, values };
}

/**
 * Retires the rows older than a version; returns how many were deleted.
 * Nothing happens when the table does not exist (nothing was ever landed).
 */
export async function retireOlder(
  pool: pg.Pool,
  schema: string,
  request: RetireRequest,
  opts: { lockTimeoutMs: number; protocol: string },
): Promise<{ runId: string; table: string; deleted: number } | undefined> {
  const client = await pool.connect();
  const key = { schema, provider: request.provider, customerId: request.customerId, object: request.def.object };
  let lease: ObjectLease | undefined;
  try {
    // The table the loader lands this object in (another one when two objects' names normalise alike).
    const def = await claimTable(client, schema, request.def);
    const r = { ...request, def };
    const exists = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualify(schema, def.table)]);
    if (!exists.rows[0]!.ok) return undefined;
    const runId = randomUUID();
    lease = await ObjectLease.take(pool, key, runId, opts.lockTimeoutMs);
    await lease.bind(client);
    const sql = retireSql(schema, r, runId);
    await begin(client);
    try {
      await client.query(
        insertRunSql(schema, {
          runId,
          provider: r.provider,
          customerId: r.customerId,
          object: def.object,
          objectKind: def.kind,
          table: def.table,
          mode: 'full',
          writeMode: 'delete',
          version: PGLAND_VERSION,
          options: { protocol: opts.protocol, retire: { column: r.column, below: r.below, above: r.above ?? null }, delete_mode: r.deleteMode },
        }),
      );
      // A table landed before by something else may lack the version column: evolve it first.
      const evolved = await evolveInTransaction(client, schema, def, runId);
      const result = await client.query(sql);
      const deleted = result.rowCount ?? 0;
      await client.query(`UPDATE ${qualify(schema, '_pgland_runs')} SET rows_deleted = $2 WHERE run_id = $1::uuid`, [runId, deleted]);
      await client.query(finishRunSql(schema, runId, evolved.problems > 0 ? 'partial' : 'succeeded', null));
      await lease.fence(client);
      await client.query('COMMIT');
      return { runId, table: def.table, deleted };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
    await lease?.release();
  }
}
