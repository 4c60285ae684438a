import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * `pgland serve` as the benchmarks run it (bench/service.ts,
 * bench/small-syncs.ts): a child process on a free port with a fresh API
 * token, and a small client for its API.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const NODE_FLAGS = ['--max-semi-space-size=4'];
const TOKEN = 'bench-' + randomBytes(12).toString('hex');
/** One key for every serve process of the run: they share the control database's sealed secrets. */
const SECRET_KEY = randomBytes(32).toString('base64');
/** Serve processes still running, killed however the run ends (killServes). */
const serves = new Set<ChildProcess>();

export interface Serve {
  url: string;
  child: ChildProcess;
  /** Peak RSS so far (VmHWM), MB. */
  peakMb(): number;
  stop(): Promise<void>;
}

export async function startServe(controlUrl: string, dataDir: string, env: Record<string, string> = {}): Promise<Serve> {
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, CLI, 'serve', '--port', '0', '--control-url', controlUrl, '--data-dir', dataDir, '--concurrency', '8'],
    {
      env: { ...process.env, PGLAND_SECRET_KEY: SECRET_KEY, PGLAND_API_TOKEN: TOKEN, PGLAND_LOG_LEVEL: 'info', PGLAND_JOBS_POLL_INTERVAL_S: '2', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  serves.add(child);
  child.on('close', () => serves.delete(child));
  let stderr = '';
  const logFile = createWriteStream(join(dataDir + '.log'), { flags: 'a' });
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 100_000) stderr += d.toString();
    logFile.write(d);
  });
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /pgland serve: listening on (http:\S+)/.exec(stderr)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`pgland serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    peakMb: () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024),
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/** Kills every serve process still running (a benchmark's last step, whatever happened). */
export function killServes(): void {
  for (const c of serves) c.kill('SIGKILL');
}

/** The fields of the API's answers the benchmarks read. */
export interface Answer {
  id: string;
  status?: string;
  error?: string | null;
}

/** One API call with the bench's token: a JSON body, or a stream/bytes sent as they are. Throws on a status of 300 or more. */
export async function api(s: Serve, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit & { duplex?: string } = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
  if (body !== undefined) {
    if (typeof body === 'object' && body !== null && !(body instanceof Uint8Array) && !('pipe' in body)) {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    } else {
      init.body = body as never;
      init.duplex = 'half';
    }
  }
  const res = await fetch(s.url + path, init);
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
  // A 204 has no body: its answer has nothing the benchmark reads.
  return (text ? JSON.parse(text) : { id: '' }) as Answer;
}

/**
 * A file sent as a request body the way curl's `--data-binary @file` sends
 * it: its length in Content-Length, read 1 MiB at a time and written to the
 * socket as read. fetch() with a stream body costs several times the CPU
 * (chunked encoding of 64 KiB pieces through web streams), and the sender
 * shares the machine with serve and the server. Throws on a status of 300
 * or more.
 */
export async function upload(s: Serve, method: string, path: string, file: string, headers: Record<string, string> = {}): Promise<Answer> {
  const req = request(s.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-length': String(statSync(file).size), ...headers },
  });
  const answered = once(req, 'response') as Promise<[import('node:http').IncomingMessage]>;
  // A refusal may come before the body is sent whole: the answer is what counts.
  const sent = pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), req).catch((err: Error) => err);
  const [res] = await answered;
  let text = '';
  res.setEncoding('utf8');
  for await (const piece of res) text += piece as string;
  const status = res.statusCode ?? 0;
  if (status >= 300) throw new Error(`${method} ${path}: ${status} ${text.slice(0, 500)}`);
  const err = await sent;
  if (err) throw err;
  return (text ? JSON.parse(text) : { id: '' }) as Answer;
}
