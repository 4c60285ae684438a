import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import {
  fastify,
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyTypeProvider,
  type RawServerDefault,
} from 'fastify';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import { AjvCompiler, type BuildCompilerFromPool } from '@fastify/ajv-compiler';
import { isRetryable } from '../../connection/retry.js';
import { ERROR_CODES } from '../../error-codes.js';
import { describeError, PglandError, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { buildOpenApi, type RouteDoc } from './openapi.js';
import { COMPONENTS } from './schemas.js';
import { describeSchemaError } from './validation-errors.js';
import { gunzipStream } from '../../input/decompress.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No bearer token needed (health, metrics, the OpenAPI document, signed inbound webhooks). */
    public?: boolean;
    /** The body is streamed NDJSON (documented as application/x-ndjson). */
    ndjson?: boolean;
    /** The answer when the body is past the route's bodyLimit: which limit, and what to send instead. */
    bodyTooLarge?: (sent: number | undefined) => PglandError;
  }
}

/**
 * After a streamed body's route is done (or failed early), the rest of the
 * body is read and dropped, so the answer can go out on a healthy socket and
 * a gunzip in between stops working.
 */
export function settleBody(req: FastifyRequest): void {
  // Any route's body: a streamed one is the stream the NDJSON parser handed over (no schema types it).
  const body = req.body as Readable | undefined;
  if (body && body !== (req.raw as unknown) && typeof body.destroy === 'function') {
    req.raw.unpipe();
    body.destroy();
  }
  if (!req.raw.readableEnded) req.raw.resume();
}

/**
 * The answer `{error: {code, message, hint}}`, with the code's status from
 * ERROR_CODES unless the caller gives another (a Fastify client error keeps
 * the status Fastify chose; a 500 code with a transient cause answers 503).
 */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string, hint?: string, status: number = ERROR_CODES[code].status): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...(hint ? { hint } : {}) } });
}

/** The code of a client error Fastify raised itself (a body too large, a bad Content-Type, JSON that does not parse). */
function clientErrorCode(status: number): ErrorCode {
  if (status === 413) return 'body_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 404) return 'not_found';
  return 'bad_request';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Types a request's body, params and querystring from the route's own JSON
 * Schemas (written `as const` in schemas.ts), so a schema and the type its
 * handler uses cannot drift apart. It is what
 * @fastify/type-provider-json-schema-to-ts declares, less the answers: they
 * stay untyped, as before (their schemas are plain records, and a 204's
 * `send()` would be asked for a payload).
 */
interface RequestSchemaTypes extends FastifyTypeProvider {
  validator: this['schema'] extends JSONSchema ? FromSchema<this['schema']> : unknown;
}

/** The app the API's routes are declared on. */
export type HttpApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, RequestSchemaTypes>;

/**
 * The fastify instance with what every route shares: bearer-token auth
 * (constant-time), errors as `{error: {code, message, hint}}`, every JSON
 * body validated against its route's schema (unknown keys refused, not
 * dropped), and NDJSON bodies passed through as a stream (gunzipped when
 * Content-Encoding is gzip), never buffered whole.
 */
/**
 * fastify's ajv coerces types everywhere by default: right for a query
 * string or a path parameter (their values are text), wrong for a JSON
 * body, where `{"name": 42}` would be accepted as "42" and `{"batches": "3"}`
 * as 3. A body is validated as sent; the other parts keep coercion.
 */
const strictBodies: BuildCompilerFromPool = (() => {
  // The package's own types describe the compiler as taking a schema; at run
  // time it takes fastify's route definition (method, url, httpPart, schema).
  type Compile = (route: { httpPart?: string }) => unknown;
  type Build = (externalSchemas: unknown, options: { customOptions?: Record<string, unknown> }) => Compile;
  const build = AjvCompiler() as unknown as Build;
  const factory: Build = (externalSchemas, options) => {
    const coercing = build(externalSchemas, options);
    const strict = build(externalSchemas, { ...options, customOptions: { ...options.customOptions, coerceTypes: false } });
    return (route) => (route.httpPart === 'body' ? strict : coercing)(route);
  };
  return factory as unknown as BuildCompilerFromPool;
})();

/** The media types a streamed NDJSON body may be sent as. */
const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl'];

export function createHttp(options: { log: Logger; apiToken?: string; title: string; version: string; requestTimeoutMs?: number }): {
  app: HttpApp;
  openapi: () => Record<string, unknown>;
} {
  const app = fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // verbose: an error carries its schema, to name the keys an unknown one resembles.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, verbose: true } },
    schemaController: { compilersFactory: { buildValidator: strictBodies } },
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
      return sendError(
        reply.header('www-authenticate', 'Bearer'),
        'unauthorized',
        'a valid bearer token is required',
        'send Authorization: Bearer <PGLAND_API_TOKEN>',
      );
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
      const gunzip = gunzipStream();
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
      return sendError(reply, 'invalid_request', message);
    }
    if (err instanceof PglandError) {
      const listed = ERROR_CODES[err.code].status;
      const status = listed === 500 && isRetryable(err) ? 503 : listed;
      if (status >= 500) req.log.error({ err: { message: err.message, code: err.code } }, 'request failed');
      const retryAfter = err.context.retryAfterSeconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      // The rest of a stalled body is not waited for: the socket goes with the answer.
      if (err.code === 'body_timeout') reply.header('connection', 'close');
      return sendError(reply, err.code, err.message, err.hint, status);
    }
    if ((err as { code?: string }).code === 'input_failed') return sendError(reply, 'input_failed', err.message);
    const tooLarge = req.routeOptions.config.bodyTooLarge;
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && tooLarge) {
      const e = tooLarge(Number(req.headers['content-length']) || undefined);
      return sendError(reply, e.code, e.message, e.hint);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode < 500) return sendError(reply, clientErrorCode(fe.statusCode), fe.message, undefined, fe.statusCode);
    if (isRetryable(err)) {
      req.log.warn({ err: { message: err.message } }, 'request failed on a transient error');
      return sendError(reply, 'unavailable', describeError(err), 'a transient failure: retry the request');
    }
    req.log.error({ err: { message: err.message, code: (err as { code?: string }).code } }, 'request failed');
    return sendError(reply, 'internal', describeError(err));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`));

  return {
    app: app.withTypeProvider<RequestSchemaTypes>(),
    openapi: () => buildOpenApi(routes, { title: options.title, version: options.version }, COMPONENTS),
  };
}
