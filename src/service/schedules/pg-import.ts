import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PassThrough } from 'node:stream';
import { resolveDestination, type DestinationConfig } from '../../config/resolve.js';
import { SECRET_KEYS, SSH_SECRET_KEYS } from '../../config/schema.js';
import { PglandError } from '../../errors.js';
import { checkFilter, FILTER_OPERATORS, type Filter } from '../../read/filters.js';
import type { ReadState } from '../../read/output.js';
import { readSource } from '../../read/read.js';
import { MAX_PAGE_SIZE, type ReadSpec } from '../../read/reader.js';
import { connectSource } from '../../read/source.js';
import { parseTableName } from '../../read/source-sql.js';
import type { ControlDb } from '../control/control-db.js';
import { refuseServerFiles } from '../destinations/destination-store.js';
import { refused, type Egress } from '../outbound/egress.js';
import { SECRET_SET } from '../control/secrets.js';

/*
 * A schedule's source can be a PostgreSQL data model (docs/reading.md,
 * "Scheduled imports"): a connection like a destination's, a table or a
 * query, a key, a cursor and filters. Each run reads the rows changed since
 * the schedule's bookmark (pgland read's keyset on (cursor, key)), lands them
 * through the ordinary load path, and only once that run has committed
 * stores the new bookmark (import_states in the control database). A run
 * that fails leaves the bookmark where it was: the next run reads the same
 * rows again, and landing them twice changes nothing. A run without a
 * bookmark (the first, or a full refresh) reads in one snapshot as
 * `pgland read` does (src/read/snapshot.ts), unless the source says
 * `paged`: a full refresh then sees the table as it was at one instant.
 *
 * The connection is held to the same rules as a destination configured over
 * the API (no file of the server named, secrets sealed with the rest of the
 * source and never shown back) and as a URL source (the egress policy: only
 * public addresses unless the operator allows a network).
 */

export interface PostgresSourceConfig {
  type: 'postgres';
  /** A destination-like connection config (url or host/port/database/user/password, TLS, ssh_tunnel). */
  connection: Record<string, unknown>;
  /** TABLE or SCHEMA.TABLE (a name with dots or capitals in double quotes). */
  table?: string;
  /** A SELECT, wrapped and never edited; read in a read-only transaction. */
  query?: string;
  key: string;
  cursor: string;
  filters?: Filter[];
  page_size?: number;
  /** Read a first or full run page by page too, instead of in one snapshot (docs/reading.md, "Snapshot reads"). */
  paged?: boolean;
}

/** The API's JSON Schema of a postgres source. */
export const postgresSourceSchema = {
  type: 'object',
  properties: {
    type: { const: 'postgres' },
    connection: {
      type: 'object',
      additionalProperties: true,
      description: "a destination config (docs/configuration.md); password, sslkey, url and the tunnel's secrets are sealed and never returned",
    },
    table: { type: 'string', minLength: 1, description: 'TABLE or SCHEMA.TABLE; give table or query' },
    query: { type: 'string', minLength: 1, description: 'a SELECT, wrapped as a subquery and read in a read-only transaction' },
    key: { type: 'string', minLength: 1, description: 'a unique column: the record id' },
    cursor: { type: 'string', minLength: 1, description: 'the column that moves forward when a row changes (updated_at, a version)' },
    filters: {
      type: 'array',
      items: {
        type: 'object',
        properties: { column: { type: 'string', minLength: 1 }, op: { type: 'string', enum: FILTER_OPERATORS }, value: {} },
        required: ['column', 'op'],
        additionalProperties: false,
      },
    },
    page_size: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE },
    paged: { type: 'boolean', description: 'read a first or full run page by page too, instead of in one snapshot' },
  },
  required: ['type', 'connection', 'key', 'cursor'],
  additionalProperties: false,
} as const;

function invalid(message: string, hint?: string): PglandError {
  return new PglandError('config_invalid', `source: ${message}`, hint ? { hint } : {});
}

/** The connection as it will be used: resolved without the server's environment, refusing paths of the server. */
function connectionOf(s: PostgresSourceConfig): DestinationConfig {
  let cfg: DestinationConfig;
  try {
    cfg = resolveDestination(s.connection, {}, {});
  } catch (err) {
    throw invalid(`connection: ${(err as Error).message}`, (err as PglandError).hint);
  }
  refuseServerFiles(cfg);
  return cfg;
}

function specOf(s: PostgresSourceConfig): ReadSpec {
  if ((s.table === undefined) === (s.query === undefined)) throw invalid('give either table or query');
  return {
    source: s.table !== undefined ? parseTableName(s.table) : { query: s.query! },
    key: s.key,
    cursor: s.cursor,
    filters: (s.filters ?? []).map(checkFilter),
    ...(s.page_size !== undefined ? { pageSize: s.page_size } : {}),
    ...(s.paged ? { paged: true } : {}),
  };
}

/** The host pgland connects to: the bastion when there is a tunnel. */
function firstHop(cfg: DestinationConfig): string {
  return cfg.ssh_tunnel ? cfg.ssh_tunnel.host : cfg.host;
}

/** Checks a postgres source when a schedule is saved: shape, connection config, and an address literal against the egress policy. */
export function checkPostgresSource(s: PostgresSourceConfig, egress: Egress): void {
  specOf(s);
  const host = firstHop(connectionOf(s)).replace(/^\[|\]$/g, '');
  if (isIP(host) && !egress.allows(host)) throw refused(host);
}

/** The source as the API shows it: the connection's secrets read "[set]". */
export function redactPostgresSource(s: PostgresSourceConfig): Record<string, unknown> {
  const connection: Record<string, unknown> = { ...s.connection };
  for (const k of SECRET_KEYS) if (connection[k] !== undefined) connection[k] = SECRET_SET;
  const ssh = connection.ssh_tunnel;
  if (typeof ssh === 'object' && ssh !== null) {
    const t: Record<string, unknown> = { ...(ssh as Record<string, unknown>) };
    for (const k of SSH_SECRET_KEYS) if (t[k] !== undefined) t[k] = SECRET_SET;
    connection.ssh_tunnel = t;
  }
  return { ...s, connection };
}

/** On update, a connection secret sent back as "[set]" keeps its stored value. */
export function keepMarkedPostgres(next: PostgresSourceConfig, stored: PostgresSourceConfig | undefined): PostgresSourceConfig {
  const fill = (values: Record<string, unknown>, old: Record<string, unknown> | undefined, keys: readonly string[], where: string): Record<string, unknown> => {
    const out = { ...values };
    for (const k of keys) {
      if (out[k] !== SECRET_SET) continue;
      if (old?.[k] === undefined) throw invalid(`${where}${k}: "[set]" stands for a stored secret, and none is stored`);
      out[k] = old[k];
    }
    return out;
  };
  const connection = fill(next.connection, stored?.connection, SECRET_KEYS, 'connection.');
  if (typeof connection.ssh_tunnel === 'object' && connection.ssh_tunnel !== null) {
    const old = stored?.connection.ssh_tunnel as Record<string, unknown> | undefined;
    connection.ssh_tunnel = fill(connection.ssh_tunnel as Record<string, unknown>, old, SSH_SECRET_KEYS, 'connection.ssh_tunnel.');
  }
  return { ...next, connection };
}

/**
 * Resolves the first hop's name and checks every address against the
 * egress policy; the connection then goes to the address checked (the name
 * stays the TLS server name), so a name that resolves differently the second
 * time gains nothing. Through a tunnel the bastion is checked (what it
 * reaches is beyond this process).
 */
async function pinnedHost(cfg: DestinationConfig, egress: Egress): Promise<Record<string, unknown>> {
  const host = firstHop(cfg).replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw new PglandError('source_failed', `source: cannot resolve ${host.slice(0, 100)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: "check the connection's host",
    });
  }
  if (addresses.length === 0 || addresses.some((a) => !egress.allows(a))) throw refused(host);
  if (cfg.ssh_tunnel) return { ssh_tunnel: { host: addresses[0] } };
  return isIP(host) ? {} : { host: addresses[0], sslservername: cfg.sslservername ?? host };
}

/** The bookmark of a schedule's import, in the control database. */
export class ImportStates {
  constructor(private readonly ctl: ControlDb) {}

  async load(scheduleId: string): Promise<ReadState | undefined> {
    const { rows } = await this.ctl.pool.query<{ state: ReadState }>(`SELECT state FROM ${this.ctl.table('import_states')} WHERE schedule_id = $1`, [
      scheduleId,
    ]);
    return rows[0]?.state;
  }

  async save(scheduleId: string, runId: string, state: ReadState): Promise<void> {
    await this.ctl.pool.query(
      `INSERT INTO ${this.ctl.table('import_states')} (schedule_id, state, run_id) VALUES ($1, $2, $3)
       ON CONFLICT (schedule_id) DO UPDATE SET state = EXCLUDED.state, run_id = EXCLUDED.run_id, updated_at = now()`,
      [scheduleId, state, runId],
    );
  }
}

export interface OpenedImport {
  records: AsyncIterable<Buffer>;
  close(): void;
  /** After the run committed: stores the bookmark the read ended at. */
  commit(runId: string): Promise<void>;
}

/**
 * Opens a postgres source for one run: connects (egress-checked), and reads
 * from the stored bookmark as pgland's NDJSON envelope, at the pace the load
 * consumes it.
 */
export async function openPostgresSource(
  s: PostgresSourceConfig,
  scheduleId: string,
  states: ImportStates,
  policy: { egress: Egress },
  signal: AbortSignal,
  options: { fromStart?: boolean } = {},
): Promise<OpenedImport> {
  const spec = specOf(s);
  const cfg = connectionOf(s);
  const overrides = await pinnedHost(cfg, policy.egress);
  // A full refresh reads every row (the load deletes what it does not see); an incremental run, from the bookmark.
  const previous = (options.fromStart ? undefined : await states.load(scheduleId)) ?? { bookmarks: {} };
  const conn = await connectSource(s.connection, { env: {}, overrides, poolSize: 1 });
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const closed = new AbortController();
  const stop = AbortSignal.any([signal, closed.signal]);
  const written = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        out.off('drain', done).off('close', done);
        resolve();
      };
      out.once('drain', done).once('close', done);
    });
  const read = readSource(
    conn,
    spec,
    {
      stream: 'import',
      signal: stop,
      write: () => undefined,
      writeBytes: (chunk) => {
        if (out.destroyed) throw new PglandError('cancelled', 'the run stopped reading the source');
        return out.write(chunk) ? undefined : written();
      },
    },
    previous,
  );
  // The read's failure reaches the load through `records` (below), not as a stream 'error' nobody listens to yet.
  out.on('error', () => undefined);
  const finished = read.finally(() => conn.close().catch(() => undefined));
  finished.then(
    () => out.end(),
    () => out.destroy(),
  );
  async function* records(): AsyncGenerator<Buffer> {
    // Ended or destroyed: a failed read throws its own error (not the stream's "premature close"), so the run fails with its cause.
    try {
      for await (const chunk of out) yield chunk as Buffer;
    } catch (err) {
      await finished;
      throw err;
    }
    await finished;
  }
  return {
    records: records(),
    close: () => {
      closed.abort();
      out.destroy();
    },
    async commit(runId) {
      const result = await finished;
      await states.save(scheduleId, runId, result.state);
    },
  };
}
