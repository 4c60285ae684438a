import { Command, InvalidArgumentError, Option } from 'commander';

/**
 * How a run is made: the library (one destination per process), the CLI (a
 * process per run), or `pgland serve`'s API: a write-through call
 * (POST /destinations/{id}/records) or an open/batch/commit run.
 */
export const VIAS = ['library', 'cli', 'write-through', 'http-run'] as const;

export interface SmallSyncsOptions {
  tenants: number;
  cliTenants: number;
  records: number;
  processes: number[];
  via: string[];
  linkRtt: number;
  databaseUrl?: string;
  cacheDir: string;
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

/** The command line of bench/small-syncs.ts. */
export function parseSmallSyncsOptions(argv: string[]): SmallSyncsOptions {
  const program = new Command()
    .name('node dist/bench/small-syncs.js')
    .description('many small syncs: runs per second and latency of 10-record runs for many tenants')
    .addOption(new Option('--tenants <n>', 'tenants synced through the library').default(1000).argParser(positive))
    .addOption(new Option('--cli-tenants <n>', 'tenants synced through the CLI (a process per run)').default(100).argParser(positive))
    .addOption(new Option('--records <n>', 'records per run').default(10).argParser(positive))
    .addOption(
      new Option('--processes <list>', 'processes side by side, comma-separated').default([1, 2], '1,2').argParser((v: string) => v.split(',').map(positive)),
    )
    .addOption(
      new Option('--via <list>', `comma-separated, of: ${VIAS.join(', ')}`).default(['library', 'cli'], 'library,cli').argParser((v: string) => {
        const list = v.split(',').map((s) => s.trim());
        for (const x of list) if (!(VIAS as readonly string[]).includes(x)) throw new InvalidArgumentError(`"${x}" is not one of ${VIAS.join(', ')}`);
        return list;
      }),
    )
    .addOption(new Option('--link-rtt <ms>', 'round-trip time of a link to the server (bench/link.ts); 0 is direct').default(0).argParser(Number))
    .option('--database-url <url>', 'a superuser postgres:// URL to run against instead of an embedded server')
    .option('--cache-dir <dir>', 'where the embedded server lives', '.pgland/bench');
  program.parse(argv);
  return program.opts<SmallSyncsOptions>();
}
