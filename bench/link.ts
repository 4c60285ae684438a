import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LinkParams } from './link-relay.js';

/** Bytes in flight per direction: Linux's largest autotuned send buffer (net.ipv4.tcp_wmem). */
export const LINK_WINDOW_BYTES = 4 * 1024 * 1024;

export interface Link {
  rttMs: number;
  port: number;
  /** The relay's process, whose CPU time the report shows apart. */
  pid: number;
  stop(): Promise<void>;
}

/** Starts a link of `rttMs` to `target` (bench/link-relay.ts) and waits until it listens, at most 10 s. */
export async function startLink(target: { host: string; port: number }, rttMs: number): Promise<Link> {
  const params: LinkParams = { target, rttMs, windowBytes: LINK_WINDOW_BYTES };
  const script = fileURLToPath(new URL('./link-relay.js', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script, JSON.stringify(params)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  try {
    const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [''])])) as [string];
    if (!line.startsWith('{')) throw new Error(`the link relay did not start (exit ${child.exitCode})`);
    const { port } = JSON.parse(line) as { port: number };
    return {
      rttMs,
      port,
      pid: child.pid!,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.stdin!.end(); // the relay exits when its stdin closes
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(kill);
      },
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The same URL, through the link (host and port replaced). */
export function viaLink(url: string, link: Link): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(link.port);
  return u.toString();
}
