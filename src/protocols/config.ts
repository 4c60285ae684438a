import { homedir } from 'node:os';
import { join } from 'node:path';
import { PglandError } from '../errors.js';
import { isPlainObject } from './messages.js';

/*
 * A protocol's config file holds pgland's own destination keys
 * (docs/configuration.md) and a few protocol keys; a Singer config may use the
 * key names of Meltano's Postgres targets instead (docs/protocols.md has both
 * side by side). This file splits and translates; resolveDestination then
 * validates the destination keys as for every other command.
 */

/** How records of a protocol land: the tenant, the kind of object, and when buffers are flushed. */
export interface ProtocolOptions {
  /** `_pgland_provider` of every row; with providerPrefix, standard objects land in `<provider>_<stream>`. */
  provider: string;
  /** Name tables `<provider>_<stream>` instead of `<stream>` (the default, as other Postgres targets name them). */
  providerPrefix: boolean;
  /** `_pgland_customer_id` of every row: the tenant. */
  customerId: string;
  /** standard: `<stream>` tables (`<provider>_<stream>` with providerPrefix); custom: `custom_<stream>`. */
  kind: 'standard' | 'custom';
  /** Minimum milliseconds between two flushes caused by STATE messages (0: every STATE that follows records). */
  flushIntervalMs: number;
  /** Singer: ignore key properties, append every record (Meltano's load_method append-only). */
  appendOnly: boolean;
  /** Singer: act on ACTIVATE_VERSION messages (Meltano's activate_version). */
  activateVersion: boolean;
  /**
   * A record without a value for a key property: `fail` stops the run (the
   * Singer SDK's convention, Singer's default), `reject` keeps it in
   * _pgland_rejects and goes on (Airbyte's default: a data problem).
   */
  missingKey: 'fail' | 'reject';
}

export interface ProtocolConfig {
  /** Destination keys, for openDestination / resolveDestination. */
  destination: Record<string, unknown>;
  options: ProtocolOptions;
}

function invalid(message: string, hint = 'see docs/protocols.md for the keys a protocol config takes'): PglandError {
  return new PglandError('config_invalid', `invalid protocol config: ${message}`, { hint });
}

function bool(key: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  // Meltano passes settings from the environment as strings.
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0 || v === '') return false;
  throw invalid(`${JSON.stringify(key)} must be true or false`);
}

function str(key: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(`${JSON.stringify(key)} must be a non-empty string`);
  return v;
}

function nonNegative(key: string, v: unknown, scale = 1): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw invalid(`${JSON.stringify(key)} must be a number of at least 0`);
  return Math.round(n * scale);
}

/** `~/x` as the user's home folder, as Meltano's targets read certificate paths. */
function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

/** Takes the protocol keys out of a config; the rest is left for the destination. */
function protocolOptions(rest: Record<string, unknown>, defaults: { provider: string; missingKey: 'fail' | 'reject' }): ProtocolOptions {
  const take = (key: string): unknown => {
    const v = rest[key];
    delete rest[key];
    return v;
  };
  const provider = take('provider');
  const customer = take('customer');
  const customerId = take('customer_id');
  const kind = take('kind');
  const interval = take('flush_interval_ms');
  const prefix = take('provider_prefix');
  const missingKey = take('missing_key');
  if (kind !== undefined && kind !== 'standard' && kind !== 'custom') throw invalid('"kind" must be "standard" or "custom"');
  if (missingKey !== undefined && missingKey !== 'fail' && missingKey !== 'reject') throw invalid('"missing_key" must be "fail" or "reject"');
  return {
    provider: provider === undefined ? defaults.provider : str('provider', provider),
    providerPrefix: prefix === undefined ? false : bool('provider_prefix', prefix),
    missingKey: (missingKey as 'fail' | 'reject' | undefined) ?? defaults.missingKey,
    customerId: customer !== undefined ? str('customer', customer) : customerId !== undefined ? str('customer_id', customerId) : 'default',
    kind: (kind as 'standard' | 'custom' | undefined) ?? 'standard',
    flushIntervalMs: interval === undefined ? 0 : nonNegative('flush_interval_ms', interval),
    appendOnly: false,
    activateVersion: true,
  };
}

/** Keys of Meltano's targets that pgland accepts and has no use for (its own columns and COPY cover them). */
const IGNORED_SINGER_KEYS = [
  'add_record_metadata',
  'validate_records',
  'flattening_max_depth',
  'stream_map_config',
  'faker_config',
  'use_copy',
  'interpret_content_encoding',
  'sanitize_null_text_characters',
  'ssl_storage_directory',
  'dialect+driver',
];

/** Meltano's ssh_tunnel (enable, username, private_key_password) as pgland's (user, passphrase). */
function sshTunnel(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  const meltanoShape = ['enable', 'username', 'private_key_password'].some((k) => Object.hasOwn(v, k));
  if (!meltanoShape) return v;
  if (!bool('ssh_tunnel.enable', v.enable ?? false)) return undefined;
  const { enable: _enable, username, private_key_password, ...rest } = v;
  return {
    ...rest,
    ...(username !== undefined && rest.user === undefined ? { user: username } : {}),
    ...(private_key_password !== undefined && rest.passphrase === undefined ? { passphrase: private_key_password } : {}),
  };
}

/**
 * A Singer target's config: pgland's keys, the protocol keys, and the keys of
 * Meltano's Postgres targets (MeltanoLabs' target-postgres), translated. When
 * both spellings of a setting are given, pgland's own key wins.
 */
export function singerConfig(file: Record<string, unknown>): ProtocolConfig {
  const rest: Record<string, unknown> = { ...file };
  const options = protocolOptions(rest, { provider: 'singer', missingKey: 'fail' });
  const take = (key: string): unknown => {
    const v = rest[key];
    delete rest[key];
    return v;
  };
  const dest: Record<string, unknown> = {};
  const setIfAbsent = (key: string, v: unknown): void => {
    if (v !== undefined && rest[key] === undefined) dest[key] = v;
  };

  const schema = take('default_target_schema');
  if (schema !== undefined) setIfAbsent('schema', str('default_target_schema', schema));
  const url = take('sqlalchemy_url');
  // SQLAlchemy names the driver in the scheme (postgresql+psycopg://); libpq does not.
  if (url !== undefined) setIfAbsent('url', str('sqlalchemy_url', url).replace(/^postgres(ql)?\+[\w-]+:\/\//, 'postgresql://'));

  // Meltano's targets use the ssl_* keys only when ssl_enable is true; a config
  // file carries their defaults (ssl_mode: verify-full) either way.
  const sslEnable = take('ssl_enable');
  const sslMode = take('ssl_mode');
  const sslCa = take('ssl_certificate_authority');
  const clientEnable = take('ssl_client_certificate_enable');
  const clientCert = take('ssl_client_certificate');
  const clientKey = take('ssl_client_private_key');
  if (sslEnable !== undefined && bool('ssl_enable', sslEnable)) {
    // libpq's "allow" tries without TLS first; pgland has no such mode: prefer is the nearest.
    const mode = sslMode === undefined ? 'verify-full' : str('ssl_mode', sslMode) === 'allow' ? 'prefer' : sslMode;
    setIfAbsent('sslmode', mode);
    if (sslCa !== undefined) setIfAbsent('sslrootcert', expandHome(str('ssl_certificate_authority', sslCa)));
  }
  if (clientEnable !== undefined && bool('ssl_client_certificate_enable', clientEnable)) {
    setIfAbsent('sslcert', expandHome(clientCert === undefined ? '~/.postgresql/postgresql.crt' : str('ssl_client_certificate', clientCert)));
    setIfAbsent('sslkey', expandHome(clientKey === undefined ? '~/.postgresql/postgresql.key' : str('ssl_client_private_key', clientKey)));
  }

  if (Object.hasOwn(rest, 'ssh_tunnel')) {
    const tunnel = sshTunnel(rest.ssh_tunnel);
    if (tunnel === undefined) delete rest.ssh_tunnel;
    else rest.ssh_tunnel = tunnel;
  }

  const hardDelete = take('hard_delete');
  if (hardDelete !== undefined) setIfAbsent('delete_mode', bool('hard_delete', hardDelete) ? 'hard' : 'soft');
  const activate = take('activate_version');
  if (activate !== undefined) options.activateVersion = bool('activate_version', activate);
  const batchRows = take('batch_size_rows');
  if (batchRows !== undefined && batchRows !== null) setIfAbsent('batch_size', batchRows);
  const wait = take('batch_wait_limit_seconds');
  if (wait !== undefined && wait !== null) options.flushIntervalMs = nonNegative('batch_wait_limit_seconds', wait, 1000);

  const loadMethod = take('load_method');
  if (loadMethod !== undefined && loadMethod !== null) {
    if (loadMethod === 'append-only') options.appendOnly = true;
    else if (loadMethod !== 'upsert') {
      throw invalid(
        `load_method ${JSON.stringify(loadMethod)} is not supported`,
        "use upsert (the default: keyed streams are upserted, streams without key properties appended) or append-only; for full-table replication, the tap's ACTIVATE_VERSION messages delete what a full sync no longer has",
      );
    }
  }
  const maps = take('stream_maps');
  if (maps !== undefined && maps !== null && !(isPlainObject(maps) && Object.keys(maps).length === 0)) {
    // Landing unmapped data (e.g. PII a map was meant to hash) would be worse than stopping.
    throw invalid('stream_maps are not supported by pgland', 'run the maps as a Meltano mapper plugin (meltano-map-transformer) between the tap and pgland');
  }
  const flattening = take('flattening_enabled');
  if (flattening !== undefined && flattening !== null && bool('flattening_enabled', flattening)) {
    throw invalid('flattening_enabled is not supported by pgland: nested objects land as jsonb', 'remove flattening_enabled, or flatten with a Meltano mapper');
  }
  for (const key of IGNORED_SINGER_KEYS) delete rest[key];

  return { destination: { ...rest, ...dest }, options };
}

/** An Airbyte destination's config: pgland's keys and the protocol keys (the spec that `pgland airbyte spec` prints). */
export function airbyteConfig(file: Record<string, unknown>): ProtocolConfig {
  const rest: Record<string, unknown> = { ...file };
  const options = protocolOptions(rest, { provider: 'airbyte', missingKey: 'reject' });
  return { destination: rest, options };
}
