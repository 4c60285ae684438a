import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { PglandError } from '../../errors.js';
import { PGLAND_VERSION } from '../../package.js';
import type { Egress } from '../outbound/egress.js';
import { describeOutboundError, sendOutbound } from '../outbound/outbound-http.js';
import { checkPostgresSource, redactPostgresSource, type PostgresSourceConfig } from './pg-import.js';
import { MARK, redactUrl } from '../outbound/redact-url.js';
import { brotliStream, gunzipStream, inflateStream } from '../../input/decompress.js';

/**
 * Where a scheduled run reads its records: a command whose standard output
 * is NDJSON (like a Singer tap), or a URL that serves NDJSON. The object's
 * watermark, when there is one, is handed over: PGLAND_WATERMARK in the
 * command's environment, {watermark} in the URL.
 */
export type SourceConfig =
  | { type: 'command'; command: string[]; env?: Record<string, string>; cwd?: string }
  | { type: 'url'; url: string; headers?: Record<string, string> }
  | PostgresSourceConfig;

/** The source as the API shows it: environment and header values, and the URL's credentials, are secrets. */
export function redactSource(s: SourceConfig): Record<string, unknown> {
  if (s.type === 'postgres') return redactPostgresSource(s);
  if (s.type === 'command') {
    return {
      type: 'command',
      command: s.command,
      ...(s.cwd ? { cwd: s.cwd } : {}),
      ...(s.env ? { env: Object.fromEntries(Object.keys(s.env).map((k) => [k, MARK])) } : {}),
    };
  }
  return { type: 'url', url: redactUrl(s.url), ...(s.headers ? { headers: Object.fromEntries(Object.keys(s.headers).map((k) => [k, MARK])) } : {}) };
}

/** What this process lets a source do: set by the operator, checked when a schedule is saved and again when it runs. */
export interface SourcePolicy {
  allowCommands: boolean;
  egress: Egress;
}

/** The URL of a url source with the watermark put in; refuses what pgland does not fetch. */
function sourceUrl(s: Extract<SourceConfig, { type: 'url' }>, watermark: Date | undefined): URL {
  let u: URL;
  try {
    u = new URL(s.url.replace(/\{watermark\}/g, watermark ? encodeURIComponent(watermark.toISOString()) : ''));
  } catch {
    throw new PglandError('config_invalid', 'source.url: not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PglandError('config_invalid', 'source.url: must be http:// or https://');
  if (u.username || u.password) {
    throw new PglandError('config_invalid', `source.url: credentials in the URL (user:password@) are refused: ${redactUrl(u)}`, {
      hint: 'send them in source.headers instead, e.g. {"authorization": "Basic <base64 of user:password>"}: header values are sealed and never shown',
    });
  }
  return u;
}

export function checkSource(s: SourceConfig, policy: SourcePolicy): void {
  if (s.type === 'command' && !policy.allowCommands) {
    throw new PglandError('config_invalid', 'command sources are disabled on this server', {
      hint: 'a command source runs a program on the worker: enable them with PGLAND_ALLOW_COMMAND_SOURCES=1 on the API and worker processes, or use a url source',
    });
  }
  if (s.type === 'url') policy.egress.checkLiteral(sourceUrl(s, undefined));
  if (s.type === 'postgres') checkPostgresSource(s, policy.egress);
}

export interface OpenedSource {
  records: AsyncIterable<Buffer>;
  /** Stops the source early (a cancelled run). */
  close(): void;
  /** After the run committed: a source with its own bookmark (postgres) stores it. */
  commit?(runId: string): Promise<void>;
}

/**
 * Opens a source. Its records end with an error when the command exits
 * non-zero or the download fails midway, so that a truncated input fails the
 * run (and a full refresh deletes nothing) instead of looking complete. The
 * policy is checked again here: a schedule stored while command sources were
 * allowed does not run on a process that does not allow them.
 */
export async function openSource(s: SourceConfig, watermark: Date | undefined, signal: AbortSignal, policy: SourcePolicy): Promise<OpenedSource> {
  checkSource(s, policy);
  if (s.type === 'postgres') throw new Error('a postgres source is opened with its bookmark: openPostgresSource');
  return s.type === 'command' ? openCommand(s, watermark) : openUrl(s, watermark, signal, policy.egress);
}

/** The service's environment variables a command source inherits; nothing else of the service's reaches it. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG'];
/** How much of a failed command's standard error its run's error keeps. */
const STDERR_EXCERPT = 500;

/** A command source's environment: PATH, HOME and LANG, then the schedule's own variables, then the watermark. */
export function commandEnv(
  s: Extract<SourceConfig, { type: 'command' }>,
  watermark: Date | undefined,
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) if (base[name] !== undefined) env[name] = base[name]!;
  return { ...env, ...s.env, ...(watermark ? { PGLAND_WATERMARK: watermark.toISOString() } : {}) };
}

function openCommand(s: Extract<SourceConfig, { type: 'command' }>, watermark: Date | undefined): OpenedSource {
  const [file, ...args] = s.command;
  const child = spawn(file!, args, {
    ...(s.cwd ? { cwd: s.cwd } : {}),
    env: commandEnv(s, watermark),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4 * STDERR_EXCERPT)));
  // Read from the start, not when the loader first asks (after the object's
  // lease, the table's evolution...): Node discards the output a child left
  // unread when it exits, and a quick command's records were lost so, its run
  // "succeeded" with nothing landed. The pipe keeps backpressure: a command
  // writing more than the loader takes waits.
  const stdout = new PassThrough();
  pipeline(child.stdout, stdout, () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, sig) => resolve({ code, signal: sig }));
  });
  async function* records(): AsyncGenerator<Buffer> {
    for await (const chunk of stdout) yield chunk as Buffer;
    const end = await exited;
    if (end.error) throw new Error(`the source command could not run: ${end.error.message}`);
    if (end.code !== 0) {
      const last = stderr.trim().split('\n').slice(-3).join(' | ').slice(-STDERR_EXCERPT);
      throw new Error(`the source command exited with ${end.code ?? end.signal}${last ? `: ${last}` : ''}`);
    }
  }
  return { records: records(), close: () => child.kill('SIGTERM') };
}

/** Redirects a URL source follows, at most. */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * GETs the URL, following redirects itself: at most MAX_REDIRECTS, each
 * through the egress policy, and once a redirect leaves the URL's origin
 * (scheme, host and port) the schedule's headers are dropped, so its
 * credentials only go where the schedule sends them.
 */
async function openUrl(s: Extract<SourceConfig, { type: 'url' }>, watermark: Date | undefined, signal: AbortSignal, egress: Egress): Promise<OpenedSource> {
  let url = sourceUrl(s, watermark);
  const origin = url.origin;
  const base = { accept: 'application/x-ndjson', 'accept-encoding': 'gzip, deflate, br', 'user-agent': `pgland/${PGLAND_VERSION}` };
  for (let redirects = 0; ; redirects++) {
    const headers = url.origin === origin ? { ...base, ...s.headers } : base;
    let res: IncomingMessage;
    try {
      res = await sendOutbound(egress, url, { method: 'GET', headers, signal });
    } catch (err) {
      throw new PglandError('source_failed', `${redactUrl(url)}: ${describeOutboundError(err)}`, { hint: 'check the URL, and that pgland may reach its host' });
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.has(status) && location) {
      res.destroy();
      if (redirects >= MAX_REDIRECTS) throw new PglandError('source_failed', `${redactUrl(s.url)}: more than ${MAX_REDIRECTS} redirects`);
      url = redirectTarget(url, location);
      continue;
    }
    if (status < 200 || status > 299) {
      res.destroy();
      throw new PglandError('source_failed', `${redactUrl(url)} answered HTTP ${status}`, { hint: 'check the URL and its credentials' });
    }
    const body = decoded(res);
    return { records: body, close: () => body.destroy() };
  }
}

function redirectTarget(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new PglandError('source_failed', `${redactUrl(from)} redirected to something that is not a URL`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:')
    throw new PglandError('source_failed', `${redactUrl(from)} redirected to a ${next.protocol.slice(0, 20)} URL: only http and https are followed`);
  if (next.username || next.password) throw new PglandError('source_failed', `${redactUrl(from)} redirected to a URL with credentials in it: not followed`);
  return next;
}

/** The body, decompressed as its Content-Encoding says. */
function decoded(res: IncomingMessage): Readable {
  const encoding = String(res.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip' ? gunzipStream() : encoding === 'deflate' ? inflateStream() : encoding === 'br' ? brotliStream() : undefined;
  if (encoding !== 'identity' && !decoder) {
    res.destroy();
    throw new PglandError('source_failed', `the source answered with Content-Encoding ${encoding.slice(0, 40)}, which pgland does not decode`);
  }
  if (!decoder) return res;
  res.on('error', (err) => decoder.destroy(err));
  decoder.on('close', () => res.destroy());
  return res.pipe(decoder);
}
