import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { sendError } from './server.js';

/**
 * The web console (docs/console.md): a static page and its bundle, built by
 * `npm run build` into dist/console and served here on the API's own origin,
 * so it calls the same API with the same token and nothing else. The files
 * hold no data: they are served without a token; every call they make needs one.
 */

/** What the page may do: its own script and style, calls to this origin; nothing inline, no frames, no other origin. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** dist/console beside dist/src (the built package), or the repository's dist/console when running from the sources. */
function consoleDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, '..', '..', '..', 'console'), join(here, '..', '..', '..', 'dist', 'console')].find((d) => existsSync(join(d, 'index.html')));
}

function loadFiles(): Map<string, Buffer> {
  const dir = consoleDir();
  const files = new Map<string, Buffer>();
  if (!dir) return files;
  for (const name of Object.keys(TYPES)) {
    if (existsSync(join(dir, name))) files.set(name, readFileSync(join(dir, name)));
  }
  return files;
}

function secured(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache');
}

/** Not part of the API: left out of the OpenAPI document. */
const hidden = { hide: true } as FastifySchema;

export function consoleRoutes(app: FastifyInstance): void {
  const files = loadFiles();
  const send = (name: string, reply: FastifyReply): FastifyReply => {
    const body = files.get(name);
    if (!body) {
      return sendError(
        secured(reply),
        'not_found',
        name === 'index.html' ? 'the console is not built into this package' : `no console file ${name}`,
        'run npm run build',
      );
    }
    return secured(reply).type(TYPES[name]!).send(body);
  };
  app.get('/', { config: { public: true }, schema: hidden }, async (_req, reply) => send('index.html', reply));
  app.get('/console/:file', { config: { public: true }, schema: hidden }, async (req, reply) => {
    const { file } = req.params as { file: string };
    return Object.hasOwn(TYPES, file) && file !== 'index.html' ? send(file, reply) : sendError(secured(reply), 'not_found', 'no such console file');
  });
}
