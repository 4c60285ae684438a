import { Readable } from 'node:stream';
import type { HttpApp } from '../http/server.js';
import { resolveObject } from '../../catalog/declared.js';
import { writeThrough } from '../../load/write-through.js';
import type { ServiceContext } from '../context.js';
import { countsView, evolutionOf, writeModeOf } from './control-runs.js';
import * as S from '../http/schemas.js';
import { checkWriteThroughRecords, writeThroughBodyTooLarge, type WriteThroughLimits } from './write-through-limits.js';
import { UploadSlots } from './limits.js';

/** Write-through: a few records land at once, in one transaction (docs/service.md, "Write-through"). */
export function recordRoutes(app: HttpApp, ctx: ServiceContext, limits: WriteThroughLimits, maxInFlight: number): void {
  // A write-through's body is held whole, parsed, while it waits for a
  // connection: without a bound on how many are in flight, so is the
  // memory. Taken when the request's headers arrive, before its body is
  // read; freed when its connection's answer is done or the client is gone.
  const slots = new UploadSlots(maxInFlight, 'write-throughs', 'retry after the Retry-After seconds; send fewer at once');
  app.post(
    '/destinations/:id/records',
    {
      onRequest: async (req, reply) => {
        const free = slots.take((req.params as { id: string }).id);
        reply.raw.once('close', free);
      },
      // The route's own bound on its JSON body (other JSON bodies: 1 MiB), and its answer past it.
      bodyLimit: limits.maxBytes,
      config: { bodyTooLarge: (sent) => writeThroughBodyTooLarge(limits, sent) },
      schema: {
        summary: 'Land a few records now (write-through)',
        description: `Lands up to ${limits.maxRecords} records (a body of ${limits.maxBytes} bytes) of one tenant and object in one transaction, with the merge rules of a run (newest wins: an older version changes nothing), and answers the counts. No watermark moves. 413 past either bound, naming it (send a larger set as a run); 429 too_many_uploads (with Retry-After) when the destination already has max_uploads_per_destination write-throughs in flight in this process; 409 object_locked when a run of the object holds it past lock_timeout_ms.`,
        tags: ['runs'],
        params: S.idParams,
        body: S.writeThroughBody,
        response: { 200: S.writeThroughResult, 400: S.errorBody, 404: S.errorBody, 409: S.errorBody, 413: S.errorBody, 429: S.errorBody, 502: S.errorBody },
      },
    },
    async (req) => {
      const { id } = req.params;
      const body = req.body;
      checkWriteThroughRecords(body.records.length, limits);
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
