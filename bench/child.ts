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
  /** The same before the load started (start-up, connecting, migrations). */
  startRssMb?: number;
  /** Where the peak was reached: seconds into the load, and the process's memory then (MB). */
  peak?: { s: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  detail?: Record<string, unknown>;
}

interface Clock {
  started: number;
  cpu: NodeJS.CpuUsage;
  startRssMb: number;
  peak?: ChildResult['peak'];
  sampler: NodeJS.Timeout;
}

const mb = (bytes: number): number => Math.round(bytes / 1048576);

/**
 * Called by a child just before its load starts: returns what to pass to
 * reportResult. Every 100 ms it notes the process's memory whenever the peak
 * resident set has grown, so that the report says when and in what the peak
 * was reached.
 */
export function startClock(): Clock {
  const startRssKb = process.resourceUsage().maxRSS;
  const clock: Clock = { started: performance.now(), cpu: process.cpuUsage(), startRssMb: startRssKb / 1024, sampler: undefined as unknown as NodeJS.Timeout };
  let highest = startRssKb;
  clock.sampler = setInterval(() => {
    const now = process.resourceUsage().maxRSS;
    if (now <= highest) return;
    highest = now;
    const m = process.memoryUsage();
    clock.peak = {
      s: Math.round((performance.now() - clock.started) / 100) / 10,
      heapTotal: mb(m.heapTotal),
      heapUsed: mb(m.heapUsed),
      external: mb(m.external),
      arrayBuffers: mb(m.arrayBuffers),
    };
  }, 100);
  clock.sampler.unref();
  return clock;
}

/** Called by a child at the end of its load. */
export function reportResult(clock: Clock, result: { rows: number; detail?: Record<string, unknown> }): void {
  clearInterval(clock.sampler);
  const ms = performance.now() - clock.started;
  const used = process.cpuUsage(clock.cpu);
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    JSON.stringify({ ...result, ms, cpuMs: (used.user + used.system) / 1000, maxRssMb, startRssMb: clock.startRssMb, peak: clock.peak }) + '\n',
  );
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

/** A child's entry point: runs main, and on failure prints the stack and exits 1 (the parent shows it). */
export function childMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(String((err as Error)?.stack ?? err) + '\n');
    process.exitCode = 1;
  });
}

/** Reports a load that succeeded, or throws what ended it otherwise. */
export function reportLoad(clock: ReturnType<typeof startClock>, result: { status: string; error?: Error; counts: { rowsRead: number } }): void {
  if (result.status !== 'succeeded') throw result.error ?? new Error(`load ended ${result.status}`);
  reportResult(clock, { rows: result.counts.rowsRead, detail: { ...result.counts } });
}
