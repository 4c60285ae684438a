import { resolve } from 'node:path';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { encodeRecord, type Problem } from '../src/encode/record.js';
import { parseEnvelope } from '../src/input/envelope.js';
import { newScanScratch } from '../src/input/envelope-bytes.js';
import { readLineChunks } from '../src/input/lines.js';
import { readFileChunks } from '../src/input/file-chunks.js';
import { BytesRecord } from '../src/input/bytes-record.js';
import { ROW_SLOW, writeRecordBytes } from '../src/encode/record-bytes.js';
import { CONTACTS } from './csv.js';
import { dataset } from './dataset.js';
import { parseSize, recordSizeArg } from './options.js';
import { median } from './report.js';

/**
 * Node's own share of a load, without a server: read, split, parse and encode
 * the first-load file into COPY text (turned into bytes, as the socket would),
 * and nothing else. It is what the input and encode changes are judged by:
 * the least CPU time over the repetitions is reported beside the median wall
 * time, because on a busy machine CPU time is the steadier of the two; then
 * each stage's share, from passes that stop after it.
 * Usage: [BENCH_RECORD_SIZE=620|2300] node dist/bench/encode.js [size=100k] [reps=5] [cache-dir=.pgland/bench]
 */
/** How far each pass goes: every stage also does the ones before it. */
const STAGES = ['read', 'split', 'parse', 'encode', 'bytes'] as const;
type Stage = (typeof STAGES)[number];

async function once(path: string, upTo: Stage = 'bytes'): Promise<{ ms: number; cpuMs: number; records: number; bytes: number }> {
  const stats = newEncodeStats();
  // As the loader's line source scans: each record is encoded before the next line is read (envelope-bytes.ts).
  const scratch = newScanScratch();
  const problems: Problem[] = [];
  const depth = STAGES.indexOf(upTo);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let records = 0;
  let bytes = 0;
  // The rows go into one reused chunk as UTF-8, as the loader writes them (copy-writer.ts).
  const out = Buffer.allocUnsafe(256 * 1024);
  let filled = 0;
  if (upTo === 'read') {
    for await (const chunk of readFileChunks(path)) bytes += chunk.length;
  } else {
    // Lines as bytes, as the loader reads them (record-source.ts): decoded only when the byte scan declines one.
    for await (const lines of readLineChunks(readFileChunks(path), { bytes: true })) {
      if (depth < STAGES.indexOf('parse')) {
        records += lines.length;
        continue;
      }
      for (const line of lines) {
        const parsed = parseEnvelope(line, false, scratch);
        if (!('record' in parsed)) continue;
        records++;
        if (depth < STAGES.indexOf('encode')) continue;
        const record = parsed.record;
        const lead = `${record.lineNumber}\t`;
        if (record instanceof BytesRecord) {
          // Encoded straight into the chunk (record-bytes.ts): the encode stage is also the bytes one.
          let end = writeRecordBytes(record, CONTACTS, stats, problems, lead, out, filled);
          if (end < 0 && end !== ROW_SLOW) {
            bytes += filled;
            filled = 0;
            end = writeRecordBytes(record, CONTACTS, stats, problems, lead, out, 0);
          }
          if (end >= 0) {
            filled = end;
            continue;
          }
        }
        const row = encodeRecord(record, CONTACTS, stats, problems, lead);
        if (depth < STAGES.indexOf('bytes')) continue;
        if (filled + row.length * 3 > out.length) {
          bytes += filled;
          filled = 0;
        }
        filled += out.write(row, filled, 'utf8');
      }
    }
    bytes += filled;
  }
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, records, bytes };
}

/** Each stage's own share: the least CPU time of passes that stop after it, less the stage before. */
async function stageBreakdown(path: string, reps: number, records: number): Promise<string> {
  const least: number[] = [];
  for (const stage of STAGES) {
    let best = Infinity;
    for (let r = 0; r < reps; r++) best = Math.min(best, (await once(path, stage)).cpuMs);
    least.push(best);
  }
  return STAGES.map((stage, i) => `${stage} ${((1000 * (least[i]! - (least[i - 1] ?? 0))) / records).toFixed(2)}`).join(', ') + ' µs/record';
}

async function main(): Promise<void> {
  const size = parseSize(process.argv[2] ?? '100k');
  const reps = Number(process.argv[3] ?? 5);
  const data = await dataset(resolve(process.argv[4] ?? '.pgland/bench'), size, recordSizeArg(process.env.BENCH_RECORD_SIZE), (s) =>
    process.stderr.write(s + '\n'),
  );
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let last = { records: 0, bytes: 0 };
  for (let r = 0; r < reps; r++) {
    const run = await once(data.first.path);
    times.push(run.ms);
    cpuTimes.push(run.cpuMs);
    last = run;
  }
  const ms = median(times);
  const cpuMs = Math.min(...cpuTimes);
  process.stdout.write(
    `encode only, ${last.records} records, median of ${reps}: ${(ms / 1000).toFixed(3)} s, ` +
      `${Math.round(last.records / (ms / 1000)).toLocaleString('en-US')} records/s, ${((1000 * ms) / last.records).toFixed(2)} µs/record, ` +
      `${(data.first.bytes / 1e6 / (ms / 1000)).toFixed(1)} MB/s in, COPY text ${(last.bytes / last.records).toFixed(0)} bytes/record; ` +
      `least CPU time ${(cpuMs / 1000).toFixed(3)} s = ${((1000 * cpuMs) / last.records).toFixed(2)} µs/record ` +
      `(wall: ${times.map((t) => Math.round(t)).join(' ')} ms)\n`,
  );
  // Where that CPU goes: read the file; split lines (decoded only where the byte scan declines one); parse; encode; the rows into bytes.
  process.stdout.write(`by stage (least CPU time of ${reps} passes each): ${await stageBreakdown(data.first.path, reps, last.records)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
