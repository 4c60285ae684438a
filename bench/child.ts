import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What every child contender prints as its last stdout line. */
export interface ChildResult {
  /** Milliseconds for the load itself (connection set-up excluded). */
  ms: number;
  rows: number;
  /** CPU time (all threads) of the child during the load. */
  cpuMs: number;
  /** Peak resident set of the child, from process.resourceUsage().maxRSS. */
  maxRssMb: number;
  detail?: Record<string, unknown>;
}

/** Called by a child just before its load starts: returns what to pass to reportResult. */
export function startClock(): { started: number; cpu: NodeJS.CpuUsage } {
  return { started: performance.now(), cpu: process.cpuUsage() };
}

/** Called by a child at the end of its load. */
export function reportResult(clock: { started: number; cpu: NodeJS.CpuUsage }, result: { rows: number; detail?: Record<string, unknown> }): void {
  const ms = performance.now() - clock.started;
  const used = process.cpuUsage(clock.cpu);
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ ...result, ms, cpuMs: (used.user + used.system) / 1000, maxRssMb }) + '\n');
}

/** The child's parameters, as the parent passed them. */
export function childParams<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/**
 * Runs a contender in its own Node process, so that its memory is its own and
 * measurable, and the parent's bookkeeping never shares its event loop.
 */
export function runChild(script: string, params: unknown, nodeArgs: string[] = []): Promise<ChildResult> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, path, JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as ChildResult);
      else reject(new Error(`${script} exited with ${code}: ${(stderr || stdout).trim().slice(-2000)}`));
    });
  });
}
