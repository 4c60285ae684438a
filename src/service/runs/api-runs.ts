import type { HttpApp } from '../http/server.js';
import type { StagedBatch } from '../../load/http-batch.js';
import type { ServiceContext } from '../context.js';
import { settleBody } from '../http/server.js';
import { listControlRuns, viewOf } from './control-runs.js';
import * as S from '../http/schemas.js';

const tags = ['runs'];

function batchView(runId: string, b: StagedBatch): Record<string, unknown> {
  return {
    run_id: runId,
    batch_no: b.batchNo,
    first_line: b.firstLine,
    last_line: b.lastLine,
    rows_read: b.rowsRead,
    records: b.records,
    rejected: b.rejected,
    problems: b.problems,
    already_staged: b.alreadyStaged,
  };
}

/** Runs over HTTP: open, stream batches, commit or abort (docs/service.md, "Ingest"). */
export function runRoutes(app: HttpApp, ctx: ServiceContext): void {
  app.post(
    '/runs',
    {
      schema: {
        summary: 'Open a run',
        description:
          'A run is one tenant and one object. Its batches are staged apart and land only when it is committed. 429 (with Retry-After) when the destination already has max_open_runs_per_destination runs open.',
        tags,
        body: S.openRunBody,
        response: { 201: S.run, 400: S.errorBody, 404: S.errorBody, 429: S.errorBody, 502: S.errorBody },
      },
    },
    async (req, reply) => reply.code(201).send(await ctx.ingest.open(req.body)),
  );

  app.get('/runs', { schema: { summary: 'List runs, newest first', tags, querystring: S.runQuery, response: { 200: S.runList } } }, async (req) => {
    const q = req.query;
    const rows = await listControlRuns(ctx.ctl, {
      ...(q.destination_id ? { destinationId: q.destination_id } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.object ? { object: q.object } : {}),
      ...(q.provider ? { provider: q.provider } : {}),
      ...(q.customer_id ? { customerId: q.customer_id } : {}),
      ...(q.limit ? { limit: q.limit } : {}),
    });
    return { runs: rows.map(viewOf) };
  });

  app.get('/runs/:id', { schema: { summary: 'Read a run', tags, params: S.idParams, response: { 200: S.run, 404: S.errorBody } } }, async (req) =>
    ctx.ingest.get(req.params.id),
  );

  const batchSchema = {
    tags,
    response: {
      200: S.stagedBatch,
      400: S.errorBody,
      404: S.errorBody,
      408: S.errorBody,
      409: S.errorBody,
      413: S.errorBody,
      415: S.errorBody,
      429: S.errorBody,
      502: S.errorBody,
    },
  };
  app.post(
    '/runs/:id/batches',
    {
      config: { ndjson: true },
      schema: {
        ...batchSchema,
        summary: 'Stage a batch',
        description:
          "The body is NDJSON records (gzip accepted), streamed into the run's held transaction (the process that holds the run) or its staging table, in one savepoint or transaction. Line numbers continue across batches. 415 before anything is read when the Content-Type is not application/x-ndjson or application/jsonl; 408 when the body stalls (body_idle_timeout_ms) or takes too long (upload_timeout_ms), nothing staged; 429 (with Retry-After) when the destination already has max_uploads_per_destination uploads in flight.",
        params: S.idParams,
      },
    },
    async (req) => {
      const { id } = req.params;
      try {
        // A streamed NDJSON body has no JSON Schema to type it: the content-type parser (http/server.ts) hands over the request, or its gunzip.
        return batchView(id, await ctx.ingest.stage(id, req.body as AsyncIterable<Buffer>));
      } finally {
        settleBody(req);
      }
    },
  );
  app.put(
    '/runs/:id/batches/:batch_no',
    {
      config: { ndjson: true },
      schema: {
        ...batchSchema,
        summary: 'Stage a numbered batch (idempotent)',
        description: "As POST, with the client's batch number: sending a number that is already staged again reads nothing and answers the first result.",
        params: S.batchParams,
      },
    },
    async (req) => {
      const { id, batch_no } = req.params;
      try {
        // A streamed NDJSON body has no JSON Schema to type it: the content-type parser (http/server.ts) hands over the request, or its gunzip.
        return batchView(id, await ctx.ingest.stage(id, req.body as AsyncIterable<Buffer>, batch_no));
      } finally {
        settleBody(req);
      }
    },
  );

  app.post(
    '/runs/:id/commit',
    {
      schema: {
        summary: 'Commit a run',
        description:
          'Checks that the batches staged are the ones the body names ({"batches": N} or their numbers; 409 batches_differ otherwise, nothing changes), lands everything staged or held in one transaction, then applies a full refresh\'s deletions and moves the watermark. A run held by another serve process is committed there (docs/service.md, "How a run is held"). 200 when the run succeeded or is partial, 422 when it failed (nothing landed), 409 when another run of the object holds its lock past lock_timeout_ms (the run stays open: commit again), 409 batches_lost naming batches a holder that is gone lost (send them again, then commit), 503 on a transient failure or when the holder did not answer in time (commit again).',
        tags,
        params: S.idParams,
        body: S.commitBody,
        response: { 200: S.run, 404: S.errorBody, 409: S.errorBody, 422: S.run, 502: S.errorBody, 503: S.errorBody },
      },
      // The body is optional: a commit without one does not check the batches.
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req, reply) => {
      const body = req.body;
      const view = await ctx.ingest.commit(req.params.id, body?.batches);
      return reply.code(view.status === 'failed' ? 422 : 200).send(view);
    },
  );

  app.post(
    '/runs/:id/abort',
    {
      schema: {
        summary: 'Abort a run',
        description: 'Drops what the run staged and records it as cancelled: nothing of it lands.',
        tags,
        params: S.idParams,
        response: { 200: S.run, 404: S.errorBody, 409: S.errorBody },
      },
    },
    async (req) => ctx.ingest.abort(req.params.id),
  );
}
