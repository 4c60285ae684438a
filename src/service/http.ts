import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { fastify, LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isRetryable } from '../connection/retry.js';
import { describeError, PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import { buildOpenApi, type RouteDoc } from './openapi.js';
import { COMPONENTS } from './schemas.js';
import { describeSchemaError } from './validation-errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No bearer token needed (health, metrics, the OpenAPI document, signed inbound webhooks). */
    public?: boolean;
    /** The body is streamed NDJSON (documented as application/x-ndjson). */
    ndjson?: boolean;
  }
}

/** HTTP status of each error code pgland's API answers with. */
const STATUS: Record<string, number> = {
  not_found: 404,
  config_invalid: 400,
  egress_refused: 400,
  unknown_object: 400,
  ssh_key_invalid: 400,
  input_failed: 400,
  mapping_invalid: 400,
  target_invalid: 400,
  grant_missing: 400,
  conflict: 409,
  run_closed: 409,
  object_locked: 409,
  batches_differ: 409,
  body_too_large: 413,
  body_timeout: 408,
  too_many_uploads: 429,
  too_many_open_runs: 429,
  unsupported_encoding: 415,
  unsupported_media_type: 415,
  unauthorized: 401,
  query_actions_disabled: 403,
  syntax_error: 400,
  read_only_query: 400,
  undefined_table: 400,
  undefined_column: 400,
  parameter_mismatch: 400,
  invalid_parameter: 400,
  result_too_large: 400,
};

/**
 * After a streamed body's route is done (or failed early), the rest of the
 * body is read and dropped, so the answer can go out on a healthy socket and
 * a gunzip in between stops working.
 */
export function settleBody(req: FastifyRequest): void {
  const body = req.body as Readable | undefined;
  if (body && body !== (req.raw as unknown) && typeof body.destroy === 'function') {
    req.raw.unpipe();
    body.destroy();
  }
  if (!req.raw.readableEnded) req.raw.resume();
}

/** Errors of the destination database or the way to it (src/connection/diagnose.ts, tunnel.ts): 502. */
const DESTINATION_FAILURE =
  /^(auth_failed|cert_auth_failed|client_cert_required|connect_|connection_|dns_|hba_|host_|permission_denied|query_timeout|server_starting|ssl_|tls_|too_many_connections|unknown_database|bastion_|tunnel_|schema_create_denied|schema_newer_than_pgland)/;

export function sendError(reply: FastifyReply, status: number, code: string, message: string, hint?: string): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...(hint ? { hint } : {}) } });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The fastify instance with what every route shares: bearer-token auth
 * (constant-time), errors as `{error: {code, message, hint}}`, every JSON
 * body validated against its route's schema (unknown keys refused, not
 * dropped), and NDJSON bodies passed through as a stream (gunzipped when
 * Content-Encoding is gzip), never buffered whole.
 */
/** The media types a streamed NDJSON body may be sent as. */
const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl'];

export function createHttp(options: { log: Logger; apiToken?: string; title: string; version: string; requestTimeoutMs?: number }): {
  app: FastifyInstance;
  openapi: () => Record<string, unknown>;
} {
  const app = fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // verbose: an error carries its schema, to name the keys an unknown one resembles.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, verbose: true } },
    bodyLimit: 1024 * 1024,
    forceCloseConnections: 'idle',
    // A backstop for every request: Node answers 408 and closes the socket
    // when the request (headers and body) has not arrived by then. Uploads
    // have finer timers of their own (limits.ts).
    ...(options.requestTimeoutMs ? { requestTimeout: options.requestTimeoutMs } : {}),
  });
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (route) => {
    if (route.method === 'HEAD' || (Array.isArray(route.method) && route.method.includes('HEAD'))) return;
    routes.push({ method: route.method, url: route.url, schema: (route.schema ?? {}) as Record<string, unknown>, config: route.config ?? {} });
  });

  const token = options.apiToken ? digest(options.apiToken) : undefined;
  app.addHook('onRequest', async (req, reply) => {
    if (!token || req.routeOptions.config.public) return;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? digest(header.slice(7)) : undefined;
    if (!given || !timingSafeEqual(given, token)) {
      return sendError(reply.header('www-authenticate', 'Bearer'), 401, 'unauthorized', 'a valid bearer token is required', 'send Authorization: Bearer <PGLAND_API_TOKEN>');
    }
  });

  // A streamed route refuses another body type before reading a byte: a JSON
  // or text body was once staged, then answered 500, so that a client's retry
  // staged it twice.
  app.addHook('onRequest', async (req, reply) => {
    if (!req.routeOptions.config.ndjson) return;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (NDJSON_TYPES.includes(type)) return;
    return sendError(
      reply.header('connection', 'close'),
      415,
      'unsupported_media_type',
      type === '' ? 'the batch has no Content-Type' : `Content-Type ${type.slice(0, 60)} is not accepted for a batch`,
      `send the records as NDJSON with Content-Type ${NDJSON_TYPES.join(' or ')}`,
    );
  });

  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, route: req.routeOptions.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl'], (req: FastifyRequest, payload: IncomingMessage, done) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'identity') return done(null, payload);
    if (encoding === 'gzip' || encoding === 'x-gzip') {
      // pipe, not pipeline: a bad gzip stream must fail the batch, not destroy
      // the request (the answer still has to go out on its socket).
      const gunzip = createGunzip();
      // The reader sees the error (a stream keeps it); this only keeps it from being "unhandled" before the reader starts.
      gunzip.on('error', () => undefined);
      payload.on('error', (err) => gunzip.destroy(err));
      payload.pipe(gunzip);
      return done(null, gunzip);
    }
    done(new PglandError('unsupported_encoding', `Content-Encoding ${encoding.slice(0, 40)} is not supported`, { hint: 'send identity or gzip' }), undefined);
  });

  app.setErrorHandler((err: FastifyError | PglandError | Error, req, reply) => {
    const fe = err as FastifyError;
    if (fe.validation) {
      const message = describeSchemaError(fe.validationContext ?? 'body', fe.validation as Parameters<typeof describeSchemaError>[1]) ?? fe.message;
      return sendError(reply, 400, 'invalid_request', message);
    }
    if (err instanceof PglandError) {
      const status = STATUS[err.code] ?? (DESTINATION_FAILURE.test(err.code) ? 502 : isRetryable(err) ? 503 : 500);
      if (status >= 500) req.log.error({ err: { message: err.message, code: err.code } }, 'request failed');
      const retryAfter = err.context.retryAfterSeconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      // The rest of a stalled body is not waited for: the socket goes with the answer.
      if (err.code === 'body_timeout') reply.header('connection', 'close');
      return sendError(reply, status, err.code, err.message, err.hint);
    }
    if ((err as { code?: string }).code === 'input_failed') return sendError(reply, 400, 'input_failed', err.message);
    if (typeof fe.statusCode === 'number' && fe.statusCode < 500) return sendError(reply, fe.statusCode, fe.code ?? 'bad_request', fe.message);
    if (isRetryable(err)) {
      req.log.warn({ err: { message: err.message } }, 'request failed on a transient error');
      return sendError(reply, 503, 'unavailable', describeError(err), 'a transient failure: retry the request');
    }
    req.log.error({ err: { message: err.message, code: (err as { code?: string }).code } }, 'request failed');
    return sendError(reply, 500, 'internal', describeError(err));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`));

  return { app, openapi: () => buildOpenApi(routes, { title: options.title, version: options.version }, COMPONENTS) };
}
