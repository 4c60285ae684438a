import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { qualify } from '../src/sql/ident.js';
import { copyScriptA, landedTableSql, tenantDefaultsSql } from './baselines.js';
import { CONTACTS } from './csv.js';
import { dataset } from './dataset.js';
import { findPsql, runPsql } from './psql.js';
import { admin, benchServer } from './server.js';

/*
 * Reading benchmark (docs/benchmarks.md, "Reading"): the bench's contacts
 * table (landed-shaped crm_contacts, filled by a psql \copy of the CSV)
 * read as NDJSON by `pgland read` against `psql \copy … TO STDOUT`, and
 * moved to another table by `pgland read | pgland load` against
 * `psql \copy … TO STDOUT | psql \copy … FROM STDIN`. Wall time and peak
 * RSS (GNU time) of each, one repetition. The table has an index on
 * (cursor, key), as docs/reading.md advises.
 *
 *   node dist/bench/read.js [--size 1M] [--database-url URL] [--cache-dir D]
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Runs a shell pipeline under GNU time: wall seconds, and the largest RSS of its processes in MB. */
function measure(script: string, dir: string, label: string): { secs: number; rssMb: number } {
  const file = join(dir, `${label}.time`);
  execFileSync('/usr/bin/time', ['-o', file, '-f', '%e %M', 'sh', '-c', `set -e; ${script}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const [secs, kb] = readFileSync(file, 'utf8').trim().split(' ');
  return { secs: Number(secs), rssMb: Math.round(Number(kb) / 1024) };
}

async function main(): Promise<void> {
  const size = Number(arg('--size', '1000000').replace(/M$/i, '000000').replace(/k$/i, '000'));
  const cacheDir = arg('--cache-dir', join(ROOT, '.pgland', 'bench'));
  mkdirSync(cacheDir, { recursive: true });
  const data = await dataset(cacheDir, size, (s) => process.stderr.write(s + '\n'));
  const server = await benchServer(process.argv.includes('--database-url') ? arg('--database-url', '') : undefined, cacheDir);
  const psql = findPsql();
  try {
    const src = 'bench_read';
    await admin(server.url, ...landedTableSql(src), tenantDefaultsSql(src));
    await runPsql(psql, server.url, copyScriptA(src, data.firstCsv.path));
    const table = qualify(src, CONTACTS.table);
    // The index docs/reading.md recommends: each page is an index range scan, not a sort of the table.
    await admin(server.url, `CREATE INDEX ON ${table} (_pgland_last_modified_at, id)`, 'ANALYZE');
    await admin(server.url, ...landedTableSql('bench_read_copy'), `DROP SCHEMA IF EXISTS bench_read_load CASCADE`, 'CHECKPOINT');
    const config = join(cacheDir, 'read-config.json');
    writeFileSync(config, JSON.stringify({ url: server.url, sslmode: 'disable', schema: 'bench_read_load' }), { mode: 0o600 });
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const node = `${q(process.execPath)} --max-semi-space-size=4 ${q(CLI)}`;
    const read = `${node} read --config ${q(config)} --table ${q(`${src}.crm_contacts`)} --key id --cursor _pgland_last_modified_at`;
    const schemaFile = join(cacheDir, 'read-schema.json');
    execFileSync('sh', ['-c', `${read} --print-schema > ${q(schemaFile)}`]);
    const psqlOut = `${q(psql)} -X -q -d ${q(server.url)} -c ${q(`\\copy ${table} TO STDOUT`)}`;
    const psqlIn = `${q(psql)} -X -q -d ${q(server.url)} -c ${q(`\\copy ${qualify('bench_read_copy', CONTACTS.table)} FROM STDIN`)}`;
    const load = `${node} load --config ${q(config)} --provider pg --customer bench --kind custom --object contacts --schema-file ${q(schemaFile)} --input - > /dev/null`;

    const psqlRead = measure(`${psqlOut} > /dev/null`, cacheDir, 'psql-read');
    const pglandRead = measure(`${read} > /dev/null`, cacheDir, 'pgland-read');
    const psqlMove = measure(`${psqlOut} | ${psqlIn}`, cacheDir, 'psql-move');
    const pglandMove = measure(`${read} | ${load}`, cacheDir, 'pgland-move');
    const rows = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en')} rows/s`;
    const lines = [
      `reading ${size.toLocaleString('en')} rows of ${src}.crm_contacts (server ${server.version}, ${server.kind})`,
      `  psql \\copy TO STDOUT          ${psqlRead.secs.toFixed(1)} s  ${rows(size, psqlRead.secs)}  peak RSS ${psqlRead.rssMb} MB`,
      `  pgland read (NDJSON)          ${pglandRead.secs.toFixed(1)} s  ${rows(size, pglandRead.secs)}  peak RSS ${pglandRead.rssMb} MB  ratio ${(psqlRead.secs / pglandRead.secs).toFixed(2)}x (target >= 0.8x)`,
      `  psql \\copy out | \\copy in     ${psqlMove.secs.toFixed(1)} s  ${rows(size, psqlMove.secs)}`,
      `  pgland read | pgland load     ${pglandMove.secs.toFixed(1)} s  ${rows(size, pglandMove.secs)}  peak RSS ${pglandMove.rssMb} MB (largest process)  ratio ${(psqlMove.secs / pglandMove.secs).toFixed(2)}x (target >= 0.5x)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
