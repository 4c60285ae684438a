import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { openDestination } from '../destination.js';
import { startEmbedded } from '../embedded/server.js';
import type { Logger } from '../log.js';
import { PACKAGE_ROOT } from '../package.js';
import { qualify } from '../sql/ident.js';
import { EXIT } from './exit.js';
import { summary } from './progress.js';

const SAMPLES = [
  { object: 'crm_accounts', file: 'crm_accounts.ndjson' },
  { object: 'crm_contacts', file: 'crm_contacts.ndjson' },
];

/**
 * The demo: an embedded PostgreSQL, a sample sync of CRM accounts and contacts
 * through the real load path, what landed, and how to look at it.
 */
export async function demoCommand(flags: { dataDir: string; wait: boolean }, log: Logger): Promise<number> {
  const out = (s: string): boolean => process.stdout.write(s + '\n');
  out(`Starting an embedded PostgreSQL in ${flags.dataDir} ...`);
  const server = await startEmbedded({ dataDir: flags.dataDir });
  let code: number = EXIT.ok;
  const keepRunning = flags.wait && !!process.stdin.isTTY;
  try {
    // The embedded server listens on 127.0.0.1 only and has no TLS: do not probe for it.
    const dest = await openDestination({ url: server.url, sslmode: 'disable', schema: 'pgland' }, { log });
    try {
      for (const sample of SAMPLES) {
        const result = await dest.load({
          kind: 'common',
          object: sample.object,
          provider: 'salesforce',
          customerId: 'demo-customer',
          mode: 'incremental',
          input: createReadStream(join(PACKAGE_ROOT, 'examples', sample.file)),
        });
        out('\n' + summary(result, dest.schema));
        if (result.status === 'failed') code = EXIT.failure;
      }
      const accounts = await dest.pool.query<{ id: string; name: string; industry: string; deleted: boolean }>(
        `SELECT id, name, industry, _pgland_is_deleted AS deleted FROM ${qualify(dest.schema, 'crm_accounts')} ORDER BY id LIMIT 5`,
      );
      const totals = await dest.pool.query<{ t: string; n: string }>(
        `SELECT 'crm_accounts' AS t, count(*) AS n FROM ${qualify(dest.schema, 'crm_accounts')}
         UNION ALL SELECT 'crm_contacts', count(*) FROM ${qualify(dest.schema, 'crm_contacts')}`,
      );
      out('\nLanded:');
      for (const r of totals.rows) out(`  ${dest.schema}.${r.t}: ${r.n} rows`);
      out('\nFirst accounts:');
      for (const r of accounts.rows) out(`  ${r.id}  ${r.name.padEnd(22)} ${r.industry.padEnd(14)} ${r.deleted ? '(deleted at source)' : ''}`);
    } finally {
      await dest.close();
    }
    if (keepRunning) {
      out(`\nConnection string:\n  ${server.url}`);
      out(`Try:\n  psql '${server.url}' -c 'SELECT first_name, last_name, email_addresses FROM pgland.crm_contacts LIMIT 5'`);
      out('\nThe database runs until you press Ctrl-C.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
  } finally {
    await server.stop();
  }
  if (!keepRunning) {
    // No connection string: it would name a server that is gone by the time it is read.
    out(`\nThe embedded PostgreSQL is stopped; its data stays in ${flags.dataDir}.`);
    out('Run `pgland demo` on a terminal, without --no-wait, to keep it running and look at it with psql.');
  }
  return code;
}
