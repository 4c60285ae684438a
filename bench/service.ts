import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { signedHeaders, parseWebhookSecret } from '../src/service/webhooks/signing.js';
import { childrenCpuSeconds, serverCpuSeconds, treeCpuSeconds } from './cpu.js';
import { dataset, type DataFile } from './dataset.js';
import { contact } from './generate.js';
import { admin, benchServer } from './server.js';
import { api, CLI, killServes, NODE_FLAGS, startServe, upload, type Serve } from './serve-process.js';

/*
 * Service benchmark (docs/benchmarks.md, "Service mode"): in one run, on one
 * server, the same files landed by `pgland load` and over HTTP by `pgland
 * serve` (10 PUT batches then a commit; plain and gzip), first load and 10%
 * increment, each on its own tenant of crm_contacts; serve's peak RSS; 8
 * concurrent HTTP runs of size/8 records (8 tenants); write-through latency
 * (1 and 100 records); a signed sync.requested to the start of its run.
 *
 * Beside wall times, each load prints the CPU seconds it cost, per process:
 * pgland (the CLI, or serve), the server (embedded only) and the sender (this
 * process, streaming the files); an HTTP run's also per phase (its batches,
 * its commit). On a shared machine wall times swing with the load; CPU
 * seconds much less.
 *
 *   node dist/bench/service.js [--size 1M] [--database-url URL] [--cache-dir D]
 *     [--parts ingest,write-through,concurrent,webhook]
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BATCHES = 10;
const INBOUND = 'whsec_' + randomBytes(32).toString('base64');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const log = (s: string): void => void process.stderr.write(s + '\n');
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** CPU seconds so far of the processes a load involves (undefined where not measurable). */
interface CpuSample {
  cli: number | undefined;
  serve: number | undefined;
  server: number | undefined;
  sender: number;
}

let postmaster: number | undefined;

function cpuSample(serve?: Serve): CpuSample {
  const own = process.cpuUsage();
  return {
    cli: childrenCpuSeconds(),
    serve: serve?.child.pid === undefined ? undefined : treeCpuSeconds(serve.child.pid),
    server: serverCpuSeconds(postmaster),
    sender: (own.user + own.system) / 1e6,
  };
}

/** CPU seconds between two samples, as printed: "serve 12.3, server 8.1, sender 0.4". */
function cpuSince(a: CpuSample, b: CpuSample, who: (keyof CpuSample)[]): string {
  const part = (k: keyof CpuSample): string | undefined => {
    const x = a[k];
    const y = b[k];
    return x === undefined || y === undefined ? undefined : `${k === 'cli' ? 'pgland' : k} ${(y - x).toFixed(1)}`;
  };
  return who
    .map(part)
    .filter((p) => p !== undefined)
    .join(', ');
}

/** `pgland load` of a file under GNU time: wall seconds, peak RSS, and the CPU it cost. */
function cliLoad(config: string, file: string, customer: string, dir: string): { secs: number; rssMb: number; cpu: string } {
  const before = cpuSample();
  const out = join(dir, 'cli.time');
  const cmd = `${q(process.execPath)} ${NODE_FLAGS.join(' ')} ${q(CLI)} load --config ${q(config)} --provider bench --customer ${q(customer)} --object crm_contacts --input ${q(file)} > /dev/null`;
  execFileSync('/usr/bin/time', ['-o', out, '-f', '%e %M', 'sh', '-c', cmd], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PGLAND_LOG_LEVEL: 'warn' },
  });
  const [secs, kb] = readFileSync(out, 'utf8').trim().split(' ');
  return { secs: Number(secs), rssMb: Math.round(Number(kb) / 1024), cpu: cpuSince(before, cpuSample(), ['cli', 'server']) };
}

/** The file cut into `n` parts of whole lines (plain and gzipped), cached beside it. */
async function parts(file: DataFile, n: number): Promise<{ plain: string[]; gz: string[] }> {
  const per = Math.ceil(file.rows / n);
  const plain = Array.from({ length: n }, (_, i) => `${file.path}.part${i + 1}of${n}`);
  const gz = plain.map((p) => p + '.gz');
  if (!plain.every(existsSync) || !gz.every(existsSync)) {
    let i = 0;
    let k = 0;
    let out = createWriteStream(plain[0]! + '.partial');
    for await (const line of createInterface({ input: createReadStream(file.path), crlfDelay: Infinity })) {
      if (i === per) {
        out.end();
        await once(out, 'finish');
        renameSync(plain[k]! + '.partial', plain[k]!);
        out = createWriteStream(plain[++k]! + '.partial');
        i = 0;
      }
      if (!out.write(line + '\n')) await once(out, 'drain');
      i++;
    }
    out.end();
    await once(out, 'finish');
    renameSync(plain[k]! + '.partial', plain[k]!);
    for (let j = 0; j < n; j++) await pipeline(createReadStream(plain[j]!), createGzip({ level: 6 }), createWriteStream(gz[j]!));
  }
  return { plain, gz };
}

interface HttpRunTimes {
  secs: number;
  /** Wall seconds of the batches (open included) and of the commit. */
  batchSecs: number;
  commitSecs: number;
  /** CPU seconds per process, over the batches and over the commit. */
  batchCpu: string;
  commitCpu: string;
}

/** One HTTP run: open, PUT each part in turn, commit naming them; wall seconds and CPU per phase. */
async function httpRun(s: Serve, dest: string, customer: string, files: string[], mode: 'incremental' | 'full', gzip: boolean): Promise<HttpRunTimes> {
  const cpu0 = cpuSample(s);
  const t0 = performance.now();
  const run = await api(s, 'POST', '/runs', { destination_id: dest, provider: 'bench', customer_id: customer, object: 'crm_contacts', mode });
  for (let i = 0; i < files.length; i++) {
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
    // As a platform would: a batch refused for now (429 with Retry-After, 503) is sent again.
    for (let attempt = 1; ; attempt++) {
      try {
        await upload(s, 'PUT', `/runs/${run.id}/batches/${i + 1}`, files[i]!, headers);
        break;
      } catch (err) {
        if (attempt >= 100 || !/: (429|503) /.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  const cpu1 = cpuSample(s);
  const t1 = performance.now();
  const done = await api(s, 'POST', `/runs/${run.id}/commit`, { batches: files.length });
  if (done.status !== 'succeeded') throw new Error(`run ${run.id} ended ${done.status}: ${done.error}`);
  const t2 = performance.now();
  const cpu2 = cpuSample(s);
  const who: (keyof CpuSample)[] = ['serve', 'server', 'sender'];
  return {
    secs: (t2 - t0) / 1000,
    batchSecs: (t1 - t0) / 1000,
    commitSecs: (t2 - t1) / 1000,
    batchCpu: cpuSince(cpu0, cpu1, who),
    commitCpu: cpuSince(cpu1, cpu2, who),
  };
}

/** The lines of one HTTP load: its time against the CLI's, then where the time and the CPU went. */
function httpLines(label: string, cli: number, t: HttpRunTimes): string[] {
  return [
    `  ${label.padEnd(28)} ${t.secs.toFixed(1)} s  ${(cli / t.secs).toFixed(2)}x pgland load (target >= 0.9x)`,
    `      batches ${t.batchSecs.toFixed(1)} s (CPU s: ${t.batchCpu}); commit ${t.commitSecs.toFixed(1)} s (CPU s: ${t.commitCpu})`,
  ];
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const size = Number(arg('--size', '1000000').replace(/M$/i, '000000').replace(/k$/i, '000'));
  const cacheDir = arg('--cache-dir', join(ROOT, '.pgland', 'bench'));
  mkdirSync(cacheDir, { recursive: true });
  const data = await dataset(cacheDir, size, 620, log);
  const first = await parts(data.first, BATCHES);
  const incr = await parts(data.incr, BATCHES);
  const eighth = await parts(data.first, 8);
  const server = await benchServer(process.argv.includes('--database-url') ? arg('--database-url', '') : undefined, cacheDir);
  postmaster = server.postmaster;
  const wanted = new Set(arg('--parts', 'ingest,write-through,concurrent,webhook').split(','));
  const out = { push: (...lines: string[]): void => void process.stdout.write(lines.join('\n') + '\n') };
  out.push(`service mode, ${size.toLocaleString('en')} contacts (server ${server.version}, ${server.kind}); each line one measurement of this run`);
  const schema = 'bench_service';
  const controlDir = join(cacheDir, `control-${process.pid}`);
  try {
    await admin(
      server.url,
      `DROP SCHEMA IF EXISTS ${schema} CASCADE`,
      'DROP SCHEMA IF EXISTS pgland_control CASCADE',
      'DROP SCHEMA IF EXISTS pgland_jobs CASCADE',
    );
    const config = join(cacheDir, 'service-config.json');
    writeFileSync(config, JSON.stringify({ url: server.url, sslmode: 'disable', schema }), { mode: 0o600 });

    // 1. pgland load and HTTP (plain, gzip) of the same files, first load then increment.
    const serve = await startServe(server.url, controlDir);
    const dest = (await api(serve, 'POST', '/destinations', { name: 'bench', config: { url: server.url, sslmode: 'disable', schema } })).id as string;
    if (wanted.has('ingest')) {
      // Each load starts after a checkpoint: none pays for the previous one's dirty pages.
      const afterCheckpoint = async <T>(load: () => T | Promise<T>): Promise<T> => {
        await admin(server.url, 'CHECKPOINT');
        return load();
      };
      const cliFirst = await afterCheckpoint(() => cliLoad(config, data.first.path, 'cli', cacheDir));
      const httpFirst = await afterCheckpoint(() => httpRun(serve, dest, 'http', first.plain, 'incremental', false));
      const gzFirst = await afterCheckpoint(() => httpRun(serve, dest, 'http-gz', first.gz, 'incremental', true));
      const cliIncr = await afterCheckpoint(() => cliLoad(config, data.incr.path, 'cli', cacheDir));
      const httpIncr = await afterCheckpoint(() => httpRun(serve, dest, 'http', incr.plain, 'incremental', false));
      const gzIncr = await afterCheckpoint(() => httpRun(serve, dest, 'http-gz', incr.gz, 'incremental', true));
      const ingestPeak = serve.peakMb();
      out.push(
        `  pgland load first load       ${cliFirst.secs.toFixed(1)} s  peak RSS ${cliFirst.rssMb} MB (CPU s: ${cliFirst.cpu})`,
        ...httpLines('HTTP first load (plain)', cliFirst.secs, httpFirst),
        ...httpLines('HTTP first load (gzip)', cliFirst.secs, gzFirst),
        `  pgland load increment (10%)  ${cliIncr.secs.toFixed(1)} s  peak RSS ${cliIncr.rssMb} MB (CPU s: ${cliIncr.cpu})`,
        ...httpLines('HTTP increment (plain)', cliIncr.secs, httpIncr),
        ...httpLines('HTTP increment (gzip)', cliIncr.secs, gzIncr),
        `  serve peak RSS over these    ${ingestPeak} MB (target <= 200 MB)`,
      );
    }

    // 2. Write-through latency on the landed table.
    const writeThrough = async (calls: number, per: number, from: number): Promise<number[]> => {
      const ms: number[] = [];
      for (let i = 0; i < calls; i++) {
        const records = Array.from({ length: per }, (_, k) => contact(from + i * per + k, 3));
        const t0 = performance.now();
        await api(serve, 'POST', `/destinations/${dest}/records`, { provider: 'bench', customer_id: 'http', object: 'crm_contacts', records });
        ms.push(performance.now() - t0);
      }
      return ms;
    };
    if (wanted.has('write-through')) {
      const cpu0 = cpuSample(serve);
      const one = await writeThrough(200, 1, 0);
      const cpu1 = cpuSample(serve);
      const hundred = await writeThrough(50, 100, 1000);
      const cpu2 = cpuSample(serve);
      out.push(
        `  write-through, 1 record      p50 ${pct(one, 50).toFixed(1)} ms  p99 ${pct(one, 99).toFixed(1)} ms (200 calls; target p50 < 20 ms; CPU s: ${cpuSince(cpu0, cpu1, ['serve', 'server'])})`,
        `  write-through, 100 records   p50 ${pct(hundred, 50).toFixed(1)} ms  p99 ${pct(hundred, 99).toFixed(1)} ms (50 calls; CPU s: ${cpuSince(cpu1, cpu2, ['serve', 'server'])})`,
      );
    }
    await serve.stop();
    if (!wanted.has('concurrent') && !wanted.has('webhook')) return;

    // 3. 8 concurrent runs of size/8 records, on a fresh process (its own peak RSS).
    // At the default limits: 4 uploads in flight per destination, the others told 429 to retry.
    if (wanted.has('concurrent')) {
      const serve8 = await startServe(server.url, controlDir);
      const t8 = performance.now();
      await Promise.all(eighth.plain.map((f, i) => httpRun(serve8, dest, `c8-${i + 1}`, [f], 'incremental', false)));
      const secs8 = (performance.now() - t8) / 1000;
      out.push(
        `  8 concurrent runs of ${(size / 8).toLocaleString('en')}   ${secs8.toFixed(1)} s, all succeeded; serve peak RSS ${serve8.peakMb()} MB (target <= 300 MB)`,
      );
      await serve8.stop();
    }
    if (!wanted.has('webhook')) return;

    // 4. A signed sync.requested to the start of its run (the source's first request), idle worker.
    const hits: number[] = [];
    const source = createServer((_req, res) => {
      hits.push(performance.now());
      res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(JSON.stringify(contact(5, 4)) + '\n');
    });
    source.listen(0, '127.0.0.1');
    await once(source, 'listening');
    const port = (source.address() as AddressInfo).port;
    const serveW = await startServe(server.url, controlDir, { PGLAND_INBOUND_WEBHOOK_SECRET: INBOUND, PGLAND_ALLOW_NETWORKS: '127.0.0.0/8' });
    const key = parseWebhookSecret(INBOUND);
    const lags: number[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 2500)); // the worker is idle, between polls
        const body = JSON.stringify({
          type: 'sync.requested',
          timestamp: new Date().toISOString(),
          data: {
            destination_id: dest,
            tenant: { provider: 'bench', customer_id: `hook-${i}` },
            object: 'crm_contacts',
            source: { type: 'url', url: `http://127.0.0.1:${port}/export` },
          },
        });
        const before = hits.length;
        const t0 = performance.now();
        const res = await fetch(serveW.url + '/webhooks/inbound', {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', ...signedHeaders(key, `msg_bench_${i}_${Date.now()}`, body) },
        });
        const answer = (await res.json()) as { action?: string };
        if (answer.action !== 'queued') throw new Error(`sync.requested: ${JSON.stringify(answer)}`);
        const deadline = Date.now() + 30_000;
        while (hits.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        if (hits.length === before) throw new Error('the requested run did not start');
        lags.push(hits[before]! - t0);
      }
    } finally {
      await serveW.stop();
      source.close();
    }
    out.push(
      `  sync.requested to run start  p50 ${pct(lags, 50).toFixed(0)} ms  max ${Math.max(...lags).toFixed(0)} ms (10 requests, idle worker; target < 1 s)`,
    );
  } finally {
    killServes();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
