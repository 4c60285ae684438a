import { createHash } from 'node:crypto';

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes. */
export const MAX_IDENT_BYTES = 63;

/**
 * The one door for identifiers: wraps a name in double quotes and doubles any
 * double quote inside it (as node-postgres's escapeIdentifier does). Every
 * schema, table and column name that reaches SQL text goes through here.
 */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty identifier');
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return '"' + name.replace(/"/g, '""') + '"';
}

/** A schema-qualified name, quoted part by part. */
export function qualify(schema: string, name: string): string {
  return quoteIdent(schema) + '.' + quoteIdent(name);
}

function hash8(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
}

/** Cuts a string to at most `bytes` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > bytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * Names longer than 63 bytes would be silently truncated by the server, so two
 * long names that differ only at the end would collide. Instead, keep a prefix
 * and append a hash of the full name: deterministic, and distinct names stay
 * distinct.
 */
export function fitIdent(name: string, hashSource: string = name): string {
  if (Buffer.byteLength(name, 'utf8') <= MAX_IDENT_BYTES) return name;
  const suffix = '_' + hash8(hashSource);
  return truncateBytes(name, MAX_IDENT_BYTES - suffix.length) + suffix;
}

/**
 * Normalises an object or field name to snake_case: camelCase boundaries get an
 * underscore, letters are lower-cased, every run of characters that is not a
 * letter or a digit becomes one underscore, and leading or trailing
 * underscores are trimmed. Unicode letters are kept. The result is then fitted
 * to 63 bytes. A name that normalises to nothing (only punctuation or emoji)
 * becomes `x_<hash>` so that it still lands, distinctly.
 */
export function normaliseName(name: string): string {
  const snake = name
    .normalize('NFC')
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1_$2')
    .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1_$2')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '_')
    .replace(/^_+|_+$/g, '');
  if (snake.length === 0) return 'x_' + hash8(name);
  // A leading digit is legal when quoted, but awkward to type: prefix it.
  const safe = /^\p{N}/u.test(snake) ? 'x_' + snake : snake;
  return fitIdent(safe, name);
}

/** Makes a name unique against a set already taken, by a hash of its source. */
export function disambiguate(name: string, source: string, taken: Set<string>): string {
  if (!taken.has(name)) return name;
  const suffix = '_' + hash8(source);
  let candidate = truncateBytes(name, MAX_IDENT_BYTES - suffix.length) + suffix;
  // A second collision (a hash prefix clash) is astronomically unlikely, but
  // must still not produce a duplicate column.
  for (let i = 2; taken.has(candidate); i++) {
    const s = '_' + hash8(source + '#' + i);
    candidate = truncateBytes(name, MAX_IDENT_BYTES - s.length) + s;
  }
  return candidate;
}
