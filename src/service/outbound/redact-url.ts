import { PglandError } from '../../errors.js';

/**
 * The one way a URL a caller gave pgland (a URL source, a webhook endpoint) is
 * shown: in answers, run errors, webhooks, job output and logs. Credentials
 * in the URL read "[set]", as every stored secret does in the API: the user
 * information (user:password@) and the values of query parameters whose names
 * look like secrets (api_key, token, secret, sig, password, …).
 */

export const MARK = '[set]';

/** Parameter names (lowercase, letters and digits only) that hold secrets, or that contain one of these. */
const SECRET_NAMES = new Set(['key', 'sig', 'pass', 'pwd', 'auth', 'code', 'jwt', 'session', 'sid']);
const SECRET_PARTS = ['token', 'secret', 'passw', 'signature', 'apikey', 'credential', 'auth', 'session', 'privatekey'];

export function isSecretParam(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // a malformed escape: judge the name as written
  }
  const n = decoded.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_NAMES.has(n) || n.endsWith('key') || SECRET_PARTS.some((p) => n.includes(p));
}

/** Rewrites the values of a query string's (or fragment's) secret-looking parameters; the rest stays as written. */
function mapParams(query: string, value: (name: string, raw: string) => string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      return isSecretParam(name) ? `${name}=${value(name, pair.slice(eq + 1))}` : pair;
    })
    .join('&');
}

/** The URL with its credentials replaced by "[set]"; a string that is not a URL is not shown at all. */
export function redactUrl(raw: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(raw));
  } catch {
    return '(not a valid URL)';
  }
  const userinfo = u.username || u.password ? `${MARK}${u.password ? `:${MARK}` : ''}@` : '';
  const search = u.search ? `?${mapParams(u.search.slice(1), () => MARK)}` : '';
  const hash = u.hash ? `#${mapParams(u.hash.slice(1), () => MARK)}` : '';
  const path = u.pathname.replace(/%7Bwatermark%7D/gi, '{watermark}');
  return `${u.protocol}//${userinfo}${u.host}${path}${search.replace(/%7Bwatermark%7D/gi, '{watermark}')}${hash}`;
}

/**
 * A URL sent back as shown (a PUT of what a GET answered): each secret
 * parameter that reads "[set]" takes its value from the stored URL.
 */
export function restoreMarked(next: string, stored: string, what: string): string {
  const q = next.indexOf('?');
  if (q < 0 || !next.includes(MARK)) return next;
  const storedValues = new Map<string, string>();
  let old: URL | undefined;
  try {
    old = new URL(stored);
  } catch {
    // nothing stored to restore from
  }
  for (const pair of (old?.search.slice(1) ?? '').split('&')) {
    const eq = pair.indexOf('=');
    if (eq > 0) storedValues.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const hashAt = next.indexOf('#', q);
  const query = next.slice(q + 1, hashAt < 0 ? undefined : hashAt);
  const restored = mapParams(query, (name, raw) => {
    if (raw !== MARK && raw !== encodeURIComponent(MARK)) return raw;
    const value = storedValues.get(name);
    if (value === undefined) throw new PglandError('config_invalid', `${what}: ${name.slice(0, 60)}=${MARK} stands for a stored value, and none is stored`);
    return value;
  });
  return `${next.slice(0, q + 1)}${restored}${hashAt < 0 ? '' : next.slice(hashAt)}`;
}
