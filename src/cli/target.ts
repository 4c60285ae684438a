import { join } from 'node:path';
import { envName } from '../config/resolve.js';
import { startEmbedded, type EmbeddedServer } from '../embedded/server.js';
import type { Logger } from '../log.js';
import { readConfigFile } from './config-file.js';

export interface Target {
  config: Record<string, unknown>;
  embedded?: EmbeddedServer;
}

/** Whether the environment names a database on its own (no config file needed). */
function envConfigured(env: NodeJS.ProcessEnv): boolean {
  return ['url', 'host'].some((k) => !!env[envName(k)]);
}

/**
 * The database a command talks to: the config file when given, else the
 * environment, else an embedded PostgreSQL kept in .pgland/embedded under the
 * current folder (so that a second command finds the same data).
 */
export async function resolveTarget(configPath: string | undefined, log: Logger, dataDir = join('.pgland', 'embedded')): Promise<Target> {
  if (configPath) return { config: await readConfigFile(configPath) };
  if (envConfigured(process.env)) return { config: {} };
  log.info({ dataDir }, 'no database configured: starting an embedded PostgreSQL');
  const embedded = await startEmbedded({ dataDir });
  // The embedded server listens on 127.0.0.1 only and has no TLS: do not probe for it.
  return { config: { url: embedded.url, sslmode: 'disable' }, embedded };
}
