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

/**
 * The one door for values that must be written into SQL text, where a
 * statement cannot take parameters (COPY (SELECT …) TO STDOUT, used by
 * `pgland read`). Everywhere else values go as $n parameters.
 *
 * Always the E'…' form, so that the meaning does not depend on the server's
 * standard_conforming_strings: inside it a backslash escapes, so backslashes
 * are doubled, and a quote is doubled. The result is an untyped literal: like
 * an untyped parameter, it takes the type its context gives it. NUL cannot be
 * in PostgreSQL text and is refused.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a value contains a NUL character, which PostgreSQL text cannot hold');
  return "E'" + value.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";
}

/** A schema-qualified name, quoted part by part. */
export function qualify(schema: string, name: string): string {
  return quoteIdent(schema) + '.' + quoteIdent(name);
}

/** The first 8 hex digits of the SHA-256 of a name's exact spelling. */
export function hash8(text: string): string {
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

/** `name` cut so that `name_<hash of source>` fits in 63 bytes, with that suffix appended. */
export function withHashSuffix(name: string, source: string): string {
  const suffix = '_' + hash8(source);
  return truncateBytes(name, MAX_IDENT_BYTES - suffix.length) + suffix;
}

/**
 * Names longer than 63 bytes would be silently truncated by the server, so two
 * long names that differ only at the end would collide. Instead, keep a prefix
 * and append a hash of the full name: deterministic, and distinct names stay
 * distinct.
 */
export function fitIdent(name: string, hashSource: string = name): string {
  if (Buffer.byteLength(name, 'utf8') <= MAX_IDENT_BYTES) return name;
  return withHashSuffix(name, hashSource);
}

/**
 * The snake_case form of a name, not yet fitted to 63 bytes (see normaliseName).
 * Never empty, never starts with a digit or an underscore.
 */
export function snakeName(name: string): string {
  const snake = name
    .normalize('NFC')
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1_$2')
    .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1_$2')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}]+/gu, '_')
    .replace(/^_+|_+$/g, '');
  if (snake.length === 0) return 'x_' + hash8(name);
  // A leading digit is legal when quoted, but then every query must quote it.
  return /^\p{N}/u.test(snake) ? 'x_' + snake : snake;
}

/**
 * The one normalisation for object and field names (docs/landed-tables.md):
 *
 * 1. Unicode NFC; a lower-case letter or digit followed by an upper-case
 *    letter, and an upper-case run followed by a capitalised word, get an
 *    underscore between them (`FirstName` → `first_name`, `HTTPServer` →
 *    `http_server`).
 * 2. Lower case.
 * 3. Every run of characters that is not a letter, a combining mark or a
 *    digit (spaces, punctuation, quotes, dots, emoji, control characters)
 *    becomes one underscore; leading and trailing underscores are dropped.
 *    Letters of every script are kept.
 * 4. A name that is left empty becomes `x_<hash>`; one that starts with a
 *    digit gets `x_` in front.
 * 5. Past 63 bytes: cut, and `_<hash>` of the original spelling appended.
 *
 * `<hash>` is the first 8 hex digits of SHA-256 of the name as given.
 */
export function normaliseName(name: string): string {
  return fitIdent(snakeName(name), name);
}
