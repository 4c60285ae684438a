import { Readable } from 'node:stream';
import { openDestination } from '../src/index.js';
import { childMain, childParams } from './child.js';
import { smallSyncInput } from './generate.js';
import { TENANT } from './baselines.js';

export interface SmallSyncParams {
  url: string;
  schema: string;
  /** The tenants this process syncs, one run each, one after the other. */
  tenants: number[];
  records: number;
  /** 1: every record new (the tenant's first sync); 2: every record changed. */
  version: number;
}

/** Library runs: one destination for the process, one load per tenant; prints each run's latency. */
async function main(): Promise<void> {
  const p = childParams<SmallSyncParams>();
  const dest = await openDestination({ url: p.url, schema: p.schema });
  const input = smallSyncInput(p.records, p.version);
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  try {
    for (const t of p.tenants) {
      const t0 = performance.now();
      const result = await dest.load({
        kind: 'common',
        object: 'crm_contacts',
        provider: TENANT.provider,
        customerId: `tenant-${t}`,
        input: Readable.from([input]),
      });
      if (result.status !== 'succeeded') throw result.error ?? new Error(`run for tenant ${t} ended ${result.status}`);
      latencies.push(performance.now() - t0);
    }
  } finally {
    await dest.close();
  }
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, latencies }) + '\n');
}

childMain(main);
