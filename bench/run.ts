import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { contenderA, contenderB, contenderD, contenderPgland, type Contender, type Measurement, type RunContext } from './contenders.js';
import { dataset, type Dataset } from './dataset.js';
import { contenderBInto, contenderPglandInto } from './into-contenders.js';
import { changedInIncrement, contact, missingInFullRefresh } from './generate.js';
import { serverChildren } from './cpu.js';
import { parseOptions } from './options.js';
import { pgbouncerBinary } from './pgbouncer.js';
import { findPsql, psqlVersion } from './psql.js';
import { machine, memoryBySize, ratios, summarise, table, type Summary } from './report.js';
import { benchServer } from './server.js';
import { startBastion } from './bastion.js';
import { startLink, viaLink, type Link } from './link.js';

const log = (s: string): void => void process.stderr.write(s + '\n');

/** Live records that the full-refresh file leaves out: what a full refresh should mark deleted. */
function expectedDeletes(data: Dataset): number {
  let n = 0;
  for (let i = 0; i < data.size; i++) {
    if (missingInFullRefresh(i) && !contact(i, changedInIncrement(i) ? 2 : 1, data.recordSize).is_deleted) n++;
  }
  return n;
}

/** When and in what a Node child reached its peak RSS. */
function rssDetail(m: Measurement): string {
  const p = m.rss?.peak;
  const start = m.rss?.startRssMb === undefined ? '' : ` (${m.rss.startRssMb.toFixed(0)} MB before the load`;
  if (!p) return start ? start + ')' : '';
  return `${start}; peak ${p.s} s in: V8 heap ${p.heapUsed}/${p.heapTotal} MB, external ${p.external} MB, of which buffers ${p.arrayBuffers} MB)`;
}

/** Repetition r runs the contenders rotated by r, and reversed on odd repetitions, so that none always goes first. */
function orderFor<T>(list: readonly T[], r: number): T[] {
  const k = r % list.length;
  const rotated = [...list.slice(k), ...list.slice(0, k)];
  return r % 2 ? rotated.reverse() : rotated;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  const cacheDir = resolve(opts.cacheDir);
  mkdirSync(cacheDir, { recursive: true });
  const needPsql = opts.contenders.includes('a') || opts.contenders.includes('b') || opts.contenders.includes('b-into');
  const psql = needPsql ? findPsql() : undefined;

  const contenders: Contender[] = [];
  if (opts.contenders.includes('a')) contenders.push(contenderA);
  if (opts.contenders.includes('b')) contenders.push(contenderB);
  if (opts.contenders.includes('d')) contenders.push(contenderD);
  if (opts.contenders.includes('b-into')) contenders.push(contenderBInto);
  if (opts.contenders.includes('pgland-into')) contenders.push(contenderPglandInto);
  for (const viaSsh of [false, true]) {
    if (!opts.contenders.includes(viaSsh ? 'pgland-ssh' : 'pgland')) continue;
    if (opts.batchSizes.length === 0) contenders.push(contenderPgland(undefined, expectedDeletes, undefined, viaSsh));
    for (const b of opts.batchSizes) contenders.push(contenderPgland(b, expectedDeletes, undefined, viaSsh));
  }
  if (opts.contenders.includes('pooled')) {
    const pgbouncer = pgbouncerBinary();
    if (!pgbouncer) throw new Error('the pooled contender needs pgbouncer (apt-get install pgbouncer)');
    if (opts.batchSizes.length === 0) contenders.push(contenderPgland(undefined, expectedDeletes, pgbouncer));
    for (const b of opts.batchSizes) contenders.push(contenderPgland(b, expectedDeletes, pgbouncer));
  }

  const datasets: Dataset[] = [];
  for (const size of opts.sizes) for (const rs of opts.recordSize) datasets.push(await dataset(cacheDir, size, rs, log));

  const server = await benchServer(opts.databaseUrl, cacheDir);
  const pglandNodeArgs = [...opts.nodeFlags, ...(opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', resolve(opts.cpuProf)] : [])];
  await new Promise((r) => setTimeout(r, 1000)); // let the set-up connection's backend exit
  const bastion = opts.contenders.includes('pgland-ssh') ? await startBastion() : undefined;
  const ctx: RunContext = {
    url: server.url,
    loadUrl: server.url,
    psql,
    pglandNodeArgs,
    idleChildren: serverChildren(server.postmaster),
    ...(server.postmaster ? { postmaster: server.postmaster } : {}),
  };
  const results: Summary[] = [];
  const host = { ...machine(), ...(psql ? { psql: psqlVersion(psql) } : {}) };
  log(`PostgreSQL ${server.version} (${server.kind}); ${host.cpus} cores, ${host.ramGb} GB RAM; Node ${host.node}` + (psql ? `; ${host.psql}` : ''));
  log(`pgland's children run with Node flags: ${opts.nodeFlags.length > 0 ? opts.nodeFlags.join(' ') : "none (Node's defaults)"}`);
  const serverAt = new URL(server.url);
  const links: Link[] = [];
  try {
    for (const data of datasets)
      for (const rtt of opts.linkRtt) {
        // A link of its own per RTT, to the server and (for pgland-ssh) to the bastion.
        const link = rtt > 0 ? await startLink({ host: serverAt.hostname, port: Number(serverAt.port) }, rtt) : undefined;
        const sshLink = rtt > 0 && bastion ? await startLink({ host: '127.0.0.1', port: bastion.port }, rtt) : undefined;
        links.push(...[link, sshLink].filter((l): l is Link => l !== undefined));
        ctx.loadUrl = link ? viaLink(server.url, link) : server.url;
        if (bastion) {
          ctx.ssh = {
            url: server.url,
            sshdPid: bastion.pid,
            tunnel: {
              host: '127.0.0.1',
              port: sshLink?.port ?? bastion.port,
              user: 'root',
              private_key: bastion.privateKey,
              host_key_fingerprint: bastion.fingerprint,
            },
          };
        }
        const where = rtt > 0 ? `, over a link with a round-trip time of ${rtt} ms` : '';
        const measurements: Measurement[] = [];
        for (let r = 0; r < opts.reps; r++) {
          for (const c of orderFor(contenders, r)) {
            for (const m of await c.run(ctx, data)) {
              log(
                `  ${data.size}×${data.recordSize} B${rtt > 0 ? ` RTT ${rtt} ms` : ''} rep ${r + 1}/${opts.reps} ${m.name}: ${(m.ms / 1000).toFixed(2)} s` +
                  (m.maxRssMb ? `, peak RSS ${m.maxRssMb.toFixed(0)} MB${rssDetail(m)}` : '') +
                  (m.detail?.sshdCpuS !== undefined ? `, sshd CPU ${(m.detail.sshdCpuS as number).toFixed(2)} s` : ''),
              );
              measurements.push(m);
            }
          }
        }
        for (const l of [link, sshLink]) await l?.stop();
        const summaries = summarise(data.size, data.recordSize, measurements, rtt);
        results.push(...summaries);
        const names = new Set(summaries.map((s) => s.name.split(' ')[0]!).filter((n) => n.startsWith('pgland') && n !== 'pgland-into'));
        process.stdout.write(
          `\n${data.size.toLocaleString('en-US')} records of about ${data.recordSize} bytes${where}, ${opts.reps} repetitions, medians:\n\n${table(summaries)}\n\n`,
        );
        for (const phase of ['first', 'incr', 'full']) {
          const direct = summaries.find((x) => x.name === `pgland ${phase}`);
          const tunnelled = summaries.find((x) => x.name === `pgland-ssh ${phase}`);
          if (direct && tunnelled) process.stdout.write(`  pgland-ssh ${phase} / pgland ${phase}: ${(tunnelled.rowsPerSec / direct.rowsPerSec).toFixed(2)}\n`);
        }
        for (const phase of ['first', 'incr']) {
          const b = summaries.find((x) => x.name === `B-into ${phase}`);
          const p = summaries.find((x) => x.name === `pgland-into ${phase}`);
          if (b && p) process.stdout.write(`  pgland-into ${phase} / B-into ${phase}: ${(p.rowsPerSec / b.rowsPerSec).toFixed(2)}\n`);
        }
        for (const name of names) {
          for (const [label, v] of Object.entries(ratios(summaries, name))) {
            process.stdout.write(`  ${label.replace(/^pgland/, name)}: ${v.toFixed(2)}\n`);
          }
          // Through the pooler beside direct: above 1 means the pooled loads were faster.
          const direct = name.replace(/^pgland-pooled/, 'pgland');
          for (const mode of direct === name ? [] : ['first', 'incr', 'full']) {
            const pooled = summaries.find((s) => s.name === `${name} ${mode}`)?.rowsPerSec;
            const plain = summaries.find((s) => s.name === `${direct} ${mode}`)?.rowsPerSec;
            if (pooled && plain) process.stdout.write(`  ${name} ${mode} / ${direct} ${mode}: ${(pooled / plain).toFixed(2)}\n`);
          }
          const full = summaries.find((s) => s.name === `${name} full`);
          if (full?.detail) {
            const { deletesApplied, deletesExpected } = full.detail as { deletesApplied: number; deletesExpected: number };
            process.stdout.write(
              `  ${name} full refresh: ${deletesApplied} of ${deletesExpected} missing records deleted` +
                (deletesApplied === 0 ? ' (full-refresh deletes not implemented: measured as a plain upsert of 99% of records)' : '') +
                '\n',
            );
          }
        }
      }
  } finally {
    for (const l of links) await l.stop();
    await bastion?.stop();
    await server.stop();
  }
  const memory = memoryBySize(results);
  if (memory.length > 0) process.stdout.write(`\nMemory:\n${memory.join('\n')}\n`);
  if (opts.out) {
    const report = {
      when: new Date().toISOString(),
      machine: host,
      server: { kind: server.kind, settings: server.settings },
      options: { ...opts, databaseUrl: opts.databaseUrl ? '[given]' : undefined },
      results,
    };
    writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${opts.out}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
