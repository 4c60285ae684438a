import type { HttpApp } from '../http/server.js';
import type { ServiceContext } from '../context.js';
import { sendError } from '../http/server.js';
import { listInbound, receiveInbound } from './inbound.js';
import { actOnInbound } from './sync-requests.js';
import { listAttempts, listDeliveries, redeliver } from './outbox.js';
import * as S from '../http/schemas.js';

const tags = ['webhooks'];

const REFUSED: Record<string, string> = {
  missing_headers: 'unsigned: webhook-id, webhook-timestamp and webhook-signature are required',
  bad_timestamp: 'webhook-timestamp is not Unix seconds',
  stale: 'webhook-timestamp is outside the 5 minute tolerance',
  bad_signature: 'the signature does not match',
  replayed: 'this webhook-id was already received',
  not_json: 'the body is not JSON',
  not_configured: 'no inbound webhook secret is configured (PGLAND_INBOUND_WEBHOOK_SECRET)',
};

/** Outbound endpoints, the outbox's deliveries and attempts, and the inbound receiver. */
export function webhookRoutes(app: HttpApp, ctx: ServiceContext): void {
  app.post(
    '/webhooks/endpoints',
    {
      schema: {
        summary: 'Add an endpoint for sync webhooks',
        description: "Events are signed per Standard Webhooks with the endpoint's secret (whsec_…), which is stored encrypted and never returned.",
        tags,
        body: S.endpointBody,
        response: { 201: S.endpoint, 400: S.errorBody, 404: S.errorBody },
      },
    },
    async (req, reply) => reply.code(201).send(await ctx.endpoints.create(req.body)),
  );
  app.get(
    '/webhooks/endpoints',
    { schema: { summary: 'List endpoints', tags, response: { 200: { type: 'object', properties: { endpoints: { type: 'array', items: S.endpoint } } } } } },
    async () => ({ endpoints: await ctx.endpoints.list() }),
  );
  app.get(
    '/webhooks/endpoints/:id',
    { schema: { summary: 'Read an endpoint', tags, params: S.idParams, response: { 200: S.endpoint, 404: S.errorBody } } },
    async (req) => ctx.endpoints.get(req.params.id),
  );
  app.delete(
    '/webhooks/endpoints/:id',
    {
      schema: {
        summary: 'Delete an endpoint and its pending deliveries',
        tags,
        params: S.idParams,
        response: { 204: { description: 'Deleted' }, 404: S.errorBody },
      },
    },
    async (req, reply) => {
      await ctx.endpoints.delete(req.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/webhooks/deliveries',
    {
      schema: {
        summary: 'List deliveries, newest first',
        tags,
        querystring: S.deliveryQuery,
        response: { 200: { type: 'object', properties: { deliveries: { type: 'array', items: S.delivery } } } },
      },
    },
    async (req) => {
      const q = req.query;
      return {
        deliveries: await listDeliveries(ctx.ctl, {
          ...(q.endpoint_id ? { endpointId: q.endpoint_id } : {}),
          ...(q.message_id ? { messageId: q.message_id } : {}),
          ...(q.status ? { status: q.status } : {}),
          ...(q.limit ? { limit: q.limit } : {}),
        }),
      };
    },
  );
  app.get(
    '/webhooks/deliveries/:id/attempts',
    {
      schema: {
        summary: "List a delivery's attempts",
        tags,
        params: S.idParams,
        response: { 200: { type: 'object', properties: { attempts: { type: 'array', items: S.attempt } } }, 404: S.errorBody },
      },
    },
    async (req) => ({ attempts: await listAttempts(ctx.ctl, req.params.id) }),
  );
  app.post(
    '/webhooks/deliveries/:id/redeliver',
    {
      schema: {
        summary: 'Send a delivery that gave up again (same webhook-id)',
        tags,
        params: S.idParams,
        response: { 202: { description: 'Queued' }, 409: S.errorBody },
      },
    },
    async (req, reply) => {
      await redeliver(ctx.ctl, req.params.id);
      ctx.sender.wake();
      return reply.code(202).send();
    },
  );

  app.get(
    '/webhooks/inbound',
    {
      schema: {
        summary: 'List inbound webhooks received, newest first, with what pgland did with each',
        tags,
        querystring: S.inboundQuery,
        response: { 200: { type: 'object', properties: { webhooks: { type: 'array', items: S.inboundEvent } } } },
      },
    },
    async (req) => ({ webhooks: await listInbound(ctx.ctl, req.query) }),
  );

  // The signature covers the exact bytes: this route reads its body raw, whatever its type.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.post(
      '/webhooks/inbound',
      {
        config: { public: true },
        schema: {
          summary: 'Receive a sync webhook from the platform',
          description:
            'Signed per Standard Webhooks with PGLAND_INBOUND_WEBHOOK_SECRET: webhook-id, webhook-timestamp (within 5 minutes), webhook-signature. An unsigned, stale, wrongly signed or replayed request gets 401 and changes nothing.',
          tags,
          // Verified by its signature, not by a schema (the bytes must stay as sent): documented only.
          docBody: S.inboundDocBody,
          response: { 200: S.inboundAnswer, 400: S.errorBody, 401: S.errorBody },
        },
      },
      async (req, reply) => {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const result = await receiveInbound(ctx.ctl, ctx.inboundKeys, req.headers, body);
        ctx.metrics.inboundWebhooks.inc({ result: result.accepted ? 'accepted' : result.reason! });
        if (result.reason === 'bad_payload') {
          req.log.warn({ reason: result.reason }, 'inbound webhook refused');
          return sendError(
            reply,
            'invalid_payload',
            `the webhook's JSON cannot be stored: ${result.problem}`,
            'remove NUL characters from keys; nest less deeply',
          );
        }
        if (!result.accepted) {
          req.log.warn({ reason: result.reason }, 'inbound webhook refused');
          return sendError(reply, 'webhook_refused', REFUSED[result.reason!] ?? 'refused');
        }
        const payload = JSON.parse(body.toString('utf8')) as unknown;
        const action = await actOnInbound(
          { ctl: ctx.ctl, box: ctx.box, destinations: ctx.destinations, scheduler: ctx.scheduler, digestKey: ctx.inboundKeys[0]! },
          result.id!,
          payload,
        );
        if (action.action !== 'ignored') req.log.info({ webhookId: result.id, ...action }, 'sync requested');
        ctx.events.emit('inbound', { id: result.id, payload });
        return { accepted: true, webhook_id: result.id, ...action };
      },
    );
  });
}
