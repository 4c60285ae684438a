import { z } from 'zod';

/** The secrets of a destination config: never logged, never echoed in errors. */
export const SECRET_KEYS = ['password', 'sslkey', 'url'] as const;

export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

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
    /** CA certificate(s): PEM text or a path. */
    sslrootcert: z.string().min(1).optional(),
    /** Client certificate: PEM text or a path. */
    sslcert: z.string().min(1).optional(),
    /** Client key: PEM text or a path. */
    sslkey: z.string().min(1).optional(),
    /** Soft deletes mark rows deleted; hard deletes remove them. */
    delete_mode: z.enum(['soft', 'hard']).default('soft'),
    /** Records per batch (one transaction each). */
    batch_size: z.coerce.number().int().min(1).max(10_000_000).default(20_000),
    /** Upper bound on a batch's encoded size, in bytes. */
    batch_bytes: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
    /** Milliseconds to wait for a connection. */
    connect_timeout_ms: z.coerce.number().int().min(1).default(15_000),
    /** Milliseconds a single statement may run (0: no limit). */
    statement_timeout_ms: z.coerce.number().int().min(0).default(0),
    /** application_name shown in pg_stat_activity. */
    application_name: z.string().default('pgland'),
    /** How often a batch that failed on a retryable error (lost connection, serialization) is replayed. */
    batch_retries: z.coerce.number().int().min(0).max(100).default(3),
    /** Milliseconds a run waits for another run on the same tenant and object to finish. */
    lock_timeout_ms: z.coerce.number().int().min(0).default(60_000),
    /** Objects loaded in parallel by one process. */
    max_parallel_objects: z.coerce.number().int().min(1).max(64).default(2),
  })
  .strict();

export type DestinationInput = z.input<typeof destinationSchema>;
export type DestinationFile = z.output<typeof destinationSchema>;
