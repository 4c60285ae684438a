/**
 * Finds the text of top-level members of a JSON object, as the sender wrote
 * them. Landing that text instead of JSON.stringify of the parsed value keeps
 * numbers exactly as written (an id beyond 2^53, 1.10000000000000000000001,
 * 1e400), which JSON.parse rounds; it also spares re-serialising every
 * payload. Used on input envelopes (raw_data, data: envelope.ts) and on
 * protocol messages (Singer's "record", Airbyte's "data").
 *
 * Only called on text that JSON.parse accepted, so the structure is known to
 * be valid; anything unexpected returns undefined and the caller falls back to
 * the parsed value.
 */

/*
 * A number whose parsed value JSON.stringify writes back as the same value
 * needs no scan: at most 15 significant digits and within a double's range.
 * Any other number has, in its text, a run of 16 digits and points, or an
 * exponent of 3 digits or more. Such a run may also be in a string (a false
 * alarm: the line is scanned for nothing); a number at risk is never missed.
 * One native regex test per line keeps the common line on the fast path
 * (scanning in JavaScript costs more than JSON.stringify). The value is what
 * is kept: 1.50 may land as 1.5, never as another number.
 *
 * `[\d.]` is written out 16 times: V8's regex engine scans that several
 * times faster than `[\d.]{16}` (0.23 µs against 2.3 µs a benchmark line).
 */
const DIGITS_AT_RISK = new RegExp(`[eE][-+]?\\d\\d\\d|${'[\\d.]'.repeat(16)}`);

/** Whether JSON text may hold a number that JSON.parse does not read back as the same value. */
export function mayLoseDigits(text: string): boolean {
  return DIGITS_AT_RISK.test(text);
}

// Character codes of JSON's structure (also envelope-scan.ts's).
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
export const COMMA = 0x2c;
export const COLON = 0x3a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipSpace(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Index of the quote that closes the string opened at `i` (the text's length when none does). */
export function closingQuote(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const s = text.charCodeAt(i);
    if (s === BACKSLASH) i++;
    else if (s === QUOTE) break;
  }
  return i;
}

/** Index just past the string literal whose opening quote is at `i`, or -1. */
function stringEnd(text: string, i: number): number {
  let q = text.indexOf('"', i + 1);
  for (;;) {
    if (q === -1) return -1;
    let n = 0;
    while (text.charCodeAt(q - 1 - n) === BACKSLASH) n++;
    if ((n & 1) === 0) return q + 1;
    q = text.indexOf('"', q + 1);
  }
}

/** Index just past the JSON value that starts at `i` (in text known to be valid JSON), or -1. */
export function valueEnd(text: string, i: number): number {
  let depth = 0;
  for (;;) {
    const c = text.charCodeAt(i);
    if (Number.isNaN(c)) return -1;
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i === -1) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      i++;
      continue;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      i++;
    } else if (c === COMMA || c === COLON || isSpace(c)) {
      i++;
      continue;
    } else {
      // A number or a literal: up to the next delimiter.
      while (i < text.length) {
        const d = text.charCodeAt(i);
        if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break;
        i++;
      }
    }
    if (depth === 0) return i;
  }
}

/**
 * Calls `fn` with each top-level member's name and value text of the JSON
 * object `text`, in order. False when the text is not an object or the scan
 * failed (the caller falls back to the parsed value).
 */
function eachMember(text: string, fn: (name: string, value: string) => void): boolean {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return false;
  i = skipSpace(text, i + 1);
  while (text.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(text, i);
    if (keyEnd === -1) return false;
    const raw = text.slice(i + 1, keyEnd - 1);
    const name = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return false;
    const start = skipSpace(text, i + 1);
    const end = valueEnd(text, start);
    if (end === -1) return false;
    fn(name, text.slice(start, end));
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipSpace(text, i + 1);
  }
  return true;
}

/**
 * The text of the value of `key` in the JSON object `text` (top level only),
 * or undefined when the key is absent. As JSON.parse does, the last of
 * duplicate keys wins.
 */
export function memberText(text: string, key: string): string | undefined {
  let found: string | undefined;
  const ok = eachMember(text, (name, value) => {
    if (name === key) found = value;
  });
  return ok ? found : undefined;
}

/** Every top-level member's value text (the last of duplicate keys wins), or undefined. */
export function memberTexts(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  return eachMember(text, (name, value) => out.set(name, value)) ? out : undefined;
}

/**
 * The value of valid JSON text (a member's text as sent), as JSON.parse
 * would give it: strings without escapes, literals and numbers are read
 * without JSON.parse; objects, arrays and escaped strings go through it.
 */
export function textValue(text: string): unknown {
  const c = text.charCodeAt(0);
  if (c === QUOTE) return text.includes('\\') ? (JSON.parse(text) as string) : text.slice(1, -1);
  if (c === 0x74) return true;
  if (c === 0x66) return false;
  if (c === 0x6e) return null;
  if (c === OPEN_BRACE || c === OPEN_BRACKET) return JSON.parse(text);
  return Number(text);
}
