import { PglandError } from '../errors.js';
import { destinationSchema, SECRET_KEYS, SSH_SECRET_KEYS, type DestinationFile, type SshTunnelFile } from './schema.js';

/**
 * The SSH tunnel of a resolved config: private_key_file is a path in
 * private_key; files are read later, asynchronously (loadConfigFiles).
 */
export type SshTunnelConfig = Omit<SshTunnelFile, 'private_key_file'>;

/**
 * A destination config with every connection key resolved. Values that name
 * files (password_file, a path in sslrootcert…) are still paths:
 * loadConfigFiles (src/config/files.ts) reads them before connecting.
 */
export interface DestinationConfig extends Omit<DestinationFile, 'url' | 'ssh_tunnel'> {
  host: string;
  port: number;
  database: string;
  user: string;
  ssh_tunnel?: SshTunnelConfig;
}

/** Environment variables read for each key: PGLAND_<KEY>, e.g. PGLAND_PASSWORD, PGLAND_DATABASE_URL. */
export function envName(key: string): string {
  if (key === 'url') return 'PGLAND_DATABASE_URL';
  if (key.startsWith('ssh_tunnel.')) return `PGLAND_SSH_${key.slice('ssh_tunnel.'.length).toUpperCase()}`;
  return `PGLAND_${key.toUpperCase()}`;
}

/** Top-level keys read from the environment (PGLAND_<KEY>). */
export const ENV_KEYS = [
  'url',
  'host',
  'port',
  'database',
  'user',
  'password',
  'password_file',
  'schema',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslkey_file',
  'sslservername',
  'allow_cleartext_password',
  'delete_mode',
  'batch_size',
  'batch_bytes',
  'max_record_bytes',
  'connect_timeout_ms',
  'statement_timeout_ms',
  'application_name',
  'batch_retries',
  'lock_timeout_ms',
  'lease_ttl_ms',
  'max_parallel_objects',
  'work_mem',
  'max_connections',
] as const;

/** ssh_tunnel keys read from the environment (PGLAND_SSH_<KEY>). */
export const SSH_ENV_KEYS = [
  'host',
  'port',
  'user',
  'private_key',
  'private_key_file',
  'passphrase',
  'passphrase_file',
  'password',
  'password_file',
  'host_key_fingerprint',
  'keepalive_interval_ms',
  'keepalive_count_max',
  'reconnect_attempts',
] as const;

/** A secret and the key that names a file holding it: setting either at one level replaces both from the levels below. */
const SECRET_PAIRS: readonly (readonly [string, string])[] = [
  ['password', 'password_file'],
  ['sslkey', 'sslkey_file'],
];
const SSH_SECRET_PAIRS: readonly (readonly [string, string])[] = [
  ['private_key', 'private_key_file'],
  ['passphrase', 'passphrase_file'],
  ['password', 'password_file'],
];

function describePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? 'the config' : `"${path.map(String).join('.')}"`;
}

function isSecretPath(path: readonly PropertyKey[]): boolean {
  const [first, second] = path.map(String);
  if (first === 'ssh_tunnel') return second !== undefined && (SSH_SECRET_KEYS as readonly string[]).includes(second);
  return first !== undefined && (SECRET_KEYS as readonly string[]).includes(first);
}

/** URL query parameters pgland understands (libpq's names), and the key each sets. */
const URL_PARAMS: Record<string, string> = {
  host: 'host',
  port: 'port',
  dbname: 'database',
  user: 'user',
  password: 'password',
  sslmode: 'sslmode',
  sslrootcert: 'sslrootcert',
  sslcert: 'sslcert',
  sslkey: 'sslkey',
  sslservername: 'sslservername',
  application_name: 'application_name',
  schema: 'schema',
  connect_timeout: 'connect_timeout_ms',
};

/** libpq parameters that name files pgland does not read (a password file, a service file, revocation lists). */
const UNREAD_FILE_PARAMS = new Set(['passfile', 'service', 'servicefile', 'sslcrl', 'sslcrldir', 'sslpassword']);

function decodePart(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new PglandError('config_invalid', `url: the ${what} has a malformed percent-encoding`, {
      hint: 'write each special character as % and two hex digits (encodeURIComponent does it), or give the keys separately',
    });
  }
}

/**
 * Parses a postgres:// URL as libpq does: percent-decoding of every part
 * (a "+" stays a plus), query parameters with libpq's names, and an unknown
 * parameter refused rather than silently ignored. The URL itself is a secret
 * (it may hold a password): no error repeats it.
 */
export function parseUrl(url: string): Record<string, string | number> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PglandError('config_invalid', 'url: not a valid postgres:// URL', {
      hint: 'use postgres://user:password@host:5432/database; percent-encode special characters (@ : / ? # [ ] and others), or give the keys separately',
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PglandError('config_invalid', `url: the scheme must be postgres:// or postgresql:// (got ${u.protocol.slice(0, 20)}//)`);
  }
  if (u.hash) {
    throw new PglandError('config_invalid', 'url: contains a "#": a # in a password or name must be written %23', {
      hint: 'percent-encode special characters, or give the keys separately',
    });
  }
  const out: Record<string, string | number> = {};
  if (u.hostname) out.host = decodePart(u.hostname.replace(/^\[|\]$/g, ''), 'host');
  if (u.port) out.port = Number(u.port);
  if (u.username) out.user = decodePart(u.username, 'user name');
  if (u.password) out.password = decodePart(u.password, 'password');
  const db = u.pathname.replace(/^\//, '');
  if (db) out.database = decodePart(db, 'database name');
  for (const pair of u.search.replace(/^\?/, '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodePart(eq < 0 ? pair : pair.slice(0, eq), 'query');
    const value = decodePart(eq < 0 ? '' : pair.slice(eq + 1), `${name} parameter`);
    const key = URL_PARAMS[name];
    if (key === undefined) {
      const safeName = name.replace(/[^\w.-]/g, '?').slice(0, 40);
      throw new PglandError('config_invalid', `url: unknown query parameter "${safeName}"`, {
        hint:
          name === 'ssl'
            ? "node-postgres's ssl=true is not libpq's: use sslmode=require (or verify-full) instead"
            : UNREAD_FILE_PARAMS.has(name)
              ? `pgland reads no ${name} file: give the values it would hold as keys of the config (password, sslrootcert…)`
              : `pgland understands ${Object.keys(URL_PARAMS).join(', ')}; other keys go in the config file`,
      });
    }
    // libpq's connect_timeout is in seconds.
    out[key] = key === 'connect_timeout_ms' ? Number(value) * 1000 : value;
  }
  return out;
}

/** Applies one level's values over the levels below, a secret and its _file key replacing each other. */
function applyLevel(target: Record<string, unknown>, level: Record<string, unknown>, pairs: readonly (readonly [string, string])[]): void {
  for (const [k, v] of Object.entries(level)) {
    if (v === undefined) continue;
    for (const [a, b] of pairs) {
      if (k === a) delete target[b];
      if (k === b) delete target[a];
    }
    target[k] = v;
  }
}

function fromEnv(env: NodeJS.ProcessEnv, keys: readonly string[], prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const v = env[envName(prefix + key)];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

function invalid(issues: readonly { path: readonly PropertyKey[]; message: string }[]): PglandError {
  const lines = issues.map(
    // zod messages describe the expected shape, not the value, so they are safe for secrets too.
    (issue) => `${describePath(issue.path)}: ${issue.message}${isSecretPath(issue.path) ? ' (value hidden)' : ''}`,
  );
  return new PglandError('config_invalid', `invalid destination config:\n  ${lines.join('\n  ')}`, {
    hint: 'see docs/configuration.md for every key',
  });
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * The one place that resolves a destination config: explicit overrides (flags)
 * over environment variables over the file over defaults; a URL fills only the
 * keys that are not given explicitly. Nothing is read here: files named by
 * the config (password_file, a path in sslrootcert…) are read by
 * loadConfigFiles when connecting. Errors name the key and the problem, never
 * a secret's value.
 */
export function resolveDestination(
  file: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
  overrides: Record<string, unknown> = {},
): DestinationConfig {
  const merged: Record<string, unknown> = {};
  const envLevel = fromEnv(env, ENV_KEYS);
  for (const level of [file, envLevel, overrides]) applyLevel(merged, level, SECRET_PAIRS);

  // ssh_tunnel merges key by key too, so that PGLAND_SSH_PASSPHRASE can complete a file's tunnel.
  const sshLevels = [asObject(file.ssh_tunnel), fromEnv(env, SSH_ENV_KEYS, 'ssh_tunnel.'), asObject(overrides.ssh_tunnel)];
  if (sshLevels.some((l) => l && Object.keys(l).length > 0)) {
    const ssh: Record<string, unknown> = {};
    for (const level of sshLevels) if (level) applyLevel(ssh, level, SSH_SECRET_PAIRS);
    merged.ssh_tunnel = ssh;
  } else if (file.ssh_tunnel !== undefined && !asObject(file.ssh_tunnel)) {
    merged.ssh_tunnel = file.ssh_tunnel; // let the schema say it must be an object
  }

  // sslkey_file is sugar for a path in sslkey (which takes PEM text or a path).
  if (merged.sslkey_file !== undefined) {
    merged.sslkey = merged.sslkey_file;
    delete merged.sslkey_file;
  }

  const parsed = destinationSchema.safeParse(merged);
  if (!parsed.success) throw invalid(parsed.error.issues);

  const { url, password_file } = parsed.data;
  const fromUrl = url ? parseUrl(url) : {};
  // Explicit keys (file, environment, flags) win over the URL's parts; the
  // schema's defaults apply last.
  const resolved: Record<string, unknown> = { ...fromUrl };
  for (const [k, v] of Object.entries(merged)) if (v !== undefined && k !== 'url') resolved[k] = v;
  // A password file wins over a password in the URL.
  if (password_file !== undefined) delete resolved.password;

  const again = destinationSchema.safeParse(resolved);
  // Only a URL's parts can fail here (the explicit keys passed above): say so.
  if (!again.success) throw invalid(again.error.issues.map((i) => ({ ...i, message: `${i.message} (from url)` })));
  const cfg = again.data;

  let ssh_tunnel: SshTunnelConfig | undefined;
  if (cfg.ssh_tunnel) {
    const { private_key_file, ...rest } = cfg.ssh_tunnel;
    ssh_tunnel = { ...rest, ...(private_key_file !== undefined ? { private_key: private_key_file } : {}) };
    if (ssh_tunnel.private_key === undefined && ssh_tunnel.password === undefined && ssh_tunnel.password_file === undefined) {
      throw new PglandError('config_invalid', 'invalid destination config:\n  "ssh_tunnel": give private_key (or private_key_file) or password', {
        hint: 'see docs/connecting.md, "SSH tunnel"',
      });
    }
  }
  const { url: _url, ssh_tunnel: _st, ...rest } = cfg;
  return {
    ...rest,
    host: cfg.host ?? 'localhost',
    port: cfg.port ?? 5432,
    database: cfg.database ?? 'postgres',
    user: cfg.user ?? 'postgres',
    ...(ssh_tunnel ? { ssh_tunnel } : {}),
  };
}

/** A copy of a config safe to log: secrets replaced. */
export function redactConfig(cfg: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg };
  for (const key of SECRET_KEYS) if (out[key] !== undefined) out[key] = '[redacted]';
  const ssh = asObject(out.ssh_tunnel);
  if (ssh) {
    const copy: Record<string, unknown> = { ...ssh };
    for (const key of SSH_SECRET_KEYS) if (copy[key] !== undefined) copy[key] = '[redacted]';
    out.ssh_tunnel = copy;
  }
  return out;
}
