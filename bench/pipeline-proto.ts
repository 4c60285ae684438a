import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { encodeRecord } from '../src/encode/record.js';
import { parseEnvelope } from '../src/input/envelope.js';
import { readLines } from '../src/input/lines.js';
import { qualify } from '../src/sql/ident.js';
import { copyStageSql, createStageSql, LINE_COLUMN, STAGE_TABLE } from '../src/stage/stage.js';
import { landedTableSql, mergeStatement } from './baselines.js';
import { CONTACTS } from './csv.js';
import { dataset, type DataFile } from './dataset.js';
import { parseSize } from './options.js';
import { median } from './report.js';
import { admin, benchServer } from './server.js';

/**
 * A PROTOTYPE, for measurement only: batches pipelined over two connections.
 * While batch n merges and commits on one connection, batch n+1 is read,
 * encoded and COPYed into its own staging table on the other; merges still
 * run and commit in input order. The same code with `pipelined` off is the
 * serial loop pgland runs today, so the two differ only in the overlap. No
 * retries, rejects, problems or run bookkeeping: not a loader.
 * Usage: node dist/bench/pipeline-proto.js [size=100k] [reps=3] [batch=20000] [cache-dir=.pgland/bench] [database-url]
 */
async function load(url: string, schema: string, file: DataFile, batchSize: number, pipelined: boolean): Promise<number> {
  const clients = [0, 1].map(() => new pg.Client({ connectionString: url, options: '-c TimeZone=UTC' }));
  await Promise.all(clients.map((c) => c.connect()));
  const started = performance.now();
  try {
    const lines = readLines(createReadStream(file.path));
    const busy: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    let lastCommit = Promise.resolve();
    const stats = newEncodeStats();
    let ended = false;
    for (let batch = 0; !ended; batch++) {
      const client = clients[batch % 2]!;
      await busy[batch % 2];
      await client.query('BEGIN');
      await client.query(createStageSql(CONTACTS));
      const copy = client.query(copyFrom(copyStageSql(CONTACTS)));
      let records = 0;
      let pending = '';
      while (records < batchSize) {
        const next = await lines.next();
        if (next.done) {
          ended = true;
          break;
        }
        const parsed = parseEnvelope(next.value);
        if (!('record' in parsed)) continue;
        pending += encodeRecord(parsed.record, CONTACTS, stats, [], `${parsed.record.lineNumber}\t`);
        records++;
        if (pending.length >= 256 * 1024) {
          if (!copy.write(pending)) await once(copy, 'drain');
          pending = '';
        }
      }
      copy.end(pending);
      await once(copy, 'finish');
      const previous = lastCommit;
      const merged = (async () => {
        await previous; // commits stay in input order
        if (records > 0) await client.query(mergeStatement(schema, STAGE_TABLE, LINE_COLUMN));
        await client.query('COMMIT');
      })();
      merged.catch(() => undefined); // awaited below, or by the next batch on this connection
      lastCommit = merged;
      busy[batch % 2] = merged;
      if (!pipelined) await merged;
    }
    await Promise.all(busy);
    return performance.now() - started;
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

async function main(): Promise<void> {
  const size = parseSize(process.argv[2] ?? '100k');
  const reps = Number(process.argv[3] ?? 3);
  const batchSize = Number(process.argv[4] ?? 20_000);
  const cacheDir = resolve(process.argv[5] ?? '.pgland/bench');
  const data = await dataset(cacheDir, size, (s) => process.stderr.write(s + '\n'));
  const server = await benchServer(process.argv[6], cacheDir);
  const schema = 'bench_pipeline';
  const table = qualify(schema, CONTACTS.table);
  const times: Record<string, number[]> = {};
  try {
    for (let r = 0; r < reps; r++) {
      for (const pipelined of r % 2 ? [true, false] : [false, true]) {
        const label = pipelined ? 'pipelined' : 'serial';
        await admin(server.url, ...landedTableSql(schema), 'CHECKPOINT');
        const first = await load(server.url, schema, data.first, batchSize, pipelined);
        await admin(server.url, `VACUUM ANALYZE ${table}`, 'CHECKPOINT');
        const incr = await load(server.url, schema, data.incr, batchSize, pipelined);
        (times[`${label} first`] ??= []).push(first);
        (times[`${label} incr`] ??= []).push(incr);
        process.stderr.write(`  rep ${r + 1}/${reps} ${label}: first ${(first / 1000).toFixed(2)} s, incr ${(incr / 1000).toFixed(2)} s\n`);
      }
    }
  } finally {
    await server.stop();
  }
  process.stdout.write(`${size} records, batch ${batchSize}, ${reps} repetitions, medians (prototype, not pgland's loader):\n`);
  for (const [label, ms] of Object.entries(times)) {
    process.stdout.write(`  ${label.padEnd(16)} ${(median(ms) / 1000).toFixed(2)} s  ${Math.round(size / (median(ms) / 1000)).toLocaleString('en-US')} rows/s\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
