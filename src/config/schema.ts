import { z } from 'zod';
import { DEFAULT_MAX_LINE_BYTES } from '../input/lines.js';

/**
 * The secrets of a destination config: never logged, never echoed in errors.
 * Nested keys are written with a dot (ssh_tunnel.password).
 */
export const SECRET_KEYS = ['password', 'sslkey', 'url'] as const;
export const SSH_SECRET_KEYS = ['private_key', 'passphrase', 'password'] as const;

export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** An OpenSSH SHA256 fingerprint as `ssh-keygen -lf` prints it: SHA256: and 43 characters of unpadded base64. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

/**
 * The SSH bastion that the database is reached through (docs/connecting.md).
 * Exactly one of private_key and password is usually given; both may be.
 */
export const sshTunnelSchema = z
  .object({
    /** Bastion host name or IP address. */
    host: z.string().min(1),
    /** Bastion SSH port. */
    port: z.coerce.number().int().min(1).max(65535).default(22),
    /** The user to log in to the bastion as. */
    user: z.string().min(1),
    /** Private key (ed25519, ECDSA or RSA; OpenSSH, PEM or PKCS#8): PEM text or a path. */
    private_key: z.string().min(1).optional(),
    /** A file holding the private key (same as giving its path as private_key). */
    private_key_file: z.string().min(1).optional(),
    /** Passphrase of an encrypted private key. */
    passphrase: z.string().optional(),
    /** A file holding the passphrase (trailing newline ignored). */
    passphrase_file: z.string().min(1).optional(),
    /** Password for password (or keyboard-interactive) authentication on the bastion. */
    password: z.string().optional(),
    /** A file holding the bastion password (trailing newline ignored). */
    password_file: z.string().min(1).optional(),
    /** The bastion's host key, pinned: SHA256:… as `ssh-keygen -lf` prints it. Required to load. */
    host_key_fingerprint: z.string().trim().regex(FINGERPRINT, 'must look like SHA256:<43 base64 characters>, as ssh-keygen -lf prints it').optional(),
    /** Milliseconds between SSH keepalive messages (0: none). */
    keepalive_interval_ms: z.coerce.number().int().min(0).default(10_000),
    /** Unanswered keepalives after which the tunnel counts as lost. */
    keepalive_count_max: z.coerce.number().int().min(1).default(3),
    /** How often a lost tunnel is re-established for a new connection before giving up. */
    reconnect_attempts: z.coerce.number().int().min(0).max(100).default(5),
  })
  .strict();

/**
 * A destination config, as a file gives it. Key names follow libpq's so that
 * PostgreSQL users recognise them (docs/configuration.md lists each).
 */
export const destinationSchema = z
  .object({
    /** A postgres:// URL; explicit keys win over its parts. */
    url: z.string().min(1).optional(),
    /** Server host name or IP address. */
    host: z.string().min(1).optional(),
    /** Server port. */
    port: z.coerce.number().int().min(1).max(65535).optional(),
    /** Database name. */
    database: z.string().min(1).optional(),
    /** Role to connect as. */
    user: z.string().min(1).optional(),
    /** Password; may instead come from PGLAND_PASSWORD or a file (password_file). */
    password: z.string().optional(),
    /** A file holding the password (trailing newline ignored). */
    password_file: z.string().min(1).optional(),
    /** Schema for landed tables and pgland's metadata; created when missing. */
    schema: z.string().min(1).max(63).default('pgland'),
    /** TLS mode, with libpq's meanings. */
    sslmode: z.enum(SSL_MODES).default('prefer'),
    /** CA certificate(s): PEM text or a path; "system" for the usual public CAs. */
    sslrootcert: z.string().min(1).optional(),
    /** Client certificate: PEM text or a path. */
    sslcert: z.string().min(1).optional(),
    /** Client key: PEM text or a path. */
    sslkey: z.string().min(1).optional(),
    /** The name the server certificate must carry (verify-full) and the TLS SNI name, when not `host`. */
    sslservername: z.string().min(1).optional(),
    /**
     * Send the password when the server asks for it in cleartext over a
     * connection that is not encrypted (pg_hba.conf method `password` without
     * TLS). Off: pgland refuses, as libpq's require_auth=!password does.
     */
    allow_cleartext_password: z
      .union([z.boolean(), z.enum(['true', 'false'])]) // "true"/"false" from PGLAND_ALLOW_CLEARTEXT_PASSWORD
      .transform((v) => v === true || v === 'true')
      .default(false),
    /** Reach the database through an SSH bastion. */
    ssh_tunnel: sshTunnelSchema.optional(),
    /** Soft deletes mark rows deleted; hard deletes remove them. */
    delete_mode: z.enum(['soft', 'hard']).default('soft'),
    /** Records per batch (one transaction each). */
    batch_size: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
    /** Upper bound on a batch's encoded size, in bytes. */
    batch_bytes: z.coerce
      .number()
      .int()
      .min(1024)
      .default(32 * 1024 * 1024),
    /**
     * The longest input line (one record or message), in bytes: a longer one
     * is skipped as it streams, never held, and kept as a reject with an
     * excerpt. Memory per reader stays below this plus one chunk.
     */
    max_record_bytes: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 ** 3)
      .default(DEFAULT_MAX_LINE_BYTES),
    /** Milliseconds to wait for a connection (TCP, TLS, authentication; the SSH handshake too). */
    connect_timeout_ms: z.coerce.number().int().min(1).default(15_000),
    /** Milliseconds a single statement may run (0: no limit). */
    statement_timeout_ms: z.coerce.number().int().min(0).default(0),
    /** application_name shown in pg_stat_activity. */
    application_name: z.string().default('pgland'),
    /**
     * work_mem of pgland's sessions: the merge sorts each batch by id, and a
     * batch that does not fit sorts on disk (the server's default is 4MB).
     */
    work_mem: z
      .string()
      .regex(/^\d+\s*(kB|MB|GB)?$/, 'a size such as 64MB')
      .default('64MB'),
    /** How often a batch that failed on a retryable error (lost connection, serialization) is replayed. */
    batch_retries: z.coerce.number().int().min(0).max(100).default(3),
    /** Milliseconds a run waits for another run on the same tenant and object to finish. */
    lock_timeout_ms: z.coerce.number().int().min(0).default(60_000),
    /**
     * Milliseconds a run's lease on its object lasts without renewal: a
     * killed loader's lease lapses after this (sooner on a direct connection).
     */
    lease_ttl_ms: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
    /** Objects loaded in parallel by one process. */
    max_parallel_objects: z.coerce.number().int().min(1).max(64).default(2),
    /**
     * The most connections pgland opens to this database at once: in one
     * process, and under `pgland serve` across every worker process (a
     * connection waits for a free one rather than failing with "too many
     * connections"). At least 2: opening a destination checks for a pooler
     * with two connections at once. Unset: up to the pool size per process.
     */
    max_connections: z.coerce.number().int().min(2).max(1000).optional(),
  })
  .strict();

export type DestinationInput = z.input<typeof destinationSchema>;
export type DestinationFile = z.output<typeof destinationSchema>;
export type SshTunnelFile = z.output<typeof sshTunnelSchema>;
