import { explain, type ConnectTarget } from '../connection/diagnose.js';
import { PglandError, sqlState, type ErrorCode } from '../errors.js';
import { quoteIdent } from '../sql/ident.js';

/*
 * The errors of query actions, each with its cause and its fix: the list of
 * the flow-automation seed ("Common Errors & Fixes"), plus the ones its
 * actions meet most (a read-only query asked to write, a parameter count
 * that does not match). Connection errors are explained by diagnose.ts.
 */

export interface QueryErrorContext {
  sql: string;
  action: 'query' | 'exec';
  timeoutMs: number;
  maxBytes: number;
  target: ConnectTarget;
}

/** The line and column of a 1-based character position in the SQL, and that line with a caret under the column. */
export function pointAt(sql: string, position: number): { line: number; column: number; excerpt: string } {
  const before = sql.slice(0, Math.max(position - 1, 0));
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = sql.indexOf('\n', lineStart);
  const text = sql.slice(lineStart, lineEnd === -1 ? undefined : lineEnd);
  const column = position - lineStart;
  // A long line is cut around the position, so that the caret stays in view.
  const from = Math.max(0, column - 60);
  const shown = text.slice(from, from + 120);
  return { line, column, excerpt: `${shown}\n${' '.repeat(Math.max(column - 1 - from, 0))}^` };
}

/** The privilege a statement needs, by its first word. */
function privilegeFor(sql: string, action: 'query' | 'exec'): string {
  const word = /^\s*(?:WITH\b[\s\S]*?\)\s*)?(\w+)/i.exec(sql)?.[1]?.toUpperCase();
  if (action === 'query' || word === 'SELECT') return 'SELECT';
  if (word === 'INSERT' || word === 'UPDATE' || word === 'DELETE' || word === 'TRUNCATE')
    return word === 'UPDATE' || word === 'DELETE' ? `SELECT, ${word}` : word;
  return 'SELECT, INSERT, UPDATE, DELETE';
}

export function resultTooLarge(ctx: QueryErrorContext, rows: number): PglandError {
  return new PglandError(
    'result_too_large',
    `the result passed ${(ctx.maxBytes / 1024 / 1024).toFixed(ctx.maxBytes < 1024 * 1024 ? 2 : 0)} MB after ${rows} rows: the query was cancelled`,
    {
      hint: 'add a LIMIT (and an ORDER BY) to the query, select fewer columns, or page through it (pgland read); the cap is the max-bytes option (default 10 MB)',
    },
  );
}

/** Turns a failure of a query action into a PglandError that says what happened and what to do. */
export function explainQueryError(err: unknown, ctx: QueryErrorContext): PglandError {
  if (err instanceof PglandError) return err;
  const state = sqlState(err);
  const msg = err instanceof Error ? err.message : String(err);
  const make = (code: ErrorCode, message: string, hint: string, context: Record<string, unknown> = {}): PglandError =>
    new PglandError(code, message, { hint, cause: err, context });
  const user = quoteIdent(ctx.target.user);

  if (state === '42601') {
    const pos = Number((err as { position?: string }).position);
    if (Number.isInteger(pos) && pos > 0 && pos <= ctx.sql.length + 1) {
      const p = pointAt(ctx.sql, pos);
      return make(
        'syntax_error',
        `syntax error in the SQL at line ${p.line}, column ${p.column}: ${msg}\n${p.excerpt}`,
        'check the SQL at the caret: a typo, a missing comma or parenthesis, a reserved word as a name (quote it: "order"); test it in psql first; pass values as $1, $2 parameters rather than in the text',
        { line: p.line, column: p.column },
      );
    }
    return make(
      'syntax_error',
      `syntax error in the SQL: ${msg}`,
      'test the statement in psql first; pass values as $1, $2 parameters rather than in the text',
    );
  }
  if (state === '42501') {
    const m = /permission denied for (table|relation|view|sequence|schema|function) (.+)$/i.exec(msg);
    const what = m?.[1]?.toLowerCase();
    const name = m?.[2]?.trim();
    if (name && (what === 'table' || what === 'relation' || what === 'view')) {
      return make(
        'permission_denied',
        `permission denied for table ${name}: ${ctx.target.user} may not ${ctx.action === 'query' ? 'read' : 'change'} it`,
        `GRANT ${privilegeFor(ctx.sql, ctx.action)} ON TABLE ${quoteIdent(name)} TO ${user};  (run as its owner; check with SELECT privilege_type FROM information_schema.table_privileges WHERE grantee = '${ctx.target.user.replace(/'/g, "''")}' AND table_name = '${name.replace(/'/g, "''")}')`,
        { table: name },
      );
    }
    if (name && what === 'schema')
      return make('permission_denied', `permission denied for schema ${name}`, `GRANT USAGE ON SCHEMA ${quoteIdent(name)} TO ${user};`, { schema: name });
    if (name && what === 'sequence')
      return make('permission_denied', `permission denied for sequence ${name}`, `GRANT USAGE ON SEQUENCE ${quoteIdent(name)} TO ${user};`);
    return make(
      'permission_denied',
      `permission denied: ${msg}`,
      `grant ${ctx.target.user} what the statement needs (GRANT … TO ${user}), or run it as a role that has it`,
    );
  }
  if (state === '57014') {
    if (/statement timeout/i.test(msg)) {
      return make(
        'query_timeout',
        `the statement ran longer than ${ctx.timeoutMs / 1000} s and was cancelled`,
        'make it faster: EXPLAIN it and add an index for its WHERE and ORDER BY; return fewer rows (add a LIMIT); look for locks held by others (SELECT * FROM pg_locks WHERE NOT granted); run it off-peak; or raise the timeout option (--timeout-ms)',
      );
    }
    return make('query_cancelled', `the statement was cancelled: ${msg}`, 'an administrator or another session cancelled it (pg_cancel_backend); run it again');
  }
  if (state === '25006') {
    return make(
      'read_only_query',
      `pgland query runs read-only and this statement writes: ${msg}`,
      'run statements that change data with pgland exec (or the exec action); query is for SELECT',
    );
  }
  if (state === '42P01')
    return make(
      'undefined_table',
      msg,
      'check the table name and its schema (SELECT schemaname, tablename FROM pg_tables), and the search_path; names with capitals need double quotes',
    );
  if (state === '42703') return make('undefined_column', msg, 'check the column name (\\d table in psql); names with capitals need double quotes');
  if (state === '08P01' && /bind message supplies/i.test(msg)) {
    return make('parameter_mismatch', `the number of parameters does not match the SQL: ${msg}`, 'give one --param for each of $1, $2, … in the SQL, in order');
  }
  if (state === '22P02' || state === '22007' || state === '22008' || state === '22003') {
    return make(
      'invalid_parameter',
      `a value does not fit its type: ${msg}`,
      'check the --param values against the columns they are compared with or stored in',
    );
  }
  if (state && state !== '53300' && !state.startsWith('08') && !state.startsWith('28')) {
    return make('query_failed', `${msg} (SQLSTATE ${state})`, 'see the PostgreSQL message; test the statement in psql');
  }
  // Too many connections, authentication, the network: as for every connection.
  return explain(err, ctx.target);
}
