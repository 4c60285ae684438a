import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
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
import { dataset, type DataFile } from './dataset.js';
import { contact } from './generate.js';
import { admin, benchServer } from './server.js';

/*
 * Service benchmark (docs/benchmarks.md, "Service mode"): in one run, on one
 * server, the same files landed by `pgland load` and over HTTP by `pgland
 * serve` (10 PUT batches then a commit; plain and gzip), first load and 10%
 * increment, each on its own tenant of crm_contacts; serve's peak RSS; 8
 * concurrent HTTP runs of size/8 records (8 tenants); write-through latency
 * (1 and 100 records); a signed sync.requested to the start of its run.
 *
 *   node dist/bench/service.js [--size 1M] [--database-url URL] [--cache-dir D]
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const NODE_FLAGS = ['--max-semi-space-size=4'];
const BATCHES = 10;
const TOKEN = 'bench-' + randomBytes(12).toString('hex');
const INBOUND = 'whsec_' + randomBytes(32).toString('base64');
/** One key for every serve process of the run: they share the control database's sealed secrets. */
const SECRET_KEY = randomBytes(32).toString('base64');
/** Serve processes still running, stopped however the run ends. */
const serves = new Set<ChildProcess>();

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const log = (s: string): void => void process.stderr.write(s + '\n');
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `pgland load` of a file under GNU time: wall seconds and peak RSS. */
function cliLoad(config: string, file: string, customer: string, dir: string): { secs: number; rssMb: number } {
  const out = join(dir, 'cli.time');
  const cmd = `${q(process.execPath)} ${NODE_FLAGS.join(' ')} ${q(CLI)} load --config ${q(config)} --provider bench --customer ${q(customer)} --object crm_contacts --input ${q(file)} > /dev/null`;
  execFileSync('/usr/bin/time', ['-o', out, '-f', '%e %M', 'sh', '-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PGLAND_LOG_LEVEL: 'warn' } });
  const [secs, kb] = readFileSync(out, 'utf8').trim().split(' ');
  return { secs: Number(secs), rssMb: Math.round(Number(kb) / 1024) };
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

interface Serve {
  url: string;
  child: ChildProcess;
  /** Peak RSS so far (VmHWM), MB. */
  peakMb(): number;
  stop(): Promise<void>;
}

async function startServe(controlUrl: string, dataDir: string, env: Record<string, string> = {}): Promise<Serve> {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--port', '0', '--control-url', controlUrl, '--data-dir', dataDir, '--concurrency', '8'], {
    env: { ...process.env, PGLAND_SECRET_KEY: SECRET_KEY, PGLAND_API_TOKEN: TOKEN, PGLAND_LOG_LEVEL: 'info', PGLAND_JOBS_POLL_INTERVAL_S: '2', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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

/** The fields of the API's answers the benchmark reads. */
interface Answer {
  id: string;
  status?: string;
  error?: string | null;
}

async function api(s: Serve, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
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

/** One HTTP run: open, PUT each part in turn, commit naming them; wall seconds. */
async function httpRun(s: Serve, dest: string, customer: string, files: string[], mode: 'incremental' | 'full', gzip: boolean): Promise<number> {
  const t0 = performance.now();
  const run = await api(s, 'POST', '/runs', { destination_id: dest, provider: 'bench', customer_id: customer, object: 'crm_contacts', mode });
  for (let i = 0; i < files.length; i++) {
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
    // As a platform would: a batch refused for now (429 with Retry-After, 503) is sent again.
    for (let attempt = 1; ; attempt++) {
      try {
        await api(s, 'PUT', `/runs/${run.id}/batches/${i + 1}`, createReadStream(files[i]!), headers);
        break;
      } catch (err) {
        if (attempt >= 100 || !/: (429|503) /.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  const done = await api(s, 'POST', `/runs/${run.id}/commit`, { batches: files.length });
  if (done.status !== 'succeeded') throw new Error(`run ${run.id} ended ${done.status}: ${done.error}`);
  return (performance.now() - t0) / 1000;
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
  const out = { push: (...lines: string[]): void => void process.stdout.write(lines.join('\n') + '\n') };
  out.push(`service mode, ${size.toLocaleString('en')} contacts (server ${server.version}, ${server.kind}); each line one measurement of this run`);
  const schema = 'bench_service';
  const controlDir = join(cacheDir, `control-${process.pid}`);
  try {
    await admin(server.url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`, 'DROP SCHEMA IF EXISTS pgland_control CASCADE', 'DROP SCHEMA IF EXISTS pgland_jobs CASCADE');
    const config = join(cacheDir, 'service-config.json');
    writeFileSync(config, JSON.stringify({ url: server.url, sslmode: 'disable', schema }), { mode: 0o600 });

    // 1. pgland load and HTTP (plain, gzip) of the same files, first load then increment.
    const serve = await startServe(server.url, controlDir);
    const dest = (await api(serve, 'POST', '/destinations', { name: 'bench', config: { url: server.url, sslmode: 'disable', schema } })).id as string;
    await admin(server.url, 'CHECKPOINT');
    const cliFirst = cliLoad(config, data.first.path, 'cli', cacheDir);
    await admin(server.url, 'CHECKPOINT');
    const httpFirst = await httpRun(serve, dest, 'http', first.plain, 'incremental', false);
    await admin(server.url, 'CHECKPOINT');
    const gzFirst = await httpRun(serve, dest, 'http-gz', first.gz, 'incremental', true);
    await admin(server.url, 'CHECKPOINT');
    const cliIncr = cliLoad(config, data.incr.path, 'cli', cacheDir);
    await admin(server.url, 'CHECKPOINT');
    const httpIncr = await httpRun(serve, dest, 'http', incr.plain, 'incremental', false);
    await admin(server.url, 'CHECKPOINT');
    const gzIncr = await httpRun(serve, dest, 'http-gz', incr.gz, 'incremental', true);
    const ingestPeak = serve.peakMb();
    const ratio = (cli: number, http: number): string => `${(cli / http).toFixed(2)}x pgland load (target >= 0.9x)`;
    out.push(
      `  pgland load first load       ${cliFirst.secs.toFixed(1)} s  peak RSS ${cliFirst.rssMb} MB`,
      `  HTTP first load (plain)      ${httpFirst.toFixed(1)} s  ${ratio(cliFirst.secs, httpFirst)}`,
      `  HTTP first load (gzip)       ${gzFirst.toFixed(1)} s  ${ratio(cliFirst.secs, gzFirst)}`,
      `  pgland load increment (10%)  ${cliIncr.secs.toFixed(1)} s  peak RSS ${cliIncr.rssMb} MB`,
      `  HTTP increment (plain)       ${httpIncr.toFixed(1)} s  ${ratio(cliIncr.secs, httpIncr)}`,
      `  HTTP increment (gzip)        ${gzIncr.toFixed(1)} s  ${ratio(cliIncr.secs, gzIncr)}`,
      `  serve peak RSS over these    ${ingestPeak} MB (target <= 200 MB)`,
    );

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
    const one = await writeThrough(200, 1, 0);
    const hundred = await writeThrough(50, 100, 1000);
    out.push(
      `  write-through, 1 record      p50 ${pct(one, 50).toFixed(1)} ms  p99 ${pct(one, 99).toFixed(1)} ms (200 calls; target p50 < 20 ms)`,
      `  write-through, 100 records   p50 ${pct(hundred, 50).toFixed(1)} ms  p99 ${pct(hundred, 99).toFixed(1)} ms (50 calls)`,
    );
    await serve.stop();

    // 3. 8 concurrent runs of size/8 records, on a fresh process (its own peak RSS).
    // At the default limits: 4 uploads in flight per destination, the others told 429 to retry.
    const serve8 = await startServe(server.url, controlDir);
    const t8 = performance.now();
    await Promise.all(eighth.plain.map((f, i) => httpRun(serve8, dest, `c8-${i + 1}`, [f], 'incremental', false)));
    const secs8 = (performance.now() - t8) / 1000;
    out.push(`  8 concurrent runs of ${(size / 8).toLocaleString('en')}   ${secs8.toFixed(1)} s, all succeeded; serve peak RSS ${serve8.peakMb()} MB (target <= 300 MB)`);
    await serve8.stop();

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
          data: { destination_id: dest, tenant: { provider: 'bench', customer_id: `hook-${i}` }, object: 'crm_contacts', source: { type: 'url', url: `http://127.0.0.1:${port}/export` } },
        });
        const before = hits.length;
        const t0 = performance.now();
        const res = await fetch(serveW.url + '/webhooks/inbound', { method: 'POST', body, headers: { 'content-type': 'application/json', ...signedHeaders(key, `msg_bench_${i}_${Date.now()}`, body) } });
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
    out.push(`  sync.requested to run start  p50 ${pct(lags, 50).toFixed(0)} ms  max ${Math.max(...lags).toFixed(0)} ms (10 requests, idle worker; target < 1 s)`);
  } finally {
    for (const c of serves) c.kill('SIGKILL');
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
