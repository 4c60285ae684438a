/**
 * Calls to pgland's API on this origin. The token is held in sessionStorage
 * (this tab only, gone when it closes): never in a URL or a cookie.
 */
const TOKEN_KEY = 'pgland.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the API answers 401: the console shows the sign-in page. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

/** Every request gives up after this long, so a page never waits forever. */
const TIMEOUT_MS = 60_000;

export async function api<T = any>(method: string, path: string, body?: unknown, options: { tokenOverride?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const t = options.tokenOverride ?? token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      credentials: 'omit',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new ApiError(
      0,
      'unreachable',
      `pgland did not answer (${(err as Error).name === 'TimeoutError' ? 'timed out' : 'network error'})`,
      'check that pgland serve is running and reachable, then reload',
    );
  }
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (res.status === 401 && !options.tokenOverride) onUnauthorized();
  if (!res.ok && !(res.status === 422 && parsed?.id)) {
    const e = parsed?.error;
    throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `the API answered ${res.status}`, e?.hint);
  }
  return parsed as T;
}

/** A query string of the values that are set. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
