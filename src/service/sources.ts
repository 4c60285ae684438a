import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { PglandError } from '../errors.js';

/**
 * Where a scheduled run reads its records: a command whose standard output
 * is NDJSON (like a Singer tap), or a URL that serves NDJSON. The object's
 * watermark, when there is one, is handed over: PGLAND_WATERMARK in the
 * command's environment, {watermark} in the URL.
 */
export type SourceConfig =
  | { type: 'command'; command: string[]; env?: Record<string, string>; cwd?: string }
  | { type: 'url'; url: string; headers?: Record<string, string> };

/** The source as the API shows it: environment and header values are secrets. */
export function redactSource(s: SourceConfig): Record<string, unknown> {
  if (s.type === 'command') {
    return { type: 'command', command: s.command, ...(s.cwd ? { cwd: s.cwd } : {}), ...(s.env ? { env: Object.fromEntries(Object.keys(s.env).map((k) => [k, '[set]'])) } : {}) };
  }
  let url = s.url;
  try {
    const u = new URL(s.url);
    if (u.password) u.password = '[set]';
    url = u.toString().replace(/%5Bset%5D/g, '[set]').replace(/%7Bwatermark%7D/gi, '{watermark}');
  } catch {
    // left as given: validated on create
  }
  return { type: 'url', url, ...(s.headers ? { headers: Object.fromEntries(Object.keys(s.headers).map((k) => [k, '[set]'])) } : {}) };
}

export function checkSource(s: SourceConfig, allowCommands: boolean): void {
  if (s.type === 'command' && !allowCommands) {
    throw new PglandError('config_invalid', 'command sources are disabled on this server', {
      hint: 'a command source runs a program on the worker: enable them with PGLAND_ALLOW_COMMAND_SOURCES=1 on the API and worker processes, or use a url source',
    });
  }
  if (s.type === 'url') {
    let u: URL;
    try {
      u = new URL(s.url.replace(/\{watermark\}/g, 'x'));
    } catch {
      throw new PglandError('config_invalid', 'source.url: not a valid URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PglandError('config_invalid', 'source.url: must be http:// or https://');
  }
}

export interface OpenedSource {
  records: AsyncIterable<Buffer>;
  /** Stops the source early (a cancelled run). */
  close(): void;
}

/**
 * Opens a source. Its records end with an error when the command exits
 * non-zero or the download fails midway, so that a truncated input fails the
 * run (and a full refresh deletes nothing) instead of looking complete.
 */
export async function openSource(s: SourceConfig, watermark: Date | undefined, signal: AbortSignal): Promise<OpenedSource> {
  return s.type === 'command' ? openCommand(s, watermark) : openUrl(s, watermark, signal);
}

function openCommand(s: Extract<SourceConfig, { type: 'command' }>, watermark: Date | undefined): OpenedSource {
  const [file, ...args] = s.command;
  const child = spawn(file!, args, {
    ...(s.cwd ? { cwd: s.cwd } : {}),
    env: { ...process.env, ...s.env, ...(watermark ? { PGLAND_WATERMARK: watermark.toISOString() } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, sig) => resolve({ code, signal: sig }));
  });
  async function* records(): AsyncGenerator<Buffer> {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const end = await exited;
    if (end.error) throw new Error(`the source command could not run: ${end.error.message}`);
    if (end.code !== 0) {
      const last = stderr.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`the source command exited with ${end.code ?? end.signal}${last ? `: ${last}` : ''}`);
    }
  }
  return { records: records(), close: () => child.kill('SIGTERM') };
}

async function openUrl(s: Extract<SourceConfig, { type: 'url' }>, watermark: Date | undefined, signal: AbortSignal): Promise<OpenedSource> {
  const url = s.url.replace(/\{watermark\}/g, watermark ? encodeURIComponent(watermark.toISOString()) : '');
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const res = await fetch(url, { headers: { accept: 'application/x-ndjson', ...s.headers }, signal: controller.signal, redirect: 'follow' });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new PglandError('source_failed', `the source URL answered HTTP ${res.status}`, { hint: 'check the URL and its credentials' });
  }
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  return {
    records: body as AsyncIterable<Buffer>,
    close: () => {
      controller.abort();
      signal.removeEventListener('abort', onAbort);
    },
  };
}
