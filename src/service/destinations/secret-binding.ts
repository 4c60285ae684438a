import type { DestinationConfig, SshTunnelConfig } from '../../config/resolve.js';
import { PglandError } from '../../errors.js';

/**
 * A stored secret sent back as "[set]" keeps its value only while it would
 * go where it went before. Otherwise an API caller could re-point a
 * destination at a host of its own (a new host, a URL with another host, no
 * TLS, another bastion, an unpinned host key…) and have pgland send the
 * stored password there on the next /test. The comparison is between the
 * resolved configs, before and after, so that the same target written
 * differently (a URL, or the keys it stands for) is the same target.
 */

type Route = Record<string, unknown>;

/** Where a bastion secret (key, passphrase, password) goes: the bastion as connected to and authenticated. */
function sshRoute(t: SshTunnelConfig | undefined): Route {
  return t ? { host: t.host, port: t.port, user: t.user, host_key_fingerprint: t.host_key_fingerprint ?? null } : {};
}

/**
 * Where the database password (and the TLS client key) goes: the server and
 * login, what protects it on the way (sslmode, the CA that authenticates the
 * server, the name its certificate must carry, whether a cleartext request is
 * answered), and the bastion it travels through.
 */
function dbRoute(cfg: DestinationConfig): Route {
  const route: Route = {
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    sslmode: cfg.sslmode,
    sslrootcert: cfg.sslrootcert ?? null,
    sslservername: cfg.sslservername ?? null,
    allow_cleartext_password: cfg.allow_cleartext_password,
    ssh_tunnel: cfg.ssh_tunnel ? 'yes' : 'no',
  };
  for (const [k, v] of Object.entries(sshRoute(cfg.ssh_tunnel))) route[`ssh_tunnel.${k}`] = v;
  return route;
}

function changedKeys(before: Route, after: Route): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null));
}

/** The keys of a kept secret's route that changed; `before` undefined: the stored config no longer resolves. */
function routeChanges(secret: string, before: DestinationConfig | undefined, after: DestinationConfig): string[] {
  if (!before) return ['the stored config'];
  if (!secret.startsWith('ssh_tunnel.')) return changedKeys(dbRoute(before), dbRoute(after));
  const changed = changedKeys(sshRoute(before.ssh_tunnel), sshRoute(after.ssh_tunnel)).map((k) => `ssh_tunnel.${k}`);
  // A passphrase belongs to its key: tried on another key, its error would tell whether it decrypts that one.
  if (secret === 'ssh_tunnel.passphrase' && before.ssh_tunnel?.private_key !== after.ssh_tunnel?.private_key) changed.push('ssh_tunnel.private_key');
  return changed;
}

/**
 * Refuses an update whose kept secrets ("[set]") would go somewhere else,
 * naming the secrets to send again and the keys that changed (never values).
 */
export function refuseMovedSecrets(kept: readonly string[], before: DestinationConfig | undefined, after: DestinationConfig): void {
  const moved = new Map<string, string[]>();
  for (const secret of kept) {
    const changed = routeChanges(secret, before, after);
    if (changed.length > 0) moved.set(secret, changed);
  }
  if (moved.size === 0) return;
  const secrets = [...moved.keys()];
  const changed = [...new Set([...moved.values()].flat())];
  throw new PglandError(
    'config_invalid',
    `${secrets.join(', ')}: "[set]" keeps a stored secret only while it goes where it went, and ${changed.join(', ')} changed; send ${secrets.length > 1 ? 'these secrets' : 'this secret'} again`,
    {
      hint: 'a stored secret stays with the server (and bastion) it was given for: send the secret itself, not "[set]", with the new target',
      context: { secrets, changed },
    },
  );
}
