import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { WRITE_THROUGH_CEILING } from '../src/service/runs/write-through-limits.js';
import { runSeconds, serverCpuSeconds } from './cpu.js';
import { contact, type RecordSize } from './generate.js';
import { benchServer } from './server.js';
import { api, killServes, startServe, type Serve } from './serve-process.js';
import { parseWriteThroughOptions, repsFor } from './write-through-options.js';

/*
 * Write-through or a run (docs/benchmarks.md, "Write-through or a run"): the
 * same N records of one tenant and object landed by one serve process
 * either way, for N from 1 to 10,000: a write-through call (POST
 * /destinations/{id}/records, one JSON body, one transaction) or a run
 * (POST /runs, PUT one NDJSON batch, commit). Every call updates the same N
 * landed rows (a newer last_modified_at each time), so both ways do the same
 * merge work; the two ways alternate, each going first every other time.
 *
 * Per call: the client's wall time; serve's CPU (every thread, to the
 * nanosecond); the embedded server's CPU (every process, the backends that
 * exited included: a held run ends its connection; /proc's 10 ms ticks, so
 * given as a mean over the calls; not measured with --database-url, a server
 * other work shares); how long the object's lease was
 * held (a write-through: serve's own timer of its transaction; a run: from its
 * batch to its commit's answer); serve's peak RSS during the call. Wall times on a shared machine are mostly
 * waiting for a CPU: CPU per record is the figure to compare.
 *
 * serve runs with the write-through limits at their ceiling, so that every
 * size can be measured.
 */

const TENANT = { provider: 'bench', customer_id: 'breakeven', object: 'crm_contacts' };
const T0 = Date.parse('2030-01-01T00:00:00Z');
const out = (s: string): void => void process.stdout.write(s + '\n');
const log = (s: string): void => void process.stderr.write(s + '\n');

/** Contact n as of call `seq`: newer than every earlier call's, so each call updates every row. */
function record(n: number, seq: number, size: RecordSize): Record<string, unknown> {
  const c = contact(n, 2, size);
  const at = new Date(T0 + seq * 60_000).toISOString();
  return { ...c, last_modified_at: at, data: { ...c.data, updated_at: at } };
}

interface Call {
  ms: number;
  /** serve's CPU seconds; the embedded server's (NaN with --database-url). */
  serve: number;
  server: number;
  /** How long the object's lease was held, ms. */
  leaseMs: number;
  /** serve's peak RSS during the call, MB. */
  peakMb: number;
}

/** Starts a new peak RSS (VmHWM) of the process from its current RSS (Linux: /proc/<pid>/clear_refs). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function peakMb(pid: number): number {
  return Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);
}

type Way = 'write-through' | 'run';

/** serve's own timer of its write-through transactions so far (pgland_batch_duration_seconds, step write_through). */
async function writeThroughSeconds(s: Serve): Promise<number> {
  const text = await (await fetch(s.url + '/metrics')).text();
  return Number(/^pgland_batch_duration_seconds_sum\{step="write_through"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

async function writeThrough(s: Serve, dest: string, body: Buffer, records: number): Promise<void> {
  const a = (await api(s, 'POST', `/destinations/${dest}/records`, body, { 'content-type': 'application/json' })) as unknown as {
    counts: { rows_read: number };
  };
  if (a.counts.rows_read !== records) throw new Error(`write-through read ${a.counts.rows_read} of ${records} records`);
}

/** A run of one batch; answers the ms from its batch to its commit's answer (the lease is held meanwhile). */
async function run(s: Serve, dest: string, body: Buffer): Promise<number> {
  const opened = await api(s, 'POST', '/runs', { destination_id: dest, ...TENANT, mode: 'incremental' });
  const t0 = performance.now();
  await api(s, 'PUT', `/runs/${opened.id}/batches/1`, body, { 'content-type': 'application/x-ndjson' });
  const done = await api(s, 'POST', `/runs/${opened.id}/commit`, { batches: 1 });
  if (done.status !== 'succeeded') throw new Error(`run ${opened.id} ended ${done.status}: ${done.error}`);
  return performance.now() - t0;
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const o = parseWriteThroughOptions(process.argv);
  const cacheDir = resolve(o.cacheDir);
  mkdirSync(cacheDir, { recursive: true });
  const server = await benchServer(o.databaseUrl, cacheDir);
  // A database of its own, dropped at the end: nothing else's schemas are touched.
  const database = `bench_write_through_${process.pid}`;
  const url = new URL(server.url);
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  url.pathname = '/' + database;
  const dbUrl = url.toString();
  try {
    const serve = await startServe(dbUrl, join(cacheDir, `write-through-control-${process.pid}`), {
      PGLAND_WRITE_THROUGH_MAX_RECORDS: String(WRITE_THROUGH_CEILING.maxRecords),
      PGLAND_WRITE_THROUGH_MAX_BYTES: String(WRITE_THROUGH_CEILING.maxBytes),
      PGLAND_LOG_LEVEL: 'warn',
    });
    const dest = (await api(serve, 'POST', '/destinations', { name: 'bench', config: { url: dbUrl, sslmode: 'disable', schema: 'bench_wt' } })).id;
    const sizes = [...o.sizes].sort((a, b) => a - b);
    let seq = 0;
    const bodies = (n: number): { json: Buffer; ndjson: Buffer } => {
      seq++;
      const records = Array.from({ length: n }, (_, i) => record(i, seq, o.recordSize));
      return {
        json: Buffer.from(JSON.stringify({ ...TENANT, records })),
        ndjson: Buffer.from(records.map((r) => JSON.stringify(r)).join('\n') + '\n'),
      };
    };
    // The rows every call updates, landed first (untimed).
    await run(serve, dest, bodies(sizes.at(-1)!).ndjson);

    const measure = async (way: Way, n: number): Promise<Call> => {
      const b = bodies(n);
      const body = way === 'write-through' ? b.json : b.ndjson;
      const wt0 = way === 'write-through' ? await writeThroughSeconds(serve) : 0;
      const pid = serve.child.pid!;
      resetPeak(pid);
      const serve0 = runSeconds(pid) ?? NaN;
      const server0 = serverCpuSeconds(server.postmaster) ?? NaN;
      const t0 = performance.now();
      let held = 0;
      if (way === 'write-through') await writeThrough(serve, dest, body, n);
      else held = await run(serve, dest, body);
      const ms = performance.now() - t0;
      const server1 = serverCpuSeconds(server.postmaster) ?? NaN;
      const serve1 = runSeconds(pid) ?? NaN;
      const leaseMs = way === 'write-through' ? 1000 * ((await writeThroughSeconds(serve)) - wt0) : held;
      return { ms, serve: serve1 - serve0, server: server1 - server0, leaseMs, peakMb: peakMb(pid) };
    };

    out(
      `write-through or a run: PostgreSQL ${server.version} (${server.kind}), ${TENANT.object} of about ${o.recordSize} bytes, every call updates the same N rows of one tenant`,
    );
    out('');
    out(
      '| records | body KB | way | calls | p50 ms | p99 ms | records/s at p50 | serve CPU µs/record, p50 (p10–p90) | server CPU µs/record, mean | lease held p50 ms | serve peak RSS MB, max |',
    );
    out('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const summary: string[] = [];
    for (const n of sizes) {
      const reps = o.reps ?? repsFor(n);
      const ways: Way[] = n <= WRITE_THROUGH_CEILING.maxRecords ? ['write-through', 'run'] : ['run'];
      const sample = bodies(n);
      // One untimed call each way: the first of a size pays for what later calls reuse.
      for (const way of ways) await measure(way, n);
      const calls: Record<Way, Call[]> = { 'write-through': [], run: [] };
      for (let r = 0; r < reps; r++) {
        for (const way of r % 2 === 0 ? ways : [...ways].reverse()) calls[way].push(await measure(way, n));
      }
      // serve's CPU per record: the median call's; the server's: the mean (ticks of 10 ms).
      const p50: Partial<Record<Way, { ms: number; serve: number; server: number }>> = {};
      for (const way of ways) {
        const c = calls[way];
        const perRecord = (p: number): number =>
          (1e6 *
            pct(
              c.map((x) => x.serve),
              p,
            )) /
          n;
        const server = (1e6 * c.reduce((t, x) => t + x.server, 0)) / c.length / n;
        const bytes = way === 'write-through' ? sample.json.length : sample.ndjson.length;
        const ms = pct(
          c.map((x) => x.ms),
          50,
        );
        p50[way] = { ms, serve: perRecord(50), server };
        out(
          `| ${n.toLocaleString('en')} | ${(bytes / 1024).toFixed(1)} | ${way} | ${c.length} | ${ms.toFixed(1)} | ${pct(
            c.map((x) => x.ms),
            99,
          ).toFixed(
            1,
          )} | ${Math.round((1000 * n) / ms).toLocaleString('en')} | ${perRecord(50).toFixed(1)} (${perRecord(10).toFixed(1)}–${perRecord(90).toFixed(1)}) | ${Number.isNaN(server) ? 'not measured' : server.toFixed(1)} | ${pct(
            c.map((x) => x.leaseMs),
            50,
          ).toFixed(1)} | ${Math.max(...c.map((x) => x.peakMb))} |`,
        );
      }
      const w = p50['write-through'];
      const rn = p50.run!;
      if (w)
        summary.push(
          `| ${n.toLocaleString('en')} | ${(w.ms / rn.ms).toFixed(2)} | ${(w.serve / rn.serve).toFixed(2)} | ${(w.server / rn.server).toFixed(2)} | ${((w.serve + w.server) / (rn.serve + rn.server)).toFixed(2)} |`,
        );
      log(`${n} records: done`);
    }
    out('');
    out('write-through ÷ run (latency and serve CPU: p50s; server CPU: means; below 1 the write-through is cheaper):');
    out('');
    out('| records | latency | serve CPU | server CPU | CPU, both |');
    out('|---:|---:|---:|---:|---:|');
    for (const line of summary) out(line);
    await serve.stop();
  } finally {
    killServes();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch((err: unknown) => log(`could not drop ${database}: ${(err as Error).message}`));
    await admin.end();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`write-through: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
