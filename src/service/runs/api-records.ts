import { Readable } from 'node:stream';
import type { HttpApp } from '../http/server.js';
import { resolveObject } from '../../catalog/declared.js';
import { PglandError } from '../../errors.js';
import { writeThrough } from '../../load/write-through.js';
import type { ServiceContext } from '../context.js';
import { countsView, evolutionOf, writeModeOf } from './control-runs.js';
import * as S from '../http/schemas.js';

/** The most records one write-through takes (its body is also at most 1 MiB). */
export const WRITE_THROUGH_MAX_RECORDS = 1000;

/** Write-through: a few records land at once, in one transaction (docs/service.md, "Write-through"). */
/** The small-set endpoints (write-through, into) refuse more than WRITE_THROUGH_MAX_RECORDS records, before any is read. */
export function checkRecordCount(count: number, what: string, hint: string): void {
  if (count > WRITE_THROUGH_MAX_RECORDS) {
    throw new PglandError('body_too_large', `${what} takes at most ${WRITE_THROUGH_MAX_RECORDS} records; this one has ${count}`, { hint });
  }
}

export function recordRoutes(app: HttpApp, ctx: ServiceContext): void {
  app.post(
    '/destinations/:id/records',
    {
      schema: {
        summary: 'Land a few records now (write-through)',
        description: `Lands up to ${WRITE_THROUGH_MAX_RECORDS} records (1 MiB) of one tenant and object in one transaction, with the merge rules of a run (newest wins: an older version changes nothing), and answers the counts. No watermark moves. 413 past the bounds; 409 object_locked when a run of the object holds it past lock_timeout_ms.`,
        tags: ['runs'],
        params: S.idParams,
        body: S.writeThroughBody,
        response: { 200: S.writeThroughResult, 400: S.errorBody, 404: S.errorBody, 409: S.errorBody, 413: S.errorBody, 502: S.errorBody },
      },
    },
    async (req) => {
      const { id } = req.params;
      const body = req.body;
      checkRecordCount(body.records.length, 'a write-through', 'send larger sets as a run: POST /runs, its batches, then commit');
      const kind = body.kind ?? 'common';
      const { write, ignoreDeletes } = writeModeOf('incremental', body.write, body.ignore_deletes);
      const def = resolveObject({ kind, object: body.object, provider: body.provider, ...(body.declared ? { declared: body.declared } : {}) });
      const dest = await ctx.pools.get(id);
      const stop = ctx.metrics.batchSeconds.startTimer({ step: 'write_through' });
      const result = await writeThrough(dest.pool, dest.config.lock_timeout_ms, {
        schema: dest.schema,
        def,
        provider: body.provider,
        customerId: body.customer_id,
        write,
        matchColumn: body.match_column ?? 'id',
        ignoreDeletes,
        deleteMode: dest.config.delete_mode,
        input: Readable.from([body.records.map((r) => JSON.stringify(r)).join('\n')]),
      });
      stop();
      ctx.metrics.landed(def.object, result.counts);
      const evolution = evolutionOf(dest.schema, { table: result.table, evolution: result.evolution });
      return { run_id: result.runId, status: result.status, table: result.table, counts: countsView(result.counts), evolution };
    },
  );
}
