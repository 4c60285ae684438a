import type { SshTunnelConfig } from '../config/resolve.js';
import type { Logger } from '../log.js';
import type { Tunnel } from './tunnel.js';

/**
 * The tunnel a resolved destination config asks for, open; undefined when it
 * asks for none. ssh2 is loaded here, on first use: most destinations have no
 * tunnel, and the module costs every loader process about 10 MB of memory.
 */
export async function openTunnelFor(
  cfg: { host: string; port: number; connect_timeout_ms: number; ssh_tunnel?: SshTunnelConfig | undefined },
  log?: Logger,
): Promise<Tunnel | undefined> {
  if (!cfg.ssh_tunnel) return undefined;
  const { openTunnel } = await import('./tunnel.js');
  return openTunnel(cfg.ssh_tunnel, { target: { host: cfg.host, port: cfg.port }, connectTimeoutMs: cfg.connect_timeout_ms, ...(log ? { log } : {}) });
}
