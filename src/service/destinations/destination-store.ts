import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { isKeyText, isPem } from '../../config/files.js';
import { resolveDestination, type DestinationConfig } from '../../config/resolve.js';
import { destinationSchema, SECRET_KEYS, SSH_SECRET_KEYS } from '../../config/schema.js';
import { PglandError } from '../../errors.js';
import type { ControlDb } from '../control/control-db.js';
import { refuseMovedSecrets } from './secret-binding.js';
import { SECRET_SET, type SecretBox } from '../control/secrets.js';

/**
 * Destinations configured over the API, kept in the control database. The
 * config is the same as a destination config file (docs/configuration.md),
 * with two differences: secrets are sealed at rest and never returned (the
 * API shows "[set]"), and nothing may name a file of the server (no *_file
 * keys; certificates and keys are given as PEM text), since whoever can call
 * the API must not be able to make pgland read the server's files.
 */
export interface DestinationView {
  id: string;
  name: string;
  config: Record<string, unknown>;
  /** secrets_unreadable: the sealed secrets failed to open; the config is shown without them. */
  status: 'ok' | 'secrets_unreadable';
  problem?: string;
  created_at: Date;
  updated_at: Date;
}

type Json = Record<string, unknown>;

/** Keys that name a file of the server: refused over the API, at any level. */
const FILE_KEYS = new Set(['password_file', 'sslkey_file', 'private_key_file', 'passphrase_file']);

function stripForApi(schema: Json): Json {
  const out: Json = { ...schema };
  delete out.$schema;
  delete out.default;
  if (isObject(out.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties)
        .filter(([k]) => !FILE_KEYS.has(k))
        .map(([k, v]) => [k, isObject(v) ? stripForApi(v) : v]),
    );
  }
  return out;
}

/**
 * The JSON Schema of a destination config over the API, derived from the
 * config file's schema (one source of truth), without defaults (a stored
 * config keeps only what was given) and without the *_file keys.
 */
export function destinationConfigJsonSchema(): Json {
  return stripForApi(z.toJSONSchema(destinationSchema, { io: 'input', unrepresentable: 'any' }) as Json);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Refuses values that would make pgland read a file of the server, checked on
 * the resolved config so that a path in the URL's query string
 * (?sslrootcert=/etc/shadow) is refused like the key itself: whoever holds
 * the API token must not learn which files exist (a missing file, a directory
 * and an unreadable one would fail differently) nor make pgland open a FIFO.
 */
export function refuseServerFiles(cfg: DestinationConfig): void {
  const refuse = (key: string, what: string): never => {
    throw new PglandError(
      'config_invalid',
      `${key}: over the API, give the ${what} itself; a path on the pgland server is not accepted (as a key or in the url)`,
      {
        hint: what === 'PEM text' ? 'paste the certificate or key (-----BEGIN …) as the value' : `give ${key.replace(/_file$/, '')} itself`,
      },
    );
  };
  const pem = (key: string, value: string | undefined, isText: (v: string) => boolean = isPem): void => {
    if (value !== undefined && !isText(value)) refuse(key, 'PEM text');
  };
  if (cfg.sslrootcert !== 'system') pem('sslrootcert', cfg.sslrootcert);
  pem('sslcert', cfg.sslcert);
  pem('sslkey', cfg.sslkey);
  if (cfg.password_file !== undefined) refuse('password_file', 'password');
  const t = cfg.ssh_tunnel;
  if (!t) return;
  pem('ssh_tunnel.private_key', t.private_key, isKeyText);
  if (t.passphrase_file !== undefined) refuse('ssh_tunnel.passphrase_file', 'passphrase');
  if (t.password_file !== undefined) refuse('ssh_tunnel.password_file', 'password');
}

/** The resolved config, or undefined when it no longer resolves (stored by an older pgland, say). */
function resolvesOrNot(config: Json): DestinationConfig | undefined {
  try {
    return resolveDestination(config, {}, {});
  } catch {
    return undefined;
  }
}

/** Splits a config into its plain part and its secrets. */
function split(config: Json): { plain: Json; secrets: Json } {
  const plain: Json = { ...config };
  const secrets: Json = {};
  for (const key of SECRET_KEYS) {
    if (plain[key] !== undefined) {
      secrets[key] = plain[key];
      delete plain[key];
    }
  }
  if (isObject(plain.ssh_tunnel)) {
    const ssh: Json = { ...plain.ssh_tunnel };
    const sshSecrets: Json = {};
    for (const key of SSH_SECRET_KEYS) {
      if (ssh[key] !== undefined) {
        sshSecrets[key] = ssh[key];
        delete ssh[key];
      }
    }
    plain.ssh_tunnel = ssh;
    if (Object.keys(sshSecrets).length > 0) secrets.ssh_tunnel = sshSecrets;
  }
  return { plain, secrets };
}

function join(plain: Json, secrets: Json): Json {
  const config: Json = { ...plain };
  for (const [k, v] of Object.entries(secrets)) {
    if (k === 'ssh_tunnel' && isObject(v)) config.ssh_tunnel = { ...(config.ssh_tunnel as Json), ...v };
    else config[k] = v;
  }
  return config;
}

/** The config as the API shows it: every secret that is set reads "[set]". */
function redacted(plain: Json, secrets: Json): Json {
  const marks: Json = {};
  for (const [k, v] of Object.entries(secrets)) {
    if (k === 'ssh_tunnel' && isObject(v)) marks.ssh_tunnel = Object.fromEntries(Object.keys(v).map((s) => [s, SECRET_SET]));
    else marks[k] = SECRET_SET;
  }
  return join(plain, marks);
}

/**
 * A secret sent back as "[set]" keeps its stored value (so a client can GET,
 * change, PUT); `kept` names those secrets, for refuseMovedSecrets.
 */
function keepMarked(next: Json, stored: Json): { config: Json; kept: string[] } {
  const out: Json = { ...next };
  const kept: string[] = [];
  for (const [k, v] of Object.entries(next)) {
    if (v === SECRET_SET) {
      if (stored[k] === undefined) throw new PglandError('config_invalid', `${k}: "[set]" stands for a stored secret, and none is stored`);
      out[k] = stored[k];
      kept.push(k);
    }
  }
  if (isObject(next.ssh_tunnel)) {
    const storedSsh = isObject(stored.ssh_tunnel) ? stored.ssh_tunnel : {};
    const ssh: Json = { ...next.ssh_tunnel };
    for (const [k, v] of Object.entries(ssh)) {
      if (v !== SECRET_SET) continue;
      if (storedSsh[k] === undefined) throw new PglandError('config_invalid', `ssh_tunnel.${k}: "[set]" stands for a stored secret, and none is stored`);
      ssh[k] = storedSsh[k];
      kept.push(`ssh_tunnel.${k}`);
    }
    out.ssh_tunnel = ssh;
  }
  return { config: out, kept };
}

/** Checks a config the way a load would resolve it; errors name keys, never secret values. */
function validate(config: Json): DestinationConfig {
  const cfg = resolveDestination(config, {}, {});
  refuseServerFiles(cfg);
  return cfg;
}

interface Row {
  id: string;
  name: string;
  config: Json;
  secrets: string | null;
  created_at: Date;
  updated_at: Date;
}

export class DestinationStore {
  constructor(
    private readonly ctl: ControlDb,
    private readonly box: SecretBox,
  ) {}

  private seal(id: string, secrets: Json): string | null {
    return Object.keys(secrets).length === 0 ? null : this.box.seal(JSON.stringify(secrets), `destination:${id}`);
  }

  private secretsOf(row: Row): Json {
    return row.secrets === null ? {} : (JSON.parse(this.box.open(row.secrets, `destination:${row.id}`)) as Json);
  }

  /**
   * One destination as the API shows it. A row whose secrets cannot be opened
   * (tampered with, or sealed under another key) is shown without them and
   * marked, rather than failing the listing of every destination.
   */
  private view(row: Row): DestinationView {
    const shown = { id: row.id, name: row.name, created_at: row.created_at, updated_at: row.updated_at };
    try {
      return { ...shown, config: redacted(row.config, this.secretsOf(row)), status: 'ok' };
    } catch (err) {
      if (!(err instanceof PglandError) || !err.code.startsWith('secret_')) throw err;
      return { ...shown, config: row.config, status: 'secrets_unreadable', problem: `${err.message}${err.hint ? `; ${err.hint}` : ''}` };
    }
  }

  private async row(id: string): Promise<Row> {
    const { rows } = await this.ctl.pool.query<Row>(`SELECT * FROM ${this.ctl.table('destinations')} WHERE id = $1::uuid`, [id]);
    if (!rows[0]) throw new PglandError('not_found', `no destination ${id}`, { context: { destinationId: id } });
    return rows[0];
  }

  async create(input: { name: string; config: Json }): Promise<DestinationView> {
    if (JSON.stringify(input.config).includes(JSON.stringify(SECRET_SET))) {
      throw new PglandError('config_invalid', '"[set]" stands for a stored secret: give the secret itself when creating a destination');
    }
    validate(input.config);
    const id = randomUUID();
    const { plain, secrets } = split(input.config);
    const { rows } = await this.ctl.pool
      .query<Row>(`INSERT INTO ${this.ctl.table('destinations')} (id, name, config, secrets) VALUES ($1, $2, $3, $4) RETURNING *`, [
        id,
        input.name,
        plain,
        this.seal(id, secrets),
      ])
      .catch(nameTaken(input.name));
    return this.view(rows[0]!);
  }

  async get(id: string): Promise<DestinationView> {
    return this.view(await this.row(id));
  }

  async list(): Promise<DestinationView[]> {
    const { rows } = await this.ctl.pool.query<Row>(`SELECT * FROM ${this.ctl.table('destinations')} ORDER BY created_at, id`);
    return rows.map((r) => this.view(r));
  }

  /** Replaces the config; secrets sent as "[set]" keep their stored values. */
  async update(id: string, input: { name?: string; config: Json }): Promise<DestinationView> {
    const current = await this.row(id);
    // Stored secrets are opened only when "[set]" asks for them: a row whose secrets are unreadable can be repaired by sending them again.
    const marked = JSON.stringify(input.config).includes(JSON.stringify(SECRET_SET));
    const stored = marked ? this.secretsOf(current) : {};
    const { config, kept } = keepMarked(input.config, stored);
    const after = validate(config);
    if (kept.length > 0) refuseMovedSecrets(kept, resolvesOrNot(join(current.config, stored)), after);
    const { plain, secrets } = split(config);
    const { rows } = await this.ctl.pool
      .query<Row>(`UPDATE ${this.ctl.table('destinations')} SET name = $2, config = $3, secrets = $4, updated_at = now() WHERE id = $1::uuid RETURNING *`, [
        id,
        input.name ?? current.name,
        plain,
        this.seal(id, secrets),
      ])
      .catch(nameTaken(input.name ?? current.name));
    if (!rows[0]) throw new PglandError('not_found', `no destination ${id}`);
    return this.view(rows[0]);
  }

  /** Deletes a destination with no open run and no schedule. */
  async delete(id: string): Promise<void> {
    await this.row(id);
    const open = await this.ctl.pool.query(
      `SELECT 1 FROM ${this.ctl.table('runs')} WHERE destination_id = $1::uuid AND status IN ('open', 'committing', 'running') LIMIT 1`,
      [id],
    );
    if (open.rowCount) throw new PglandError('conflict', `destination ${id} has runs in progress`, { hint: 'commit or abort them first' });
    try {
      await this.ctl.pool.query(`DELETE FROM ${this.ctl.table('destinations')} WHERE id = $1::uuid`, [id]);
    } catch (err) {
      if ((err as { code?: string }).code === '23503') {
        throw new PglandError('conflict', `destination ${id} has schedules`, { hint: 'delete its schedules first', cause: err });
      }
      throw err;
    }
  }

  /**
   * The whole config, secrets included, for opening the destination. Never
   * returned by the API. Checked again: a row stored by an older pgland may
   * name a file of the server.
   */
  async config(id: string): Promise<Json> {
    const row = await this.row(id);
    const config = join(row.config, this.secretsOf(row));
    validate(config);
    return config;
  }

  /** The resolved config (defaults applied), secrets included. */
  async resolved(id: string): Promise<DestinationConfig> {
    return validate(await this.config(id));
  }
}

function nameTaken(name: string): (err: unknown) => never {
  return (err) => {
    if ((err as { code?: string }).code === '23505') {
      throw new PglandError('conflict', `a destination named "${name}" exists`, { hint: 'choose another name', cause: err });
    }
    throw err;
  };
}
