import { createReadStream } from 'node:fs';
import { openDestination } from '../src/index.js';
import type { SyncMode } from '../src/load/runs.js';
import { childMain, childParams, reportLoad, startClock } from './child.js';
import { TENANT } from './baselines.js';

/** pgland's ssh_tunnel settings for the bench's own sshd (docs/connecting.md). */
export interface BenchSshTunnel {
  host: string;
  port: number;
  user: string;
  private_key: string;
  host_key_fingerprint: string;
}

export interface PglandParams {
  url: string;
  schema: string;
  file: string;
  mode: SyncMode;
  batchSize?: number;
  /** pgland's ssh_tunnel settings: the load goes through its own SSH tunnel. */
  sshTunnel?: BenchSshTunnel;
}

/** pgland as a library user runs it: openDestination().load() on a file stream. */
async function main(): Promise<void> {
  const p = childParams<PglandParams>();
  const dest = await openDestination({
    url: p.url,
    schema: p.schema,
    ...(p.batchSize ? { batch_size: p.batchSize } : {}),
    ...(p.sshTunnel ? { ssh_tunnel: p.sshTunnel } : {}),
  });
  try {
    const clock = startClock();
    const result = await dest.load({
      kind: 'common',
      object: 'crm_contacts',
      provider: TENANT.provider,
      customerId: TENANT.customerId,
      mode: p.mode,
      input: createReadStream(p.file),
    });
    reportLoad(clock, result);
  } finally {
    await dest.close();
  }
}

childMain(main);
