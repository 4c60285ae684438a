import { Readable } from 'node:stream';
import pg from 'pg';
import { Command, InvalidArgumentError, Option } from 'commander';
import { openDestination } from '../src/index.js';
import { smallSyncInput } from './generate.js';
import { TENANT } from './baselines.js';

/**
 * Round trips a run sends (issue 20), counted by wrapping node-postgres's
 * Client.query: one per call (a simple query with several statements is one
 * round trip), two for a COPY (one to start it, one to end it). Runs a first
 * load, an increment and a full refresh of a tenant, at each record count,
 * and prints the count per run; with --list, every query sent.
 * Usage: node dist/bench/statements.js --database-url <superuser url> [--records 10,5000] [--list]
 */

interface Options {
  databaseUrl: string;
  records: number[];
  list: boolean;
  schema: string;
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

function parse(argv: string[]): Options {
  return new Command()
    .name('node dist/bench/statements.js')
    .description('round trips a run sends: first load, increment, full refresh')
    .requiredOption('--database-url <url>', 'a postgres:// URL (the schema is dropped and created)')
    .addOption(
      new Option('--records <list>', 'records per run, comma-separated').default([10, 5000], '10,5000').argParser((v: string) => v.split(',').map(positive)),
    )
    .option('--schema <name>', 'the schema to land in (dropped first)', 'bench_statements')
    .option('--list', 'print every query sent', false)
    .parse(argv)
    .opts<Options>();
}

interface Sent {
  trips: number;
  texts: string[];
}

/** Counts every Client.query of this process (the pool's clients and the lease's heartbeat alike). */
function countQueries(): Sent {
  const sent: Sent = { trips: 0, texts: [] };
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: string; constructor: { name: string } };
    const text = typeof q === 'string' ? q : (q.text ?? q.constructor.name);
    const copy = /^\s*COPY\b/i.test(text) || /^Copy/.test(text);
    sent.trips += copy ? 2 : 1;
    sent.texts.push(text.replace(/\s+/g, ' ').slice(0, 110));
    return query.apply(this, args);
  };
  return sent;
}

async function main(): Promise<void> {
  const o = parse(process.argv);
  const admin = new pg.Client({ connectionString: o.databaseUrl });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${o.schema.replace(/"/g, '""')}" CASCADE`);
  await admin.end();
  const dest = await openDestination({ url: o.databaseUrl, schema: o.schema });
  const sent = countQueries();
  const out = (s: string): void => void process.stdout.write(s + '\n');
  try {
    // Two runs first, unmeasured: the destination's first run creates the table;
    // the second finds it up to date, which the process remembers
    // (src/load/checked-tables.ts): later runs check it in the statement that
    // records them. The first run of an object in a process sends 3 round
    // trips more (the check, in a transaction) and 1 more (claimTable).
    for (const customerId of ['warm-up-1', 'warm-up-2']) {
      await dest.load({ kind: 'common', object: 'crm_contacts', provider: TENANT.provider, customerId, input: Readable.from([smallSyncInput(1, 1)]) });
    }
    out('| records | run | round trips | Node CPU ms |');
    out('|---:|---|---:|---:|');
    for (const records of o.records) {
      const customerId = `tenant-${records}`;
      for (const [phase, version, mode] of [
        ['first', 1, 'incremental'],
        ['increment', 2, 'incremental'],
        ['full', 3, 'full'],
      ] as const) {
        sent.trips = 0;
        sent.texts = [];
        const cpu = process.cpuUsage();
        const result = await dest.load({
          kind: 'common',
          object: 'crm_contacts',
          provider: TENANT.provider,
          customerId,
          mode,
          input: Readable.from([smallSyncInput(records, version)]),
        });
        const used = process.cpuUsage(cpu);
        if (result.status !== 'succeeded') throw result.error ?? new Error(`the ${phase} run ended ${result.status}`);
        out(`| ${records} | ${phase} | ${sent.trips} | ${((used.user + used.system) / 1000).toFixed(1)} |`);
        if (o.list) for (const t of sent.texts) out(`    ${t}`);
      }
    }
  } finally {
    await dest.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`statements: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
