import { Readable } from 'node:stream';
import type { HttpApp } from '../http/server.js';
import { mappingsFromObject } from '../../destination.js';
import { qualify } from '../../sql/ident.js';
import { PglandError } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import { countsView } from './control-runs.js';
import * as S from '../http/schemas.js';

/** The most records one load into a table over HTTP takes (its body is also at most 1 MiB, the API's bound for a JSON body). */
const INTO_MAX_RECORDS = 1000;

/** Refuses more than INTO_MAX_RECORDS records, before any is read. */
function checkRecordCount(count: number, what: string, hint: string): void {
  if (count > INTO_MAX_RECORDS) {
    throw new PglandError('body_too_large', `${what} takes at most ${INTO_MAX_RECORDS} records; this one has ${count}`, { hint });
  }
}

/**
 * A few records into the customer's own table at once: `pgland load --into`
 * over HTTP (docs/own-tables.md), bounded as a write-through is by default. Everything
 * is checked before a record is read (400 naming the column and the fix);
 * the destination's own role does the writes.
 */
export function intoRoutes(app: HttpApp, ctx: ServiceContext): void {
  app.post(
    '/destinations/:id/into',
    {
      schema: {
        summary: 'Land a few records into one of your own tables',
        description: `pgland load --into over HTTP: up to ${INTO_MAX_RECORDS} records (1 MiB) inserted, updated, upserted or deleted in an existing table through column mappings (docs/own-tables.md), batch by batch with the destination's batch_size. Checked before any record is read: 400 mapping_invalid or target_invalid, 502 grant_missing, each with the fix. Records the table refuses are answered as rejects naming the constraint; the others land. 413 past the bounds; 409 object_locked while another load into the table holds it past lock_timeout_ms.`,
        tags: ['runs'],
        params: S.idParams,
        body: S.intoBody,
        response: { 200: S.intoResult, 400: S.errorBody, 404: S.errorBody, 409: S.errorBody, 413: S.errorBody, 502: S.errorBody },
      },
    },
    async (req) => {
      const { id } = req.params;
      const body = req.body;
      checkRecordCount(body.records.length, 'a load into a table', `send the records in several requests of at most ${INTO_MAX_RECORDS}`);
      // Parsed before the destination is opened: a bad mapping costs no connection.
      const mappings = mappingsFromObject(body.map, 'body.map');
      const groups = body.groups && {
        table: body.groups.table,
        keyColumn: body.groups.key_column,
        nameColumn: body.groups.name_column,
        from: body.groups.from,
      };
      const dest = await ctx.pools.get(id);
      const stop = ctx.metrics.batchSeconds.startTimer({ step: 'into' });
      const result = await dest.loadInto({
        into: body.target,
        write: body.write,
        ...(body.match !== undefined ? { match: body.match } : {}),
        mappings,
        ...(groups ? { groups } : {}),
        ...(body.provider !== undefined ? { provider: body.provider } : {}),
        ...(body.customer_id !== undefined ? { customerId: body.customer_id } : {}),
        input: Readable.from([body.records.map((r) => JSON.stringify(r)).join('\n')]),
      });
      stop();
      if (result.error) throw result.error;
      const { rows: rejects } = result.counts.rejected
        ? await dest.pool.query<{ line: number; record_id: string | null; reason: string }>(
            `SELECT line_number::int AS line, record_id, reason FROM ${qualify(dest.schema, '_pgland_rejects')} WHERE run_id = $1::uuid ORDER BY line_number LIMIT $2`,
            [result.runId, INTO_MAX_RECORDS],
          )
        : { rows: [] };
      return {
        run_id: result.runId,
        status: result.status,
        table: result.table,
        counts: countsView(result.counts),
        ...(result.insertedId !== undefined ? { inserted_id: result.insertedId } : {}),
        ...(result.groups ? { groups: result.groups } : {}),
        rejects,
      };
    },
  );
}
