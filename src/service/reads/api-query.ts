import { createHash, randomUUID } from 'node:crypto';
import type { HttpApp } from '../http/server.js';
import { PglandError } from '../../errors.js';
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS, runExec, runQuery, type ActionOptions } from '../../query/actions.js';
import { connectSource } from '../../read/source.js';
import type { ServiceContext } from '../context.js';
import * as S from '../http/schemas.js';

/*
 * Query actions over the API (docs/reading.md, "Query actions"): POST
 * /destinations/{id}/query runs one statement read-only, /exec runs one
 * statement that may write, each with $1, $2 parameters, as the destination's
 * own role (whatever that role may do, and nothing more), under the CLI's
 * timeout and result cap. They run arbitrary SQL, so they are OFF unless the
 * operator sets PGLAND_ALLOW_QUERY_ACTIONS=1; every call, refused or not by
 * the database, is audited in the control database (query_actions): who,
 * when, the statement's SHA-256 (never its text or its values), the row
 * count, the duration and the outcome.
 */

const tags = ['query actions'];

const body = {
  type: 'object',
  properties: {
    sql: { type: 'string', minLength: 1, maxLength: 1_000_000, description: 'one statement; values as $1, $2 …' },
    params: {
      type: 'array',
      maxItems: 10_000,
      items: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }] },
      description: 'the values of $1, $2 …: sent as parameters, never put into the SQL text',
    },
    timeout_ms: {
      type: 'integer',
      minimum: 1,
      maximum: DEFAULT_TIMEOUT_MS,
      description: `statement timeout (default and most ${DEFAULT_TIMEOUT_MS / 1000} s)`,
    },
    max_bytes: { type: 'integer', minimum: 1, maximum: DEFAULT_MAX_BYTES, description: "result cap in bytes of the rows' JSON (default and most 10 MB)" },
  },
  required: ['sql'],
  additionalProperties: false,
} as const;

const field = { type: 'object', properties: { name: { type: 'string' }, dataTypeID: { type: 'integer' }, type: { type: 'string' } } };
const row = { type: 'object', additionalProperties: true };
const queryResult = {
  type: 'object',
  properties: { rows: { type: 'array', items: row }, rowCount: { type: 'integer' }, fields: { type: 'array', items: field } },
};
const execResult = {
  type: 'object',
  properties: {
    rowCount: { type: 'integer' },
    command: { type: 'string' },
    insertedId: {},
    rows: { type: 'array', items: row },
    fields: { type: 'array', items: field },
  },
};

function disabled(): PglandError {
  return new PglandError('query_actions_disabled', "query actions are disabled on this server: they run arbitrary SQL as the destination's role", {
    hint: 'the operator enables them with PGLAND_ALLOW_QUERY_ACTIONS=1 on the API process (docs/security.md)',
  });
}

/** Who called: the token's identity when the request carries one, else "token". */
function callerOf(req: { headers: Record<string, unknown> } & Record<string, unknown>): string {
  const identity = (req as { identity?: unknown }).identity;
  return typeof identity === 'string' && identity !== '' ? identity.slice(0, 200) : 'token';
}

export function queryActionRoutes(app: HttpApp, ctx: ServiceContext, enabled: boolean): void {
  const audit = async (entry: {
    destinationId: string;
    action: 'query' | 'exec';
    caller: string;
    sql: string;
    params: number;
    rows: number | null;
    started: Date;
    outcome: string;
  }) => {
    await ctx.ctl.pool.query(
      `INSERT INTO ${ctx.ctl.table('query_actions')}
         (id, destination_id, action, caller, statement_sha256, params, row_count, duration_ms, outcome, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        randomUUID(),
        entry.destinationId,
        entry.action,
        entry.caller,
        createHash('sha256').update(entry.sql, 'utf8').digest('hex'),
        entry.params,
        entry.rows,
        Date.now() - entry.started.getTime(),
        entry.outcome,
        entry.started,
      ],
    );
  };

  for (const action of ['query', 'exec'] as const) {
    app.post(
      `/destinations/:id/${action}`,
      {
        schema: {
          summary: action === 'query' ? 'Run one read-only statement (Query Rows)' : 'Run one statement that may write (Insert, Update, Delete, Execute Query)',
          description:
            "Off unless the operator sets PGLAND_ALLOW_QUERY_ACTIONS=1 (403 otherwise). Runs as the destination's role, bound by its privileges; " +
            `statement timeout ${DEFAULT_TIMEOUT_MS / 1000} s, result cap 10 MB (past it the statement is cancelled: add a LIMIT). ` +
            (action === 'query' ? 'In a READ ONLY transaction: a statement that writes is refused.' : 'An INSERT … RETURNING gives insertedId.') +
            " Every call is audited in the control database (who, when, the statement's SHA-256, rows, duration, outcome).",
          tags,
          params: S.idParams,
          body,
          response: { 200: action === 'query' ? queryResult : execResult, 400: S.errorBody, 403: S.errorBody, 404: S.errorBody, 502: S.errorBody },
        },
      },
      async (req) => {
        if (!enabled) throw disabled();
        const { id } = req.params;
        const b = req.body;
        const config = await ctx.destinations.config(id);
        const started = new Date();
        const caller = callerOf(req as unknown as Parameters<typeof callerOf>[0]);
        const params = b.params ?? [];
        const options: ActionOptions = { ...(b.timeout_ms ? { timeoutMs: b.timeout_ms } : {}), ...(b.max_bytes ? { maxBytes: b.max_bytes } : {}) };
        let rows: number | null = null;
        let outcome = 'ok';
        try {
          // Its own connections, closed after the call: a statement may change its session (SET ROLE, an open BEGIN).
          const conn = await connectSource(config, { log: ctx.log, env: {}, poolSize: 2 });
          try {
            const result = action === 'query' ? await runQuery(conn, b.sql, params, options) : await runExec(conn, b.sql, params, options);
            rows = result.rowCount;
            return result;
          } finally {
            await conn.close();
          }
        } catch (err) {
          outcome = err instanceof PglandError ? err.code : 'failed';
          throw err;
        } finally {
          await audit({ destinationId: id, action, caller, sql: b.sql, params: params.length, rows, started, outcome });
        }
      },
    );
  }
}
