import { loadConfigFiles } from '../config/files.js';
import type { DestinationConfig } from '../config/resolve.js';
import type { Logger } from '../log.js';
import type { Tunnel } from './tunnel.js';

/**
 * The tunnel a resolved destination config asks for, open; undefined when it
 * asks for none. ssh2 is loaded here, on first use: most destinations have no
 * tunnel, and the module costs every loader process about 10 MB of memory.
 */
export async function openTunnelFor(given: DestinationConfig, log?: Logger): Promise<Tunnel | undefined> {
  if (!given.ssh_tunnel) return undefined;
  const cfg = await loadConfigFiles(given);
  const { openTunnel } = await import('./tunnel.js');
  return openTunnel(cfg.ssh_tunnel!, { target: { host: cfg.host, port: cfg.port }, connectTimeoutMs: cfg.connect_timeout_ms, ...(log ? { log } : {}) });
}
