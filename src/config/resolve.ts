import { readFileSync } from 'node:fs';
import { PglandError } from '../errors.js';
import { destinationSchema, SECRET_KEYS, type DestinationFile } from './schema.js';

/** A destination config with every connection key resolved. */
export interface DestinationConfig extends Omit<DestinationFile, 'url' | 'password_file'> {
  host: string;
  port: number;
  database: string;
  user: string;
}

/** Environment variables read for each key: PGLAND_<KEY>, e.g. PGLAND_PASSWORD, PGLAND_DATABASE_URL. */
export function envName(key: string): string {
  return key === 'url' ? 'PGLAND_DATABASE_URL' : `PGLAND_${key.toUpperCase()}`;
}

const ENV_KEYS = ['url', 'host', 'port', 'database', 'user', 'password', 'password_file', 'schema', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'delete_mode', 'batch_size'] as const;

function describePath(path: PropertyKey[]): string {
  return path.length === 0 ? 'the config' : `"${path.map(String).join('.')}"`;
}

/** Reads a file, or says which key named it and why it cannot be read. */
function readSecretFile(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new PglandError('config_invalid', `${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'check the path and its permissions',
    });
  }
}

function parseUrl(url: string): Partial<Record<string, string | number>> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The URL itself is a secret (it may hold a password): never echo it.
    throw new PglandError('config_invalid', 'url: not a valid postgres:// URL', {
      hint: 'use postgres://user:password@host:5432/database; percent-encode special characters, or give the keys separately',
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PglandError('config_invalid', `url: the scheme must be postgres:// (got ${u.protocol}//)`);
  }
  const out: Partial<Record<string, string | number>> = {};
  if (u.hostname) out.host = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
  if (u.port) out.port = Number(u.port);
  if (u.username) out.user = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) out.database = decodeURIComponent(db);
  for (const k of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'schema']) {
    const v = u.searchParams.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

/**
 * The one place that resolves a destination config: explicit overrides (flags)
 * over environment variables over the file over defaults; a URL fills only the
 * keys that are not given explicitly. Errors name the key and the problem,
 * never a secret's value.
 */
export function resolveDestination(
  file: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
  overrides: Record<string, unknown> = {},
): DestinationConfig {
  const merged: Record<string, unknown> = { ...file };
  for (const key of ENV_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  Object.assign(merged, Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)));

  const parsed = destinationSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const secret = (SECRET_KEYS as readonly string[]).includes(key);
      // zod messages describe the expected shape, not the value, so they are safe for secrets too.
      return `${describePath(issue.path)}: ${issue.message}${secret ? ' (value hidden)' : ''}`;
    });
    throw new PglandError('config_invalid', `invalid destination config:\n  ${lines.join('\n  ')}`, {
      hint: 'see docs/configuration.md for every key',
    });
  }
  const { url, password_file } = parsed.data;
  const fromUrl = url ? parseUrl(url) : {};
  // Explicit keys (file, environment, flags) win over the URL's parts; the
  // schema's defaults apply last.
  const resolved: Record<string, unknown> = { ...fromUrl };
  for (const [k, v] of Object.entries(merged)) if (v !== undefined && k !== 'url' && k !== 'password_file') resolved[k] = v;
  if (resolved.password === undefined && password_file) resolved.password = readSecretFile('password_file', password_file);
  const cfg = destinationSchema.parse(resolved);
  return {
    ...cfg,
    host: cfg.host ?? 'localhost',
    port: cfg.port ?? 5432,
    database: cfg.database ?? 'postgres',
    user: cfg.user ?? 'postgres',
  };
}

/** A copy of a config safe to log: secrets replaced. */
export function redactConfig(cfg: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg };
  for (const key of SECRET_KEYS) if (out[key] !== undefined) out[key] = '[redacted]';
  return out;
}
