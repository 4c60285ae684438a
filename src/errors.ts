import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * pgland's one error class. `code` is one of ERROR_CODES (src/error-codes.ts,
 * listed in docs/errors.md); `hint` tells the user what to do; `context` names
 * the object, table, batch or record concerned.
 * The original error (often a node-postgres DatabaseError with its SQLSTATE,
 * detail, table and constraint) is kept as `cause`.
 */
export class PglandError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { hint?: string; context?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PglandError';
    this.code = code;
    this.hint = options.hint;
    this.context = options.context ?? {};
  }
}

/** The SQLSTATE of a node-postgres DatabaseError, or undefined. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** One line for a human: message, then the hint when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof PglandError) return err.hint ? `${err.message}\n  fix: ${err.hint}` : err.message;
  if (err instanceof Error) {
    const state = sqlState(err);
    return state ? `${err.message} (SQLSTATE ${state})` : err.message;
  }
  return String(err);
}
