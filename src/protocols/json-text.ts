/**
 * Finds the text of one top-level member of a JSON object, as the sender wrote
 * it. A protocol message carries the record inside it (Singer's "record",
 * Airbyte's "data"): landing that text instead of JSON.stringify of the parsed
 * value keeps numbers exactly as written (an id beyond 2^53, 1.50), which
 * JSON.parse would round. The envelope's raw_data then goes through the
 * loader's own check (src/input/raw-text.ts), which lands it as written only
 * when that is safe.
 *
 * Only called on text that JSON.parse accepted, so the structure is known to
 * be valid; anything unexpected returns undefined and the caller falls back to
 * the parsed value.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipSpace(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
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

/** Index just past the JSON value that starts at `i`, or -1. */
function valueEnd(text: string, i: number): number {
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
 * The text of the value of `key` in the JSON object `text` (top level only),
 * or undefined when the key is absent. As JSON.parse does, the last of
 * duplicate keys wins.
 */
export function memberText(text: string, key: string): string | undefined {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(text, i + 1);
  let found: string | undefined;
  while (text.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(text, i);
    if (keyEnd === -1) return undefined;
    const raw = text.slice(i + 1, keyEnd - 1);
    const name = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return undefined;
    const start = skipSpace(text, i + 1);
    const end = valueEnd(text, start);
    if (end === -1) return undefined;
    if (name === key) found = text.slice(start, end);
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipSpace(text, i + 1);
  }
  return found;
}
