import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild } from './child.js';
import { smallSyncInput } from './generate.js';
import { startLink, viaLink, type Link } from './link.js';
import { TENANT } from './baselines.js';
import { serverCpuSeconds, treeCpuSeconds } from './cpu.js';
import { admin, benchServer } from './server.js';
import { api, killServes, startServe, type Serve } from './serve-process.js';
import type { SmallSyncParams } from './small-syncs-child.js';
import { parseSmallSyncsOptions as parse } from './small-syncs-options.js';

/**
 * Many small syncs (issue 20): 10-record increments for 1,000 tenants of one
 * object, through the library (one destination per process, one load per
 * tenant), through the CLI (one `pgland load` process per run) and through
 * `pgland serve`'s API (a write-through call, or an open/batch/commit run,
 * one client per serve process), in one process and in two side by side. Each tenant first gets its first sync
 * (every record new), then the increment (every record changed): both
 * phases are reported, the increment is what the target is about.
 */

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Lane {
  ms: number;
  latencies: number[];
  /** The library child's CPU time for its runs (undefined for the CLI). */
  cpuMs?: number;
}

/** One `pgland load` per tenant, one after the other; each run's latency is its process's whole life. */
async function cliLane(url: string, schema: string, tenants: number[], input: string): Promise<Lane> {
  const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const latencies: number[] = [];
  const started = performance.now();
  for (const t of tenants) {
    const t0 = performance.now();
    await new Promise<void>((ok, fail) => {
      const args = [main, 'load', '--provider', TENANT.provider, '--customer', `tenant-${t}`, '--object', 'crm_contacts', '--input', '-'];
      const child = spawn(process.execPath, args, {
        env: { ...process.env, PGLAND_DATABASE_URL: url, PGLAND_SCHEMA: schema },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('close', (code) => (code === 0 ? ok() : fail(new Error(`pgland load for tenant ${t} exited with ${code}: ${stderr.slice(-1000)}`))));
      child.stdin.end(input);
    });
    latencies.push(performance.now() - t0);
  }
  return { ms: performance.now() - started, latencies };
}

async function libraryLane(url: string, schema: string, tenants: number[], records: number, version: number): Promise<Lane> {
  const params: SmallSyncParams = { url, schema, tenants, records, version };
  return (await runChild('./small-syncs-child.js', params)) as unknown as Lane;
}

/** The API's runs, one client per serve process, one tenant after the other; the serve process's CPU is the lane's. */
async function httpLane(serve: Serve, dest: string, via: 'write-through' | 'http-run', tenants: number[], input: string): Promise<Lane> {
  const records = input
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
  const latencies: number[] = [];
  const cpu0 = treeCpuSeconds(serve.child.pid!);
  const started = performance.now();
  for (const t of tenants) {
    const tenant = { provider: TENANT.provider, customer_id: `tenant-${t}`, object: 'crm_contacts' };
    const t0 = performance.now();
    if (via === 'write-through') {
      await api(serve, 'POST', `/destinations/${dest}/records`, { ...tenant, records });
    } else {
      const run = await api(serve, 'POST', '/runs', { destination_id: dest, ...tenant });
      await api(serve, 'PUT', `/runs/${run.id}/batches/1`, Buffer.from(input), { 'content-type': 'application/x-ndjson' });
      const done = await api(serve, 'POST', `/runs/${run.id}/commit`, { batches: 1 });
      if (done.status !== 'succeeded') throw new Error(`run ${run.id} for tenant ${t} ended ${done.status}: ${done.error}`);
    }
    latencies.push(performance.now() - t0);
  }
  const ms = performance.now() - started;
  const cpu1 = treeCpuSeconds(serve.child.pid!);
  return { ms, latencies, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuMs: 1000 * (cpu1 - cpu0) } : {}) };
}

/** `processes` serve processes sharing one control database (direct, not over the link), and a destination they all know (over it). */
async function startServes(
  controlUrl: string,
  destUrl: string,
  cacheDir: string,
  processes: number,
  schema: string,
): Promise<{ serves: Serve[]; dest: string }> {
  const serves: Serve[] = [];
  for (let i = 0; i < processes; i++) serves.push(await startServe(controlUrl, join(cacheDir, `small-syncs-serve-${process.pid}-${i}`)));
  const dest = (await api(serves[0]!, 'POST', '/destinations', { name: schema, config: { url: destUrl, sslmode: 'disable', schema } })).id;
  return { serves, dest };
}

async function main(): Promise<void> {
  const o = parse(process.argv);
  const cacheDir = resolve(o.cacheDir);
  mkdirSync(cacheDir, { recursive: true });
  const server = await benchServer(o.databaseUrl, cacheDir);
  let link: Link | undefined;
  const out = (s: string): void => void process.stdout.write(s + '\n');
  try {
    const at = new URL(server.url);
    link = o.linkRtt > 0 ? await startLink({ host: at.hostname, port: Number(at.port) }, o.linkRtt) : undefined;
    const url = link ? viaLink(server.url, link) : server.url;
    out(`PostgreSQL ${server.version} (${server.kind})${link ? `, over a link with a round-trip time of ${o.linkRtt} ms` : ''}; ${o.records} records a run`);
    out('');
    out('| via | processes | phase | runs | s | runs/s | p50 ms | p99 ms | Node CPU ms/run | server CPU ms/run |');
    out('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const via of o.via) {
      for (const processes of o.processes) {
        const schema = `bench_small_${via.replace(/-/g, '_')}_${processes}`;
        await admin(server.url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        const count = via === 'cli' ? o.cliTenants : o.tenants;
        const http = via === 'write-through' || via === 'http-run' ? await startServes(server.url, url, cacheDir, processes, schema) : undefined;
        for (const [phase, version] of [
          ['first', 1],
          ['increment', 2],
        ] as const) {
          const input = smallSyncInput(o.records, version);
          const shares = Array.from({ length: processes }, (_, p) => Array.from({ length: count }, (_, i) => i).filter((i) => i % processes === p));
          const server0 = serverCpuSeconds(server.postmaster);
          const lanes = await Promise.all(
            shares.map((tenants, p) => {
              if (http) return httpLane(http.serves[p]!, http.dest, via as 'write-through' | 'http-run', tenants, input);
              return via === 'cli' ? cliLane(url, schema, tenants, input) : libraryLane(url, schema, tenants, o.records, version);
            }),
          );
          // Each lane's own loop (a library child's start-up and connecting excluded; a CLI run's included, it is the run's cost).
          const s = Math.max(...lanes.map((l) => l.ms)) / 1000;
          const all = lanes.flatMap((l) => l.latencies).sort((a, b) => a - b);
          const server1 = serverCpuSeconds(server.postmaster);
          // The library's own process, or serve's (its CPU for the lane's calls); not a CLI run's.
          const cpu = via !== 'cli' ? (lanes.reduce((t, l) => t + (l.cpuMs ?? 0), 0) / all.length).toFixed(2) : '';
          // The embedded server's CPU (not with --database-url), start-up and connecting of the processes included.
          const serverCpu = server0 !== undefined && server1 !== undefined ? ((1000 * (server1 - server0)) / all.length).toFixed(2) : '';
          out(
            `| ${via} | ${processes} | ${phase} | ${all.length} | ${s.toFixed(2)} | ${(all.length / s).toFixed(1)} | ${percentile(all, 50).toFixed(1)} | ${percentile(all, 99).toFixed(1)} | ${cpu} | ${serverCpu} |`,
          );
        }
        for (const serve of http?.serves ?? []) await serve.stop();
      }
    }
  } finally {
    killServes();
    await link?.stop();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`small-syncs: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
