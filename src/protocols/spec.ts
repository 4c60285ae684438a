import { z } from 'zod';
import { resolveDestination } from '../config/resolve.js';
import { destinationSchema, SECRET_KEYS, SSH_SECRET_KEYS } from '../config/schema.js';
import { runCheck } from '../connection/check.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { airbyteConfig } from './config.js';

/*
 * `pgland airbyte spec` and `check`. The connection specification is the
 * JSON Schema of pgland's destination config (src/config/schema.ts, through
 * zod's own converter, so the two cannot drift apart) plus the protocol keys,
 * with titles and descriptions for Airbyte's form and secrets marked
 * airbyte_secret so that the platform masks them.
 */

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema> };

/** Titles and one-line descriptions of the keys, for the platform's form (docs/configuration.md has the long form). */
const DESCRIPTIONS: Record<string, [title: string, description: string]> = {
  url: ['Connection URL', 'A postgres:// URL; the explicit keys below win over its parts.'],
  host: ['Host', 'Server host name or IP address.'],
  port: ['Port', 'Server port (5432 by default).'],
  database: ['Database', 'Database name.'],
  user: ['User', 'Role to connect as.'],
  password: ['Password', 'Password of the role.'],
  password_file: ['Password file', 'A file holding the password, instead of the password itself.'],
  schema: ['Schema', "Schema for the landed tables and pgland's metadata; created when missing."],
  sslmode: ['SSL mode', "TLS mode, with libpq's meanings."],
  sslrootcert: ['CA certificate', 'CA certificate(s) to verify the server with: PEM text or a path; "system" for the usual public CAs.'],
  sslcert: ['Client certificate', 'Client certificate: PEM text or a path.'],
  sslkey: ['Client key', "Client certificate's key: PEM text or a path."],
  sslservername: ['Server name', 'The name the server certificate must carry, when not the host.'],
  allow_cleartext_password: [
    'Allow cleartext password',
    'Send the password when the server asks for it in cleartext over an unencrypted connection (off: refused).',
  ],
  work_mem: ['Work memory', "work_mem of pgland's sessions (each batch's merge sorts in it)."],
  ssh_tunnel: ['SSH tunnel', 'Reach the database through an SSH bastion.'],
  delete_mode: ['Delete mode', 'soft: deleted rows are kept and marked; hard: they are removed.'],
  batch_size: ['Batch size', 'Records per batch; each batch is one transaction.'],
  batch_bytes: ['Batch bytes', "Upper bound on a batch's encoded size, in bytes."],
  max_record_bytes: [
    'Max record bytes',
    'The longest input message, in bytes: a longer RECORD is kept as a reject when its first bytes name its stream; any other message that long stops the run.',
  ],
  connect_timeout_ms: ['Connect timeout (ms)', 'Milliseconds to wait for a connection.'],
  statement_timeout_ms: ['Statement timeout (ms)', 'Milliseconds a statement may run (0: no limit).'],
  application_name: ['Application name', 'application_name shown in pg_stat_activity.'],
  batch_retries: ['Batch retries', 'How often a batch that failed on a transient error is replayed.'],
  lock_timeout_ms: ['Lock timeout (ms)', 'Milliseconds a sync waits for another load of the same stream and tenant.'],
  lease_ttl_ms: ['Lease time to live (ms)', "Milliseconds a load's lease on its stream lasts without renewal: a killed loader's lease lapses after this."],
  max_parallel_objects: ['Parallel streams', 'Streams landed in parallel.'],
  max_connections: ['Max connections', "The most connections opened to the database at once; at or below the role's connection limit."],
  provider: ['Provider', 'Recorded in every row; with provider_prefix, tables are named <provider>_<stream>.'],
  provider_prefix: ['Provider prefix', 'Name tables <provider>_<stream> instead of <stream>.'],
  customer: ['Customer', 'The tenant the records belong to, recorded in every row.'],
  kind: ['Object kind', 'standard: tables named after the streams; custom: custom_<stream> tables.'],
  missing_key: ['Missing key', 'A record without a primary key value: reject (kept in _pgland_rejects) or fail (the sync stops).'],
  flush_interval_ms: ['Flush interval (ms)', 'Minimum time between two commits caused by STATE messages (0: commit at every STATE that follows records).'],
};

const SSH_DESCRIPTIONS: Record<string, [string, string]> = {
  host: ['Bastion host', 'Bastion host name or IP address.'],
  port: ['Bastion port', 'Bastion SSH port.'],
  user: ['Bastion user', 'The user to log in to the bastion as.'],
  private_key: ['Private key', 'Private key (OpenSSH, PEM or PKCS#8): PEM text or a path.'],
  passphrase: ['Key passphrase', 'Passphrase of an encrypted private key.'],
  password: ['Bastion password', 'Password for password authentication on the bastion.'],
  host_key_fingerprint: ['Host key fingerprint', "The bastion's host key, pinned: SHA256:… as ssh-keygen -lf prints it."],
};

const PROTOCOL_PROPERTIES: Record<string, JsonSchema> = {
  provider: { type: 'string', minLength: 1, default: 'airbyte' },
  customer: { type: 'string', minLength: 1, default: 'default' },
  provider_prefix: { type: 'boolean', default: false },
  kind: { type: 'string', enum: ['standard', 'custom'], default: 'standard' },
  missing_key: { type: 'string', enum: ['reject', 'fail'], default: 'reject' },
  flush_interval_ms: { type: 'integer', minimum: 0, default: 0 },
};

function annotate(props: Record<string, JsonSchema>, texts: Record<string, [string, string]>, secrets: readonly string[]): void {
  for (const [key, prop] of Object.entries(props)) {
    const text = texts[key];
    if (text) {
      prop.title = text[0];
      prop.description = text[1];
    }
    if (secrets.includes(key)) prop.airbyte_secret = true;
  }
}

/** The connection specification: a draft-07 JSON Schema of the config `write` and `check` take. */
export function connectionSpecification(): JsonSchema {
  const schema = z.toJSONSchema(destinationSchema, { target: 'draft-7', io: 'input' }) as JsonSchema;
  const props = schema.properties ?? {};
  annotate(props, DESCRIPTIONS, [...SECRET_KEYS, 'password_file']);
  const ssh = props.ssh_tunnel;
  if (ssh?.properties) annotate(ssh.properties, SSH_DESCRIPTIONS, SSH_SECRET_KEYS);
  const protocol = structuredClone(PROTOCOL_PROPERTIES);
  annotate(protocol, DESCRIPTIONS, []);
  return { ...schema, title: 'pgland destination', properties: { ...props, ...protocol } };
}

/** The SPEC message `pgland airbyte spec` prints. */
export function specMessage(): Record<string, unknown> {
  return {
    type: 'SPEC',
    spec: {
      connectionSpecification: connectionSpecification(),
      supportsIncremental: true,
      supportsNormalization: false,
      supportsDBT: false,
      supported_destination_sync_modes: ['overwrite', 'append', 'append_dedup'],
    },
  };
}

/**
 * `pgland airbyte check`: the connection checks of `pgland check` (reach, TLS,
 * login, schema, grants, a write probe that is rolled back), as one
 * CONNECTION_STATUS. The message names the failing step and its fix, never a
 * secret.
 */
export async function connectionStatus(
  file: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<{ status: 'SUCCEEDED' | 'FAILED'; message: string }> {
  try {
    const { destination } = airbyteConfig(file);
    const cfg = resolveDestination(destination, env);
    const report = await runCheck(cfg, { log });
    const failed = report.steps.find((s) => s.status === 'fail');
    if (!failed) {
      return { status: 'SUCCEEDED', message: `pgland can land in schema ${cfg.schema} of ${cfg.database} on ${cfg.host}:${cfg.port} as ${cfg.user}` };
    }
    return { status: 'FAILED', message: `${failed.title}: ${failed.detail}${failed.fix ? `\n  fix: ${failed.fix}` : ''}` };
  } catch (err) {
    return { status: 'FAILED', message: describeError(err) };
  }
}
