import { Command, Option } from 'commander';
import type { RecordSize } from './generate.js';
import { parseSize, positive, recordSize } from './options.js';

export interface WriteThroughBenchOptions {
  sizes: number[];
  /** Calls per size and way; undefined: as many as the size makes cheap (repsFor). */
  reps?: number;
  recordSize: RecordSize;
  databaseUrl?: string;
  cacheDir: string;
}

/** 1,600 contacts of 620 bytes make a JSON body of about 1 MiB. */
export const DEFAULT_SIZES = [1, 10, 100, 1000, 1600, 5000, 10_000];

/**
 * Calls per size and way when --reps is not given: enough for a p99 where a
 * call is cheap (200 up to 100 records), at least 10 where it is not.
 */
export function repsFor(records: number): number {
  return Math.max(10, Math.min(200, Math.round(20_000 / records)));
}

/** The command line of bench/write-through.ts. */
export function parseWriteThroughOptions(argv: string[]): WriteThroughBenchOptions {
  const program = new Command()
    .name('node dist/bench/write-through.js')
    .description('write-through against a run (open, one batch, commit): latency and CPU per record by set size')
    .addOption(
      new Option('--sizes <list>', 'records per call, comma-separated (k suffix allowed)')
        .default(DEFAULT_SIZES, DEFAULT_SIZES.join(','))
        .argParser((v: string) => v.split(',').map(parseSize)),
    )
    .addOption(new Option('--reps <n>', 'calls per size and way (default: 200 up to 100 records, then 20,000 / size, at least 10)').argParser(positive))
    .addOption(new Option('--record-size <bytes>', 'bytes per record: 620, or 2300 (HubSpot-like)').default(620).argParser(recordSize))
    .option('--database-url <url>', 'a superuser postgres:// URL to run against instead of an embedded server (server CPU is then not measured)')
    .option('--cache-dir <dir>', 'where the embedded server and the control files live', '.pgland/bench');
  program.parse(argv);
  return program.opts<WriteThroughBenchOptions>();
}
