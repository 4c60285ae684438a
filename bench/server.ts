import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../src/embedded/server.js';
import { postmasterPid } from './cpu.js';

/**
 * Server settings for the embedded benchmark server, the same for every
 * contender. Durable (fsync and synchronous commit stay on, as in production);
 * only the WAL is given room so that checkpoints are not forced every few
 * seconds by a bulk load, as any server tuned for loading would be.
 */
export const BENCH_SETTINGS: Record<string, string> = {
  shared_buffers: '256MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
};

export interface BenchServer {
  url: string;
  /** Where it came from, for the report: "embedded" or "--database-url". */
  kind: string;
  version: string;
  settings: Record<string, string>;
  /** The embedded server's postmaster, whose CPU time is measured; undefined for --database-url. */
  postmaster?: number;
  stop(): Promise<void>;
}

/** The given server, or an embedded one started in the cache folder (removed when stopped). */
export async function benchServer(databaseUrl: string | undefined, cacheDir: string): Promise<BenchServer> {
  let url = databaseUrl;
  let stop = async (): Promise<void> => undefined;
  let postmaster: number | undefined;
  if (!url) {
    // On the same disk as the data (a tmpfs /tmp would make fsync free), one
    // folder per process so that two runs never share a cluster; removed at stop.
    const dataDir = join(cacheDir, `pgdata-${process.pid}`);
    rmSync(dataDir, { recursive: true, force: true });
    const server = await startEmbedded({ dataDir, persistent: false, fast: false, settings: BENCH_SETTINGS });
    url = server.url;
    postmaster = postmasterPid(server.dataDir);
    stop = () => server.stop();
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('server_version', 'shared_buffers', 'max_wal_size', 'fsync', 'synchronous_commit', 'full_page_writes', 'work_mem')`,
    );
    const settings = Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting]));
    const kind = databaseUrl ? '--database-url' : 'embedded';
    return { url, kind, version: settings.server_version ?? '?', settings, ...(postmaster ? { postmaster } : {}), stop };
  } finally {
    await client.end();
  }
}

/** Runs SQL outside any measurement (table preparation, checkpoints). */
export async function admin(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}
