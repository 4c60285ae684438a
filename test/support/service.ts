import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startService, type Service, type ServiceOptions } from '../../src/service/service.js';
import type { TestDatabase } from './db.js';

/** A fixed key and token for the tests' services (never a real secret). */
export const TEST_SECRET_KEY = randomBytes(32).toString('base64');
export const TEST_TOKEN = 'test-token-' + randomBytes(8).toString('hex');

/**
 * The loopback networks, for tests whose webhook receivers or URL sources
 * listen on 127.0.0.1: pgland refuses them unless the operator allows them.
 */
export const LOOPBACK_NETWORKS = ['127.0.0.0/8', '::1/128'];

/** Every log line the tests' services write, to assert that secrets never appear in them. */
export const logLines: string[] = [];
export const testLogger = pino(
  { level: 'debug', base: undefined },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

/**
 * A service on a free port of 127.0.0.1, its control tables in the test
 * database (schema pgland_control), with fast webhook retries.
 */
export function startTestService(db: TestDatabase, extra: Partial<ServiceOptions> = {}): Promise<Service> {
  return startService({
    port: 0,
    controlUrl: db.url,
    secretKey: TEST_SECRET_KEY,
    apiToken: TEST_TOKEN,
    log: testLogger,
    sender: { pollMs: 100, retryBaseMs: 100, retryMaxMs: 400, timeoutMs: 2000, maxAttempts: 10, concurrency: 4 },
    scheduler: { pollingIntervalSeconds: 0.5, maintenanceIntervalSeconds: 1, retryDelaySeconds: 1 },
    ...extra,
  });
}

export interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

/** A request to the service over a real socket, with the token unless told otherwise. */
export async function call(
  svc: Service,
  method: string,
  path: string,
  options: { json?: unknown; body?: RequestInit['body']; headers?: Record<string, string>; token?: string | null } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? TEST_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await fetch(svc.url + path, { method, headers, ...(body !== undefined ? { body, duplex: 'half' } : {}) } as RequestInit);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export { until } from './until.js';

/** A local HTTP server on 127.0.0.1 answering with `handle`; it records every request's path and headers. */
export async function localServer(
  handle: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<{ url: string; port: number; got: { path: string; headers: IncomingHttpHeaders; body: string }[]; close: () => Promise<void> }> {
  const got: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      handle(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    got,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
