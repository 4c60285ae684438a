import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.js';
import * as S from '../http/schemas.js';

const tags = ['operations'];

/** Liveness, readiness, Prometheus metrics and the OpenAPI document: no token needed. */
export function opsRoutes(app: FastifyInstance, ctx: ServiceContext, openapi: () => Record<string, unknown>): void {
  app.get('/healthz', { config: { public: true }, schema: { summary: 'Liveness: the process answers', tags, response: { 200: S.health } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: { summary: 'Readiness: the control database answers and the service is not shutting down', tags, response: { 200: S.health, 503: S.health } },
    },
    async (_req, reply) => {
      const checks = await ctx.readiness();
      const ok = Object.values(checks).every((v) => v === 'ok');
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
    },
  );

  app.get(
    '/metrics',
    { config: { public: true }, schema: { summary: 'Prometheus metrics', tags, produces: 'text/plain', response: { 200: { type: 'string' } } } },
    async (_req, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );

  let doc: Record<string, unknown> | undefined;
  app.get(
    '/openapi.json',
    {
      config: { public: true },
      schema: { summary: "This API's OpenAPI 3.1 description", tags, response: { 200: { type: 'object', additionalProperties: true } } },
    },
    async () => (doc ??= openapi()),
  );
}
