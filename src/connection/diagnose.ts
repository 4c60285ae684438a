import { PglandError, sqlState, type ErrorCode } from '../errors.js';
import { quoteIdent } from '../sql/ident.js';

/** What a connection error is about: where pgland was going, as the user configured it. */
export interface ConnectTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: string;
  connect_timeout_ms: number;
  statement_timeout_ms?: number;
  /** Set when the database is reached through a bastion. */
  bastion?: string;
}

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Certificate verification errors of Node's TLS layer (OpenSSL's names). */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/**
 * Turns a connection or query error into a PglandError whose code is stable
 * (docs/connecting.md, "Errors"), whose message says what happened and whose
 * hint says what to do. The original error is kept as `cause`. Errors that
 * are already PglandErrors pass through.
 */
export function explain(err: unknown, t: ConnectTarget): PglandError {
  if (err instanceof PglandError) return err;
  const code = codeOf(err);
  const state = sqlState(err);
  const msg = messageOf(err);
  const where = `${t.host}:${t.port}${t.bastion ? ` (through the bastion ${t.bastion})` : ''}`;
  const make = (c: ErrorCode, message: string, hint: string): PglandError => new PglandError(c, message, { hint, cause: err });
  const u = quoteIdent(t.user);
  const d = quoteIdent(t.database);

  // Errors the server sent (SQLSTATE).
  if (state === '28P01') {
    return make(
      'auth_failed',
      `authentication failed for user ${t.user}: ${msg}`,
      'check the user and the password (give a password with special characters in the "password" key, or percent-encode it in the URL); ' +
        `check that the role may log in and has not expired: SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = '${t.user.replace(/'/g, "''")}'`,
    );
  }
  if (state === '28000') {
    if (/no encryption|SSL off/i.test(msg)) {
      return make(
        'ssl_required',
        `the server accepts only TLS connections from here, and sslmode is ${t.sslmode}: ${msg}`,
        'set "sslmode": "verify-full" (with the server\'s CA as sslrootcert) or at least "require"',
      );
    }
    if (/requires a valid client certificate/i.test(msg)) {
      return make(
        'client_cert_required',
        `the server requires a client certificate: ${msg}`,
        'give sslcert and sslkey (PEM text or paths) signed by a CA the server trusts (its ssl_ca_file)',
      );
    }
    if (/certificate authentication failed|does not match|certificate .*common name/i.test(msg)) {
      return make(
        'cert_auth_failed',
        `client certificate authentication failed: ${msg}`,
        `the certificate's common name (CN) must be the user name (${t.user}), or map it in pg_ident.conf`,
      );
    }
    if (/not permitted to log in/i.test(msg)) {
      return make('auth_failed', msg, `ALTER ROLE ${u} LOGIN;`);
    }
    if (/no pg_hba\.conf entry/i.test(msg)) {
      return make(
        'hba_rejected',
        `the server's pg_hba.conf has no line that lets ${t.user} in from here: ${msg}`,
        `add a line such as "hostssl ${t.database} ${t.user} <pgland's address>/32 scram-sha-256" to pg_hba.conf and reload (SELECT pg_reload_conf())` +
          (/SSL encryption|SSL on/i.test(msg) ? '; it may accept only unencrypted connections (hostnossl)' : ''),
      );
    }
    return make('auth_failed', `authentication failed: ${msg}`, "check the user, the password and the server's pg_hba.conf");
  }
  if (state === '3D000') {
    return make(
      'unknown_database',
      `database ${t.database} does not exist on ${where}`,
      `check the database name (SELECT datname FROM pg_database lists them), or create it: CREATE DATABASE ${d};`,
    );
  }
  if (state === '53300') {
    return make(
      'too_many_connections',
      `too many connections: ${msg}`,
      'see who holds them (SELECT usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2); close idle ones, ' +
        "raise max_connections or the role's CONNECTION LIMIT, lower max_parallel_objects, or connect through a pooler",
    );
  }
  if (state === '57014') {
    return make(
      'query_timeout',
      `a statement was cancelled: ${msg}`,
      /statement timeout/i.test(msg)
        ? `raise statement_timeout_ms (now ${t.statement_timeout_ms ?? 0}) or the role's statement_timeout; look for locks held by others (SELECT * FROM pg_locks WHERE NOT granted)`
        : 'the statement was cancelled by an administrator or a timeout; run again',
    );
  }
  if (state === '57P03') {
    return make('server_starting', `the server is not accepting connections yet: ${msg}`, 'wait until it has started (or left recovery) and run again');
  }
  if (state === '42501') {
    return make(
      'permission_denied',
      `permission denied: ${msg}`,
      /schema/i.test(msg)
        ? `grant the schema to ${t.user}: GRANT ALL ON SCHEMA <schema> TO ${u}; (see sql/setup/least-privilege.sql)`
        : /database/i.test(msg)
          ? `GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${d} TO ${u};`
          : `grant ${t.user} the table: GRANT SELECT, INSERT, UPDATE, DELETE ON <table> TO ${u}; or make ${t.user} its owner (pgland creates its own tables)`,
    );
  }

  if (/client password must be|password must be a string/i.test(msg)) {
    return make(
      'auth_failed',
      `the server asks ${t.user} for a password and none is given`,
      'give "password", or PGLAND_PASSWORD, or "password_file" / PGLAND_PASSWORD_FILE',
    );
  }

  // TLS.
  if (/does not support SSL/i.test(msg)) {
    return make(
      'ssl_unsupported',
      `the server at ${where} does not support TLS, and sslmode is ${t.sslmode}`,
      'turn TLS on in the server (ssl = on, with a certificate), or, only on a network you trust, set "sslmode": "prefer" or "disable"',
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return make(
      'tls_hostname_mismatch',
      `the server's certificate does not name ${t.host}: ${msg}`,
      'connect by a name the certificate carries, or set "sslservername" to the name it carries, or (weaker) use sslmode=verify-ca',
    );
  }
  if (code && UNTRUSTED.has(code)) {
    return make(
      'tls_untrusted',
      `the server's certificate is not signed by a trusted CA (${code})`,
      'give the CA that signed the server\'s certificate as "sslrootcert" (your provider publishes it), or (weaker) use sslmode=require',
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return make('tls_cert_expired', `the server's certificate is not valid now (${code})`, "renew the server's certificate, or check this machine's clock");
  }
  if ((code && code.startsWith('ERR_SSL')) || /error establishing an SSL connection|SSL routines|alert/i.test(msg)) {
    return make(
      'tls_failed',
      `the TLS handshake with ${where} failed: ${msg}`,
      "check sslmode, sslrootcert, sslcert and sslkey, and that the server's TLS settings accept TLS 1.2 or later",
    );
  }

  // The network.
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return make(
      'dns_failure',
      `the host name ${t.host} does not resolve (${code})`,
      'check the spelling of "host"; a name that only resolves inside a private network needs the bastion ("ssh_tunnel"), which resolves it',
    );
  }
  if (code === 'ECONNREFUSED') {
    return make(
      'connection_refused',
      `connection refused by ${where}`,
      'check host and port; check that PostgreSQL is running and listens on that address (listen_addresses), ' +
        'and that no firewall rejects pgland; for a database on a private network use "ssh_tunnel"',
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return make('host_unreachable', `no route to ${where} (${code})`, 'check the host; a database on a private network needs the bastion ("ssh_tunnel")');
  }
  if (code === 'ETIMEDOUT' || /timeout expired|connection timeout|timeout exceeded when trying to connect/i.test(msg)) {
    return make(
      'connect_timeout',
      `no answer from ${where} within ${t.connect_timeout_ms} ms`,
      'a firewall or security group probably drops the packets: allow pgland\'s address on the port, or use "ssh_tunnel"; ' +
        'on a slow link raise connect_timeout_ms',
    );
  }
  if (code === 'ECONNRESET' || /Connection terminated unexpectedly/i.test(msg)) {
    return make(
      'connection_lost',
      `the connection to ${where} was closed unexpectedly: ${msg}`,
      'the server, a proxy or a firewall closed it; a server that requires TLS may close plain connections: check sslmode',
    );
  }
  return make('connect_failed', `could not connect to ${where}: ${msg}`, 'run pgland check --config <file> for a step-by-step diagnosis');
}
