import { closingQuote } from '../input/json-text.js';
import { numericProblem } from './numeric.js';

/**
 * The encoder for COPY's text format: the only place where values become bytes
 * for the server. NULL is `\N`; a backslash, tab, newline and carriage return
 * are escaped; NUL cannot be stored in text or jsonb by PostgreSQL and is
 * stripped (and counted by the caller through `EncodeStats`).
 */

export interface EncodeStats {
  /** NUL characters removed from text and JSON values. */
  nulStripped: number;
  /** Lone UTF-16 surrogates replaced by U+FFFD. */
  surrogatesReplaced: number;
}

// Node 20 has String.prototype.isWellFormed (ES2024); the ES2023 lib this
// project compiles against does not declare it.
declare global {
  interface String {
    isWellFormed(): boolean;
  }
}

export function newEncodeStats(): EncodeStats {
  return { nulStripped: 0, surrogatesReplaced: 0 };
}

const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const ESCAPES = /[\\\t\n\r\0]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Escapes one text value for COPY. Lone surrogates would become U+FFFD when the
 * string is written as UTF-8 anyway; replacing them here lets us count them.
 */
export function copyText(value: string, stats: EncodeStats): string {
  // isWellFormed() is native and much cheaper than the regex on the common path.
  if (!value.isWellFormed()) {
    value = value.replace(LONE_SURROGATE, () => {
      stats.surrogatesReplaced++;
      return '\uFFFD';
    });
  }
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(ESCAPES, (ch) => {
    switch (ch) {
      case '\\':
        return '\\\\';
      case '\t':
        return '\\t';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      default:
        stats.nulStripped++;
        return '';
    }
  });
}

// An escape sequence in JSON text that jsonb refuses: \u0000, or a surrogate
// (JSON.stringify escapes only lone surrogates; pairs are emitted as is). The
// lookbehind makes sure the backslash is not itself escaped (`\\u0000` is a
// backslash followed by "u0000").
const BAD_JSON_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})/g;

/**
 * Serialises a value to JSON text that jsonb accepts: `\u0000` escapes are
 * removed and escaped lone surrogates become U+FFFD.
 */
export function jsonText(value: unknown, stats: EncodeStats): string {
  return fixEscapes(JSON.stringify(value), stats);
}

function fixEscapes(text: string, stats: EncodeStats): string {
  if (!text.includes('\\u')) return text;
  return text.replace(BAD_JSON_ESCAPE, (_m, slashes: string, code: string) => {
    if (code === '0000') {
      stats.nulStripped++;
      return slashes;
    }
    stats.surrogatesReplaced++;
    return slashes + '\\ufffd';
  });
}

/** JSON text needs only its backslashes doubled for COPY: JSON escapes control characters itself. */
export function copyJson(value: unknown, stats: EncodeStats): string {
  const text = JSON.stringify(value);
  // Without a backslash there is no escape to fix nor to double: one scan instead of two.
  if (!text.includes('\\')) return text;
  return fixEscapes(text, stats).replace(/\\/g, '\\\\');
}

// An escape in JSON text as sent: \uXXXX, optionally followed by a second one
// (a surrogate pair), the backslash not itself escaped (see BAD_JSON_ESCAPE).
const JSON_ESCAPE = /(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?/g;

/** One escaped code unit of text as sent, as jsonb takes it in any server encoding. */
function escapedUnit(code: number, hex: string, stats: EncodeStats): string {
  if (code === 0) {
    stats.nulStripped++;
    return '';
  }
  if (code >= 0xd800 && code <= 0xdfff) {
    stats.surrogatesReplaced++;
    return '\ufffd';
  }
  // ASCII escapes (\u0022, control characters) are taken by every server;
  // others are written as the character, as JSON.stringify would, because a
  // server whose encoding is not UTF8 refuses non-ASCII \u escapes in jsonb.
  return code < 0x80 ? '\\u' + hex : String.fromCharCode(code);
}

function fixSentEscapes(text: string, stats: EncodeStats): string {
  return text.replace(JSON_ESCAPE, (_m, slashes: string, hi: string, lo: string | undefined) => {
    const a = parseInt(hi, 16);
    if (lo !== undefined && a >= 0xd800 && a <= 0xdbff) return slashes + String.fromCharCode(a, parseInt(lo, 16));
    return slashes + escapedUnit(a, hi, stats) + (lo === undefined ? '' : escapedUnit(parseInt(lo, 16), lo, stats));
  });
}

// A number jsonb cannot hold fails the whole COPY (numericProblem: an exponent
// beyond ±1000, more digits than numeric holds). Only texts this cheap test
// flags (a 4-digit exponent, or a text long enough for a huge number) are scanned.
const BIG_EXPONENT = /[eE][+-]?\d{4}/;
/** Longer JSON text may hold a number jsonb refuses without a large exponent: it is always scanned. */
export const LONG_NUMBER_TEXT = 16000;
const NUMBER_TOKEN = /-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?/y;

/** Whether JSON text has a number token jsonb refuses (strings are skipped). */
function hasHugeNumber(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      NUMBER_TOKEN.lastIndex = i;
      const token = NUMBER_TOKEN.exec(text)?.[0];
      if (token === undefined) return true;
      if (numericProblem(token.charCodeAt(0) === 0x2d ? token.slice(1) : token) !== null) return true;
      i += token.length - 1;
    }
  }
  return false;
}

/**
 * JSON text as the sender wrote it (valid: JSON.parse accepted it), as a COPY
 * field for jsonb: every digit of its numbers kept. \u0000 escapes are
 * removed, lone surrogates become U+FFFD (both counted), and tabs, carriage
 * returns and backslashes are escaped for COPY. Undefined when it holds a
 * number jsonb refuses: the caller then lands the parsed value (copyJson).
 */
export function copyJsonText(text: string, stats: EncodeStats): string | undefined {
  // The common text has nothing to change: one scan says so (instead of one per check below).
  if (text.length <= LONG_NUMBER_TEXT && !NOT_AS_IS.test(text) && text.isWellFormed()) return text;
  if ((BIG_EXPONENT.test(text) || text.length > LONG_NUMBER_TEXT) && hasHugeNumber(text)) return undefined;
  if (!text.isWellFormed()) {
    text = text.replace(LONE_SURROGATE, () => {
      stats.surrogatesReplaced++;
      return '\uFFFD';
    });
  }
  if (!COPY_SPECIAL.test(text)) return text;
  if (text.includes('\\u')) text = fixSentEscapes(text, stats);
  // JSON has no raw control character in a string: a tab or CR here is whitespace between tokens.
  return text.replace(COPY_SPECIALS, (ch) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\r' ? '\\r' : '\\n'));
}

const COPY_SPECIAL = /[\\\t\r\n]/;
/** What copyJsonText may have to change: a COPY special character or a large exponent. */
const NOT_AS_IS = /[\\\t\r\n]|[eE][+-]?\d{4}/;
const COPY_SPECIALS = /[\\\t\r\n]/g;

/** One COPY row from already-encoded fields (null means SQL NULL), after `lead` (encoded fields ending in a tab). */
export function copyRow(fields: readonly (string | null)[], lead = ''): string {
  let row = lead;
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) row += '\t';
    const f = fields[i];
    row += f === null || f === undefined ? '\\N' : f;
  }
  return row + '\n';
}
