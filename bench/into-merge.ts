import { createReadStream, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { copyBatch, newBatchBuffer } from '../src/load/copy-writer.js';
import { lineSource } from '../src/load/record-source.js';
import { parseMapping } from '../src/into/mapping.js';
import { mergeIntoSql, type MergeShape } from '../src/into/merge-into.js';
import { copyIntoStageSql, createIntoStageSql, intoRowEncoder, staged, TEMP_STAGE } from '../src/into/stage.js';
import { planInto } from '../src/into/validate.js';
import { qualify, quoteIdent as q } from '../src/sql/ident.js';
import { datasetDir } from './dataset.js';
import { INTO_MAPPINGS, INTO_TABLE, intoCsvPaths, intoScriptB, intoTableSql } from './into.js';
import { median } from './report.js';

/**
 * The server's side of one batch of the own-table upsert (issue 18): pgland's
 * merge statement (src/into/merge-into.ts) against B-into's INSERT … ON
 * CONFLICT over the same records, each in a transaction rolled back, the
 * backend's CPU read from /proc before and after each statement (the server
 * must be on this machine). A first-load batch goes into the empty table; an
 * increment batch into the table holding the whole first load. B's rows are
 * COPYed typed (its casts happen in its COPY, not timed here); pgland's
 * text, jsonb and version columns are staged typed too, the others as text,
 * cast by the statement (src/into/stage.ts).
 * Usage: node dist/bench/into-merge.js DATABASE_URL [batch=50000] [reps=5] [dataset-size=200000] [--explain]
 */

const SCHEMA = 'bench_into_merge';

function backendCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function timed(client: pg.Client, pid: number, sql: string, values: unknown[] = []): Promise<{ cpuMs: number; result: pg.QueryResult }> {
  const before = backendCpuMs(pid);
  const result = await client.query(sql, values);
  return { cpuMs: backendCpuMs(pid) - before, result };
}

/** B's statement alone, out of its script (the INSERT … ON CONFLICT), reading a staging table named `stage`. */
function bStatement(stage: string): string {
  const script = intoScriptB(SCHEMA, '/dev/null');
  const insert = script.slice(script.indexOf('INSERT INTO'), script.indexOf(';\nCOMMIT;'));
  return insert.replace('FROM bench_into_stage', `FROM ${stage}`);
}

/** The first `n` lines of a file (B's CSV), for one batch's COPY. */
function csvHead(path: string, n: number): Buffer {
  const text = readFileSync(path);
  let at = 0;
  for (let i = 0; i < n && at >= 0; i++) at = text.indexOf(10, at) + 1;
  return at > 0 ? text.subarray(0, at) : text;
}

async function copyFile(client: pg.Client, sql: string, path: string): Promise<void> {
  await pipeline(createReadStream(path), client.query(copyFrom(sql)));
}

async function main(): Promise<void> {
  const url = process.argv[2];
  if (!url) throw new Error('usage: node dist/bench/into-merge.js DATABASE_URL [batch] [reps] [dataset-size] [--explain]');
  const args = process.argv.slice(3).filter((a) => a !== '--explain');
  const explain = process.argv.includes('--explain');
  const batch = Number(args[0] ?? 50_000);
  const reps = Number(args[1] ?? 5);
  const size = Number(args[2] ?? 200_000);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await measure(client, batch, reps, size, explain);
  } finally {
    await client.end();
  }
}

async function measure(client: pg.Client, batch: number, reps: number, size: number, explain: boolean): Promise<void> {
  const dir = datasetDir(resolve('.pgland/bench'), size, 620);
  const csv = intoCsvPaths(join(dir, 'first.ndjson'));
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const table = qualify(SCHEMA, INTO_TABLE);
  for (const sql of intoTableSql(SCHEMA)) await client.query(sql);
  const plan = await planInto(client, {
    into: { schema: SCHEMA, table: INTO_TABLE },
    write: 'upsert',
    match: 'email',
    mappings: INTO_MAPPINGS.map(([c, path]) => parseMapping(`${c}=${path}`)),
    pglandSchema: 'pgland',
  });
  const typed = `bench_b_stage (${INTO_MAPPINGS.map(([c, , type]) => `${q(c)} ${type}`).join(', ')})`;
  for (const variant of ['first', 'incr'] as const) {
    if (variant === 'incr') {
      // The whole first load, as B lands it.
      await client.query(`DROP TABLE bench_b_stage; BEGIN; CREATE TEMP TABLE ${typed} ON COMMIT DROP`);
      await copyFile(client, 'COPY bench_b_stage FROM STDIN WITH (FORMAT csv)', csv.first);
      await client.query(`${bStatement('bench_b_stage')}; COMMIT`);
      await client.query(`VACUUM ANALYZE ${table}`);
    }
    // One batch of each contender's input, staged once, kept for every repetition.
    await client.query(`DROP TABLE IF EXISTS pg_temp.${TEMP_STAGE}, pg_temp.bench_b_stage`);
    await client.query(createIntoStageSql(plan).replace(' ON COMMIT DROP', ''));
    const buf = newBatchBuffer('stage');
    buf.ids = undefined;
    const encoder = intoRowEncoder(plan);
    const source = lineSource(createReadStream(join(dir, `${variant}.ndjson`)));
    // The first time from the file, then again from the bytes the batch kept.
    const stageBatch = (): Promise<void> =>
      copyBatch(
        client as unknown as pg.PoolClient,
        copyIntoStageSql(),
        { batchSize: batch, batchBytes: 1e12, landedLead: '', encodeRow: encoder.encode },
        source,
        buf,
      );
    await stageBatch();
    await client.query(`CREATE TEMP TABLE ${typed}`);
    const head = csvHead(csv[variant], batch);
    // Each COPY of the batch, again into its emptied table: the server's side of staging it.
    const copies = { pgland: [] as number[], B: [] as number[] };
    for (let rep = 0; rep < reps; rep++) {
      await client.query(`TRUNCATE pg_temp.${TEMP_STAGE}, bench_b_stage`);
      let before = backendCpuMs(pid);
      await stageBatch();
      copies.pgland.push(backendCpuMs(pid) - before);
      before = backendCpuMs(pid);
      await pipeline(Readable.from([head]), client.query(copyFrom('COPY bench_b_stage FROM STDIN WITH (FORMAT csv)')));
      copies.B.push(backendCpuMs(pid) - before);
    }
    await client.query(`ANALYZE pg_temp.${TEMP_STAGE}; ANALYZE bench_b_stage`);
    const shape: MergeShape = { stage: TEMP_STAGE, distinctKeys: true, prefilter: variant === 'incr', deletes: encoder.deletions(buf) > 0 };
    const statements: [string, string, unknown[]][] = [
      ['pgland', mergeIntoSql(plan, shape), [0, 1e15]],
      ['B', bStatement('bench_b_stage'), []],
      // B's statement over pgland's stage (typed where the encoder allows, text elsewhere): B's statement and pgland's casts.
      [
        "B over pgland's stage",
        bStatement(
          `(SELECT ${staged(plan)
            .map((c) => `s.${q(c.stage!)}::${c.column.castType} AS ${q(c.column.name)}`)
            .join(', ')} FROM ${TEMP_STAGE} s) AS b`,
        ),
        [],
      ],
    ];
    if (shape.deletes) statements.push(['pgland, no deletions', mergeIntoSql(plan, { ...shape, deletes: false }), [0, 1e15]]);
    if (shape.prefilter) statements.push(['pgland, no read-before-upsert', mergeIntoSql(plan, { ...shape, prefilter: false }), [0, 1e15]]);
    if (shape.prefilter && shape.deletes) statements.push(['pgland, neither', mergeIntoSql(plan, { ...shape, prefilter: false, deletes: false }), [0, 1e15]]);
    const cpu = new Map<string, number[]>(statements.map(([name]) => [name, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, sql, values] of rep % 2 === 0 ? statements : [...statements].reverse()) {
        await client.query('BEGIN');
        const { cpuMs } = await timed(client, pid, sql, values);
        await client.query('ROLLBACK');
        cpu.get(name)!.push(cpuMs);
      }
    }
    console.log(`${variant}: ${buf.records} records staged (${encoder.deletions(buf)} deletions), backend CPU ms over ${reps} runs:`);
    for (const [name, ms] of Object.entries(copies)) console.log(`  ${`COPY, ${name}`.padEnd(32)} median ${median(ms)}  (${ms.join(' ')})`);
    for (const [name, ms] of cpu) console.log(`  ${name.padEnd(32)} min ${Math.min(...ms)} median ${median(ms)}  (${ms.join(' ')})`);
    if (explain) {
      for (const [name, sql, values] of statements.slice(0, 3)) {
        await client.query('BEGIN');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`, values);
        await client.query('ROLLBACK');
        console.log(`--- ${variant}, ${name}:\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
      }
    }
  }
  await client.query(`DROP SCHEMA ${q(SCHEMA)} CASCADE`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
