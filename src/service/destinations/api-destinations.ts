import type { HttpApp } from '../http/server.js';
import { runCheck } from '../../connection/check.js';
import type { ServiceContext } from '../context.js';
import * as S from '../http/schemas.js';

const tags = ['destinations'];

/** Destinations: create, read, update, test (the connection check), delete. */
export function destinationRoutes(app: HttpApp, ctx: ServiceContext): void {
  app.post(
    '/destinations',
    { schema: { summary: 'Configure a destination', tags, body: S.destinationBody, response: { 201: S.destination, 400: S.errorBody, 409: S.errorBody } } },
    async (req, reply) => {
      const view = await ctx.destinations.create(req.body);
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/destinations',
    {
      schema: {
        summary: 'List destinations',
        tags,
        response: { 200: { type: 'object', properties: { destinations: { type: 'array', items: S.destination } } } },
      },
    },
    async () => ({ destinations: await ctx.destinations.list() }),
  );

  app.get(
    '/destinations/:id',
    { schema: { summary: 'Read a destination (secrets read "[set]")', tags, params: S.idParams, response: { 200: S.destination, 404: S.errorBody } } },
    async (req) => ctx.destinations.get(req.params.id),
  );

  app.put(
    '/destinations/:id',
    {
      schema: {
        summary: "Replace a destination's config",
        description: 'A secret sent as "[set]" keeps its stored value; a secret left out is removed.',
        tags,
        params: S.idParams,
        body: S.destinationUpdateBody,
        response: { 200: S.destination, 400: S.errorBody, 404: S.errorBody, 409: S.errorBody },
      },
    },
    async (req) => {
      const { id } = req.params;
      const view = await ctx.destinations.update(id, req.body);
      await ctx.pools.forget(id);
      return view;
    },
  );

  app.delete(
    '/destinations/:id',
    {
      schema: {
        summary: 'Delete a destination (not its landed data)',
        tags,
        params: S.idParams,
        response: { 204: { description: 'Deleted' }, 404: S.errorBody, 409: S.errorBody },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      await ctx.destinations.delete(id);
      await ctx.pools.forget(id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/destinations/:id/test',
    {
      schema: {
        summary: 'Test the connection step by step (pgland check)',
        description: 'Tunnel, reach, TLS, login, database, version, schema, grants, a write probe that is rolled back. 200 with ok=false when a step fails.',
        tags,
        params: S.idParams,
        response: { 200: S.checkReport, 404: S.errorBody },
      },
    },
    async (req) => runCheck(await ctx.destinations.resolved(req.params.id), { log: ctx.log }),
  );
}
