import pg from 'pg';
import { PGLAND_COLUMNS as P } from '../src/catalog/definition.js';
import { qualify, quoteIdent as q } from '../src/sql/ident.js';
import { copyScriptA, landedTableSql, mergeScriptB, tenantDefaultsSql } from './baselines.js';
import { runChild, type ChildResult } from './child.js';
import { childrenCpuSeconds, serverChildren, serverCpuSeconds, treeCpuSeconds } from './cpu.js';
import { CONTACTS } from './csv.js';
import type { DataFile, Dataset } from './dataset.js';
import type { NaiveParams } from './naive-child.js';
import type { BenchSshTunnel, PglandParams } from './pgland-child.js';
import { startPgbouncer, type Pgbouncer } from './pgbouncer.js';
import { runPsql } from './psql.js';
import { admin } from './server.js';

/** One timed load. */
export interface Measurement {
  /** e.g. "A", "B incr", "pgland first". */
  name: string;
  ms: number;
  rows: number;
  /** Size of the file this contender read (CSV for A and B, NDJSON otherwise). */
  inputBytes: number;
  maxRssMb?: number;
  /** For a Node child: its peak RSS before the load, and when and in what the peak was reached. */
  rss?: Pick<ChildResult, 'startRssMb' | 'peak'>;
  /** CPU seconds of the client (psql, or the Node process during its load). */
  clientCpuS?: number;
  /** CPU seconds of the whole server during the load (embedded server only). */
  serverCpuS?: number;
  detail?: Record<string, unknown>;
}

export interface RunContext {
  /** The server, directly: for the untimed set-up (tables, VACUUM, CHECKPOINT). */
  url: string;
  /** What the timed loads connect to: the same server, or through a link with a round-trip time (bench/link.ts). */
  loadUrl: string;
  /**
   * For pgland-ssh: pgland's own SSH tunnel to a local OpenSSH sshd (through
   * the same link), and the server's URL as the bastion reaches it.
   */
  ssh?: { tunnel: BenchSshTunnel; url: string; sshdPid: number };
  psql: string | undefined;
  /** The embedded server's postmaster, for its CPU time; undefined for --database-url. */
  postmaster?: number;
  /** How many processes the postmaster has when no client is connected. */
  idleChildren: number;
  /** Node flags for pgland's child (e.g. --cpu-prof). */
  pglandNodeArgs: string[];
}

export interface Contender {
  name: string;
  /** Runs this contender's loads for one repetition, in order (an increment needs its first load). */
  run(ctx: RunContext, data: Dataset): Promise<Measurement[]>;
}

/** Untimed: flush what the previous load dirtied, so that its checkpoint is not billed to the next one. */
export async function settle(url: string, table?: string): Promise<void> {
  await admin(url, ...(table ? [`VACUUM ANALYZE ${table}`] : []), 'CHECKPOINT');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Until the last connection's backend has exited (its CPU is then in the postmaster's account), at most 2 s. */
async function quiet(ctx: RunContext): Promise<void> {
  for (let i = 0; i < 40 && serverChildren(ctx.postmaster) > ctx.idleChildren; i++) await sleep(50);
}

/** Runs one load and adds the server's CPU time to its measurement (and psql's, for the psql contenders). */
export async function withCpu(ctx: RunContext, load: () => Promise<Measurement>): Promise<Measurement> {
  await quiet(ctx);
  const server0 = serverCpuSeconds(ctx.postmaster);
  const children0 = childrenCpuSeconds();
  const m = await load();
  await quiet(ctx);
  const server1 = serverCpuSeconds(ctx.postmaster);
  const children1 = childrenCpuSeconds();
  if (server0 !== undefined && server1 !== undefined) m.serverCpuS = server1 - server0;
  if (m.clientCpuS === undefined && children0 !== undefined && children1 !== undefined) m.clientCpuS = children1 - children0;
  return m;
}

export function psqlLoad(ctx: RunContext, name: string, script: string, file: DataFile): Promise<Measurement> {
  return withCpu(ctx, async () => ({ name, ms: await runPsql(ctx.psql!, ctx.loadUrl, script), rows: file.rows, inputBytes: file.bytes }));
}

export const contenderA: Contender = {
  name: 'a',
  async run(ctx, data) {
    const schema = 'bench_a';
    await admin(ctx.url, ...landedTableSql(schema), tenantDefaultsSql(schema));
    await settle(ctx.url);
    return [await psqlLoad(ctx, 'A', copyScriptA(schema, data.firstCsv.path), data.firstCsv)];
  },
};

export const contenderB: Contender = {
  name: 'b',
  async run(ctx, data) {
    const schema = 'bench_b';
    await admin(ctx.url, ...landedTableSql(schema));
    await settle(ctx.url);
    const first = await psqlLoad(ctx, 'B first', mergeScriptB(schema, data.firstCsv.path), data.firstCsv);
    await settle(ctx.url, qualify(schema, CONTACTS.table));
    const incr = await psqlLoad(ctx, 'B incr', mergeScriptB(schema, data.incrCsv.path), data.incrCsv);
    return [first, incr];
  },
};

export const contenderD: Contender = {
  name: 'd',
  async run(ctx, data) {
    const schema = 'bench_d';
    await admin(ctx.url, ...landedTableSql(schema));
    await settle(ctx.url);
    const params: NaiveParams = { url: ctx.loadUrl, schema, file: data.first.path };
    return [
      await withCpu(ctx, async () => {
        const r = await runChild('./naive-child.js', params);
        return {
          name: 'D',
          ms: r.ms,
          rows: r.rows,
          inputBytes: data.first.bytes,
          maxRssMb: r.maxRssMb,
          rss: { startRssMb: r.startRssMb, peak: r.peak },
          clientCpuS: r.cpuMs / 1000,
        };
      }),
    ];
  },
};

/** Live (not deleted) rows: a full refresh that applies deletes lowers the count by the missing records. */
async function liveRows(url: string, table: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE NOT ${q(P.isDeleted)}`);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/**
 * pgland through its library API, in a child process per load: a first load
 * into an empty schema, an increment with 10% of records changed, then a full
 * refresh with 1% of records missing. `expectedDeletes` is how many live
 * records the full refresh should mark deleted. With `pgbouncer` (its
 * binary), the loads go through a PgBouncer in transaction mode started in
 * front of the server for this contender: "pgland-pooled". With `viaSsh`,
 * through pgland's own SSH tunnel (ctx.ssh): "pgland-ssh", the bastion's CPU
 * reported with each load.
 */
export function contenderPgland(batchSize: number | undefined, expectedDeletes: (data: Dataset) => number, pgbouncer?: string, viaSsh = false): Contender {
  const label = (pgbouncer ? 'pgland-pooled' : viaSsh ? 'pgland-ssh' : 'pgland') + (batchSize ? `@${batchSize}` : '');
  return {
    name: label,
    async run(ctx, data) {
      if (viaSsh) {
        if (!ctx.ssh) throw new Error('pgland-ssh needs the bench to start sshd (run.ts)');
        return loads(ctx, data, label, ctx.ssh.url, batchSize, expectedDeletes, ctx.ssh);
      }
      const bouncer: Pgbouncer | undefined = pgbouncer ? await startPgbouncer(pgbouncer, ctx.url, { poolMode: 'transaction' }) : undefined;
      try {
        return await loads(ctx, data, label, bouncer ? bouncer.through(ctx.url) : ctx.loadUrl, batchSize, expectedDeletes);
      } finally {
        await bouncer?.stop();
      }
    },
  };
}

/**
 * The three loads of a pgland contender, each connecting to `loadUrl` (the
 * server's, through the link or a pooler in front of it; or, with `ssh`, the
 * server as the bastion reaches it, through pgland's tunnel).
 */
async function loads(
  ctx: RunContext,
  data: Dataset,
  label: string,
  loadUrl: string,
  batchSize: number | undefined,
  expectedDeletes: (data: Dataset) => number,
  ssh?: NonNullable<RunContext['ssh']>,
): Promise<Measurement[]> {
  const schema = ssh ? 'bench_pgland_ssh' : 'bench_pgland';
  const table = qualify(schema, CONTACTS.table);
  await admin(ctx.url, `DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`);
  await settle(ctx.url);
  const load = async (mode: 'first' | 'incr' | 'full', file: DataFile): Promise<Measurement> => {
    const params: PglandParams = {
      url: loadUrl,
      schema,
      file: file.path,
      mode: mode === 'full' ? 'full' : 'incremental',
      ...(batchSize ? { batchSize } : {}),
      ...(ssh ? { sshTunnel: ssh.tunnel } : {}),
    };
    const sshd0 = ssh ? treeCpuSeconds(ssh.sshdPid) : undefined;
    const m = await withCpu(ctx, async () => {
      const r = await runChild('./pgland-child.js', params, ctx.pglandNodeArgs);
      const m: Measurement = {
        name: `${label} ${mode}`,
        ms: r.ms,
        rows: r.rows,
        inputBytes: file.bytes,
        maxRssMb: r.maxRssMb,
        rss: { startRssMb: r.startRssMb, peak: r.peak },
        clientCpuS: r.cpuMs / 1000,
      };
      return r.detail ? { ...m, detail: r.detail } : m;
    });
    const sshd1 = ssh ? treeCpuSeconds(ssh.sshdPid) : undefined;
    if (sshd0 !== undefined && sshd1 !== undefined) m.detail = { ...m.detail, sshdCpuS: sshd1 - sshd0 };
    return m;
  };
  const first = await load('first', data.first);
  await settle(ctx.url, table);
  const incr = await load('incr', data.incr);
  await settle(ctx.url, table);
  const liveBefore = await liveRows(ctx.url, table);
  const full = await load('full', data.full);
  full.detail = { ...full.detail, deletesExpected: expectedDeletes(data), deletesApplied: liveBefore - (await liveRows(ctx.url, table)) };
  return [first, incr, full];
}
