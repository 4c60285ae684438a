import { Command, InvalidArgumentError, Option } from 'commander';
import { NODE_FLAGS } from '../src/node-flags.js';
import { RECORD_SIZES, type RecordSize } from './generate.js';

export interface BenchOptions {
  sizes: number[];
  /** Record sizes in bytes (620, 2300): every contender runs at each. */
  recordSize: RecordSize[];
  /** Round-trip times in ms of the link to the server (bench/link.ts); 0 for the direct path. */
  linkRtt: number[];
  reps: number;
  databaseUrl?: string;
  out?: string;
  contenders: string[];
  batchSizes: number[];
  cacheDir: string;
  cpuProf?: string;
  /** Node flags of pgland's children: pgland's own (src/node-flags.ts) unless given. */
  nodeFlags: string[];
}

/** "100k", "1m", "5m", "2500" → a record count. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a size (e.g. 100k, 1m, 5m, 2500)`);
  const n = Number(m[1]) * (m[2]!.toLowerCase() === 'k' ? 1e3 : m[2]!.toLowerCase() === 'm' ? 1e6 : 1);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a whole number of records`);
  return n;
}

function list<T>(parse: (s: string) => T): (value: string) => T[] {
  return (value) =>
    value
      .split(',')
      .filter((s) => s.trim() !== '')
      .map(parse);
}

export function positive(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

export function recordSize(text: string): RecordSize {
  const n = Number(text.trim());
  if (!(RECORD_SIZES as readonly number[]).includes(n)) throw new InvalidArgumentError(`"${text}" is not a record size: one of ${RECORD_SIZES.join(', ')}`);
  return n as RecordSize;
}

/** The record size of the sibling tools (encode.js, copy-format.js): BENCH_RECORD_SIZE, 620 when unset. */
export function recordSizeArg(text: string | undefined): RecordSize {
  return text === undefined || text === '' ? 620 : recordSize(text);
}

const CONTENDERS = ['a', 'b', 'd', 'pgland'];
/**
 * Also accepted, not run unless named: the own-table upsert (issue 18) and its
 * SQL-only floor; pgland through PgBouncer (issue 21); pgland through its own
 * SSH tunnel to a local sshd (needs root and OpenSSH's sshd).
 */
const OWN_TABLE = ['b-into', 'pgland-into', 'pgland-ssh'];
const POOLED = ['pooled'];

function rtt(text: string): number {
  const n = Number(text.trim());
  if (!Number.isFinite(n) || n < 0 || n > 1000) throw new InvalidArgumentError(`"${text}" is not a round-trip time in ms (0 to 1000; 0 is the direct path)`);
  return n;
}

function contender(text: string): string {
  const c = text.trim().toLowerCase();
  const known = [...CONTENDERS, ...OWN_TABLE, ...POOLED];
  if (!known.includes(c)) throw new InvalidArgumentError(`"${text}" is not one of ${known.join(', ')}`);
  return c;
}

const HELP = `
Contenders (all in one run, same server, same data, order alternating per repetition):
  a       psql \\copy of the CSV into an empty table shaped like pgland's crm_contacts (the physical limit)
  b       psql \\copy into a temp table + INSERT … SELECT … ON CONFLICT DO UPDATE (the SQL-only floor),
          on a first load and on an increment with 10% of records changed
  d       a naive node-postgres loader: 1,000-row parameterised INSERT … ON CONFLICT
  pgland  openDestination().load() in a child process: first load, 10% increment, full refresh with 1% missing
  b-into, pgland-into (only when named): an upsert on email into an existing table with a unique index
          (docs/own-tables.md): psql \\copy + INSERT … ON CONFLICT, against dest.loadInto(); first load, then increment
  pooled  (only when named) the same as pgland, through a PgBouncer in transaction mode started in front of
          the server; reported as pgland-pooled; needs the pgbouncer binary
  pgland-ssh (only when named): pgland through its own SSH tunnel to a local OpenSSH sshd (root only),
          which forwards to the server; with --link-rtt the link is between pgland and sshd

Data is generated once per size into <cache-dir>/contacts-v<n>-<size>/ (…-<size>-2300b/ for
--record-size 2300) and reused.
Without --database-url an embedded PostgreSQL is started in <cache-dir>/pgdata-<pid> and removed at the end.
psql comes from the system (postgresql-client) and is needed for a and b.

Examples:
  npm run bench                                   # 100k records, 3 repetitions, every contender
  npm run bench -- --sizes 1m,5m --out bench.json
  npm run bench -- --sizes 200k --record-size 620,2300      # every contender at both record sizes
  npm run bench -- --contenders pgland --batch-sizes 5000,20000,50000
  npm run bench -- --contenders pgland --node-flags ''   # pgland under Node's default heap sizing
  npm run bench -- --sizes 1m --contenders b-into,pgland-into     # the own-table upsert
  npm run bench -- --contenders pgland,pooled --sizes 1m   # direct and through PgBouncer, side by side
  npm run bench -- --sizes 200k --contenders a,b,pgland --link-rtt 1,10,40        # across a link
  npm run bench -- --sizes 200k --contenders pgland,pgland-ssh --link-rtt 0,40    # through a bastion`;

export function parseOptions(argv: string[]): BenchOptions {
  const program = new Command()
    .name('npm run bench --')
    .description("pgland's benchmark: throughput and peak memory against raw COPY, the SQL-only floor and a naive loader")
    .addOption(new Option('--sizes <list>', 'record counts, comma-separated (k and m suffixes)').default([100_000], '100k').argParser(list(parseSize)))
    .addOption(
      new Option('--record-size <list>', `bytes per record, ${RECORD_SIZES.join(' or ')} (HubSpot-like, 1.5 KB raw payload); both: ${RECORD_SIZES.join(',')}`)
        .default([620], '620')
        .argParser(list(recordSize)),
    )
    .addOption(
      new Option('--link-rtt <list>', 'round-trip times in ms of a link to the server (a delaying relay); 0 is the direct path')
        .default([0], '0')
        .argParser(list(rtt)),
    )
    .addOption(new Option('--reps <n>', 'repetitions; medians are reported').default(3).argParser(positive))
    .option('--database-url <url>', 'a superuser postgres:// URL to run against instead of an embedded server')
    .option('--out <file>', 'also write every measurement and the machine description as JSON')
    .addOption(new Option('--contenders <list>', `which to run: ${CONTENDERS.join(', ')}`).default(CONTENDERS, CONTENDERS.join(',')).argParser(list(contender)))
    .addOption(
      new Option('--batch-sizes <list>', 'pgland batch sizes to compare, one pgland run each')
        .default([], "pgland's configured default")
        .argParser(list(positive)),
    )
    .option('--cache-dir <dir>', 'where generated data and the embedded server live', '.pgland/bench')
    .option('--cpu-prof <dir>', "run pgland's children with node --cpu-prof, profiles written here")
    .addOption(
      new Option('--node-flags <flags>', "Node flags of pgland's children, space-separated; '' for Node's defaults")
        .default([...NODE_FLAGS], NODE_FLAGS.join(' '))
        .argParser((v: string) => v.split(/\s+/).filter((f) => f !== '')),
    )
    .addHelpText('after', HELP);
  program.parse(argv);
  const o = program.opts<BenchOptions>();
  if (o.reps < 3) process.stderr.write(`warning: --reps ${o.reps}: fewer than 3 repetitions make medians meaningless\n`);
  return o;
}
