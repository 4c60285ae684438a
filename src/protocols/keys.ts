import type { ObjectDef } from '../catalog/definition.js';
import { PGLAND_COLUMNS as P } from '../catalog/definition.js';
import { PglandError } from '../errors.js';
import type { LoaderContext } from '../load/loader.js';
import { claimTable } from '../schema/evolve.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';

/*
 * A landed row's id is made of the stream's key properties' values
 * (envelope.ts). When a later sync keys the stream by other properties (`id`,
 * then `email`), the same record gets another id and lands a second time,
 * beside its old row. pgland refuses that: every keyed run records its key
 * properties (the run's options), and a stream whose keys differ from the
 * last recorded ones, while the tenant still has rows in the table, stops
 * with an error that says how to re-key.
 */

export interface KeyCheck {
  def: ObjectDef;
  provider: string;
  customerId: string;
  /** The stream as the protocol names it, for the message. */
  stream: string;
  keys: string[][];
}

const label = (keys: readonly (readonly string[])[]): string => keys.map((k) => `"${k.join('.')}"`).join(', ');

/** Throws `key_changed` when the stream's key differs from the one its landed rows were keyed by. */
export async function refuseChangedKeys(ctx: LoaderContext, c: KeyCheck): Promise<void> {
  const { pool, schema } = ctx;
  const def = await claimTable(pool, schema, c.def);
  const last = await pool.query<{ keys: string[][] }>(
    `SELECT options->'key_properties' AS keys FROM ${qualify(schema, '_pgland_runs')}
      WHERE provider = $1 AND customer_id = $2 AND object = $3 AND table_name = $4
        AND options ? 'key_properties' AND status IN ('succeeded', 'partial')
      ORDER BY started_at DESC LIMIT 1`,
    [c.provider, c.customerId, def.object, def.table],
  );
  const before = last.rows[0]?.keys;
  if (!before || JSON.stringify(before) === JSON.stringify(c.keys)) return;
  const exists = await pool.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualify(schema, def.table)]);
  if (!exists.rows[0]!.ok) return;
  const landed = await pool.query(`SELECT 1 FROM ${qualify(schema, def.table)} WHERE ${q(P.provider)} = $1 AND ${q(P.customerId)} = $2 LIMIT 1`, [
    c.provider,
    c.customerId,
  ]);
  if (landed.rowCount === 0) return;
  throw new PglandError(
    'key_changed',
    `stream "${c.stream}" is now keyed by ${label(c.keys)}, but its rows in ${schema}.${def.table} were landed keyed by ${label(before)}: landing it would keep every record twice`,
    {
      hint:
        `to re-key, delete this tenant's rows (DELETE FROM ${qualify(schema, def.table)} WHERE ${q(P.provider)} = '${c.provider.replace(/'/g, "''")}' AND ${q(P.customerId)} = '${c.customerId.replace(/'/g, "''")}') ` +
        'and run a full sync of the stream; or have the tap send the old key properties again',
      context: { stream: c.stream, table: def.table },
    },
  );
}
