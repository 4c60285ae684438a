import type { HttpApp } from '../http/server.js';
import type { ServiceContext } from '../context.js';
import * as S from '../http/schemas.js';

const tags = ['schedules'];

/** Cron schedules per (destination, tenant, object), run as jobs by workers. */
export function scheduleRoutes(app: HttpApp, ctx: ServiceContext): void {
  const store = ctx.scheduler.schedules;
  app.post(
    '/schedules',
    {
      schema: {
        summary: "Schedule an object's sync",
        description:
          "At each cron slot a worker reads the source (a command's stdout, or a URL, serving NDJSON) and lands it. One run per destination, tenant and object at a time.",
        tags,
        body: S.scheduleBody,
        response: { 201: S.schedule, 400: S.errorBody, 404: S.errorBody, 409: S.errorBody },
      },
    },
    async (req, reply) => reply.code(201).send(store.view(await store.create(req.body))),
  );
  app.get(
    '/schedules',
    { schema: { summary: 'List schedules', tags, response: { 200: { type: 'object', properties: { schedules: { type: 'array', items: S.schedule } } } } } },
    async () => ({ schedules: (await store.list()).map((s) => store.view(s)) }),
  );
  app.get(
    '/schedules/:id',
    { schema: { summary: 'Read a schedule', tags, params: S.idParams, response: { 200: S.schedule, 404: S.errorBody } } },
    async (req) => store.view(await store.get(req.params.id)),
  );
  app.put(
    '/schedules/:id',
    {
      schema: {
        summary: 'Replace a schedule',
        tags,
        params: S.idParams,
        body: S.scheduleBody,
        response: { 200: S.schedule, 400: S.errorBody, 404: S.errorBody },
      },
    },
    async (req) => store.view(await store.update(req.params.id, req.body)),
  );
  app.delete(
    '/schedules/:id',
    { schema: { summary: 'Delete a schedule', tags, params: S.idParams, response: { 204: { description: 'Deleted' }, 404: S.errorBody } } },
    async (req, reply) => {
      await store.delete(req.params.id);
      return reply.code(204).send();
    },
  );
  app.post(
    '/schedules/:id/run',
    {
      schema: {
        summary: 'Run a schedule now',
        description: 'Queues a job at once, beside the cron slots. queued=false when pg-boss refused it.',
        tags,
        params: S.idParams,
        response: { 202: S.job, 404: S.errorBody },
      },
    },
    async (req, reply) => {
      const jobId = await ctx.scheduler.trigger(req.params.id);
      return reply.code(202).send({ job_id: jobId, queued: jobId !== null });
    },
  );
  app.get(
    '/jobs/dead-letters',
    {
      schema: {
        summary: 'Runs that kept failing (scheduled or asked for by a sync.requested), newest first',
        description: 'Each with what it ran, its attempts and its last error. Retry one with POST /jobs/dead-letters/{id}/retry, drop it with DELETE.',
        tags,
        response: { 200: { type: 'object', properties: { jobs: { type: 'array', items: S.deadLetter } } } },
      },
    },
    async () => ({ jobs: await ctx.scheduler.deadLetters() }),
  );
  app.post(
    '/jobs/dead-letters/:id/retry',
    {
      schema: {
        summary: 'Run a dead letter again',
        description: 'Queues its run again (with a fresh set of retries) and removes the dead letter, in one transaction.',
        tags,
        params: S.idParams,
        response: { 202: S.job, 404: S.errorBody },
      },
    },
    async (req, reply) => reply.code(202).send({ job_id: await ctx.scheduler.retryDeadLetter(req.params.id), queued: true }),
  );
  app.delete(
    '/jobs/dead-letters/:id',
    {
      schema: {
        summary: 'Drop a dead letter',
        description: 'Its run is not retried.',
        tags,
        params: S.idParams,
        response: { 204: { type: 'null' }, 404: S.errorBody },
      },
    },
    async (req, reply) => {
      await ctx.scheduler.deleteDeadLetter(req.params.id);
      return reply.code(204).send();
    },
  );
}
