import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { qualify } from '../src/sql/ident.js';
import { copyScriptA, landedTableSql, tenantDefaultsSql } from './baselines.js';
import { parentPid, serverChildren, serverCpuSeconds } from './cpu.js';
import { CONTACTS } from './csv.js';
import { dataset } from './dataset.js';
import { findPsql, runPsql } from './psql.js';
import { admin, benchServer } from './server.js';

/*
 * Reading benchmark (docs/benchmarks.md, "Reading"): the bench's contacts
 * table (landed-shaped crm_contacts, filled by a psql \copy of the CSV)
 * read as NDJSON by `pgland read` against `psql \copy … TO STDOUT`, and
 * moved to another table by `pgland read | pgland load` against
 * `psql \copy … TO STDOUT | psql \copy … FROM STDIN`. Wall time, peak
 * RSS and client CPU (GNU time) of each, one repetition, and the server's
 * CPU. The table has a unique index on (cursor, key), as docs/reading.md
 * advises (the pair is unique in the bench's one-tenant table, though its
 * primary key is (tenant, id)).
 *
 *   node dist/bench/read.js [--size 1M] [--database-url URL [--server-cpu]] [--cache-dir D] [--read-only] [--split] [--keep-table] [--paged] [--cli MAIN_JS]
 *
 * --read-only skips the read | load pair; --split also runs each side of
 * the pipe alone (the read into a file, then the load of that file), to say
 * which side costs what; --keep-table reuses bench_read's table when it
 * already holds the size's rows (for repeated runs); --paged reads page by
 * page (pgland read --paged) instead of in one snapshot. The server's CPU
 * is measured for the embedded server, and for --database-url only with
 * --server-cpu: that server runs on this machine and nothing else uses it
 * (its whole process tree is counted).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Measured {
  secs: number;
  rssMb: number;
  /** User plus system CPU seconds of the pipeline's client processes (psql or Node; not the server). */
  cpu: number;
  /** The server's CPU seconds (all its processes), when it is measured. */
  serverCpu: number | undefined;
  /** The 1-minute load average when the measurement ended (the machine may be shared). */
  load: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The server whose CPU is measured: its postmaster, and how many children it has between connections. */
interface Postmaster {
  pid: number;
  idle: number;
}

/** Until the pipeline's backends have exited (their CPU is then in the postmaster's account), at most 2 s. */
async function quiet(server: Postmaster | undefined): Promise<void> {
  for (let i = 0; server && i < 40 && serverChildren(server.pid) > server.idle; i++) await sleep(50);
}

/**
 * How many children the postmaster has with no connection open: the fewest
 * seen over a second, since the backend of the last preparation statement
 * may still be exiting (counting it would end quiet() before the measured
 * backends have exited).
 */
async function idleChildren(pid: number): Promise<number> {
  let idle = serverChildren(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(50);
    idle = Math.min(idle, serverChildren(pid));
  }
  return idle;
}

/**
 * Runs a shell pipeline under GNU time: wall seconds, the largest RSS of its
 * processes in MB, their CPU seconds; and the server's CPU seconds over it.
 */
async function measure(script: string, dir: string, label: string, server: Postmaster | undefined): Promise<Measured> {
  const file = join(dir, `${label}.time`);
  await quiet(server);
  const before = serverCpuSeconds(server?.pid);
  execFileSync('/usr/bin/time', ['-o', file, '-f', '%e %M %U %S', 'sh', '-c', `set -e; ${script}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await quiet(server);
  const after = serverCpuSeconds(server?.pid);
  const [secs, kb, user, sys] = readFileSync(file, 'utf8').trim().split(' ').map(Number);
  const serverCpu = before !== undefined && after !== undefined ? after - before : undefined;
  return { secs: secs!, rssMb: Math.round(kb! / 1024), cpu: user! + sys!, serverCpu, load: loadavg()[0]! };
}

/** The postmaster of a server on this machine: the parent of this connection's backend (undefined when /proc does not have it). */
async function localPostmaster(url: string): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const ppid = parentPid(rows[0]!.pid);
    return ppid !== undefined && ppid > 1 ? ppid : undefined;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const size = Number(arg('--size', '1000000').replace(/M$/i, '000000').replace(/k$/i, '000'));
  const cacheDir = arg('--cache-dir', join(ROOT, '.pgland', 'bench'));
  mkdirSync(cacheDir, { recursive: true });
  const data = await dataset(cacheDir, size, 620, (s) => process.stderr.write(s + '\n'));
  const server = await benchServer(process.argv.includes('--database-url') ? arg('--database-url', '') : undefined, cacheDir);
  const psql = findPsql();
  try {
    const src = 'bench_read';
    const table = qualify(src, CONTACTS.table);
    if (!(process.argv.includes('--keep-table') && (await rowsIn(server.url, table)) === size)) {
      await admin(server.url, ...landedTableSql(src), tenantDefaultsSql(src));
      await runPsql(psql, server.url, copyScriptA(src, data.firstCsv.path));
      // The index docs/reading.md recommends: each page is an index range scan, not a sort of the table.
      await admin(server.url, `CREATE UNIQUE INDEX ON ${table} (_pgland_last_modified_at, id)`, 'ANALYZE');
    }
    await admin(server.url, ...landedTableSql('bench_read_copy'), `DROP SCHEMA IF EXISTS bench_read_load CASCADE`, 'CHECKPOINT');
    const pid = server.postmaster ?? (process.argv.includes('--server-cpu') ? await localPostmaster(server.url) : undefined);
    const postmaster = pid === undefined ? undefined : { pid, idle: await idleChildren(pid) };
    const config = join(cacheDir, 'read-config.json');
    writeFileSync(config, JSON.stringify({ url: server.url, sslmode: 'disable', schema: 'bench_read_load' }), { mode: 0o600 });
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    // --cli: another build's dist/src/cli/main.js (to measure before and after a change on the same table).
    const cli = arg('--cli', join(ROOT, 'dist', 'src', 'cli', 'main.js'));
    const node = `${q(process.execPath)} --max-semi-space-size=4 ${q(cli)}`;
    const read = `${node} read --config ${q(config)} --table ${q(`${src}.crm_contacts`)} --key id --cursor _pgland_last_modified_at${process.argv.includes('--paged') ? ' --paged' : ''}`;
    const schemaFile = join(cacheDir, 'read-schema.json');
    execFileSync('sh', ['-c', `${read} --print-schema > ${q(schemaFile)}`]);
    const psqlOut = `${q(psql)} -X -q -d ${q(server.url)} -c ${q(`\\copy ${table} TO STDOUT`)}`;
    const psqlIn = `${q(psql)} -X -q -d ${q(server.url)} -c ${q(`\\copy ${qualify('bench_read_copy', CONTACTS.table)} FROM STDIN`)}`;
    const load = `${node} load --config ${q(config)} --provider pg --customer bench --kind custom --object contacts --schema-file ${q(schemaFile)} --input - > /dev/null`;

    const rows = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en')} rows/s`;
    const serverCpu = (m: Measured): string => (m.serverCpu === undefined ? '' : `  server CPU ${m.serverCpu.toFixed(1)} s`);
    const line = (label: string, m: Measured, extra = ''): string =>
      `  ${label.padEnd(36)}${m.secs.toFixed(1)} s  ${rows(size, m.secs)}  CPU ${m.cpu.toFixed(1)} s${serverCpu(m)}  peak RSS ${m.rssMb} MB  load ${m.load.toFixed(1)}${extra}`;
    process.stdout.write(`reading ${size.toLocaleString('en')} rows of ${src}.crm_contacts (server ${server.version}, ${server.kind})\n`);
    const psqlRead = await measure(`${psqlOut} > /dev/null`, cacheDir, 'psql-read', postmaster);
    process.stdout.write(line('psql \\copy TO STDOUT', psqlRead) + '\n');
    // The same rows in the order a read needs them: on a table whose cursor does not follow its physical order, an index scan.
    const ordered = `\\copy (SELECT * FROM ${table} ORDER BY _pgland_last_modified_at, id) TO STDOUT`;
    const psqlOrdered = await measure(`${q(psql)} -X -q -d ${q(server.url)} -c ${q(ordered)} > /dev/null`, cacheDir, 'psql-ordered', postmaster);
    process.stdout.write(line('psql \\copy (… ORDER BY) TO STDOUT', psqlOrdered) + '\n');
    const pglandRead = await measure(`${read} > /dev/null`, cacheDir, 'pgland-read', postmaster);
    process.stdout.write(
      line(
        'pgland read (NDJSON)',
        pglandRead,
        `  ratio ${(psqlRead.secs / pglandRead.secs).toFixed(2)}x (target >= 0.8x), ${(psqlOrdered.secs / pglandRead.secs).toFixed(2)}x of the ordered copy`,
      ) + '\n',
    );
    if (process.argv.includes('--read-only')) return;
    const psqlMove = await measure(`${psqlOut} | ${psqlIn}`, cacheDir, 'psql-move', postmaster);
    process.stdout.write(line('psql \\copy out | \\copy in', psqlMove) + '\n');
    // Untimed: the copy's vacuum and analyze (a million rows inserted start autovacuum), so that the next step is not billed for them.
    await admin(server.url, `VACUUM ANALYZE ${qualify('bench_read_copy', CONTACTS.table)}`, `DROP SCHEMA IF EXISTS bench_read_load CASCADE`, 'CHECKPOINT');
    const pglandMove = await measure(`${read} | ${load}`, cacheDir, 'pgland-move', postmaster);
    process.stdout.write(
      line('pgland read | pgland load', pglandMove, `  ratio ${(psqlMove.secs / pglandMove.secs).toFixed(2)}x (target >= 0.5x; RSS of the largest process)`) +
        '\n',
    );
    if (process.argv.includes('--split')) {
      // Each side of the pipe alone: the read into a file, then the load of that file into a fresh schema.
      const file = join(cacheDir, 'read-output.ndjson');
      try {
        const readSide = await measure(`${read} > ${q(file)}`, cacheDir, 'pgland-read-file', postmaster);
        process.stdout.write(line('  its read, into a file', readSide) + '\n');
        await admin(server.url, `DROP SCHEMA IF EXISTS bench_read_load CASCADE`, 'CHECKPOINT');
        const loadSide = await measure(load.replace('--input -', `--input ${q(file)}`), cacheDir, 'pgland-load-file', postmaster);
        process.stdout.write(line('  its load, of that file', loadSide) + '\n');
      } finally {
        rmSync(file, { force: true });
      }
    }
  } finally {
    await server.stop();
  }
}

/** How many rows the table holds; -1 when it does not exist. */
async function rowsIn(url: string, table: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
  } catch {
    return -1;
  } finally {
    await client.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
