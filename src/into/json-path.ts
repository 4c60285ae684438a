import { sameBytes, skipBlank, SPECIAL_ESCAPE, spanFlags, valueSpan } from '../input/envelope-bytes.js';
import { CLOSE_BRACKET, COLON, COMMA, memberText, OPEN_BRACE, OPEN_BRACKET, QUOTE, valueEnd } from '../input/json-text.js';

/**
 * A mapping path followed in JSON text as sent, not in a parsed value: the
 * text of the value a path reaches inside a member of a scanned record
 * (envelope-scan.ts validated the whole line, so the text is valid JSON).
 * It finds what walk() over JSON.parse of the same text finds: an own member
 * by name (the last of duplicates, as JSON.parse keeps), an array element by
 * index, nothing (undefined) for a step into a scalar, a name into an array,
 * an index into an object or past the end. Only text inside the one member
 * is read: a path cannot reach outside its record.
 */

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The text of element `index` of the JSON array `text`, or undefined (not an array, or too short). */
export function elementText(text: string, index: number): string | undefined {
  if (text.charCodeAt(0) !== OPEN_BRACKET) return undefined;
  let i = skipSpace(text, 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return undefined;
  for (let k = 0; ; k++) {
    const end = valueEnd(text, i);
    if (end === -1) return undefined;
    if (k === index) return text.slice(i, end);
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
}

/** Follows `steps` from `from` in the JSON value `text`; the reached value's text, or undefined when the path finds nothing. */
export function pathText(text: string, steps: readonly (string | number)[], from = 0): string | undefined {
  let t: string | undefined = text;
  for (let k = from; k < steps.length && t !== undefined; k++) {
    const step = steps[k]!;
    if (typeof step === 'number') t = elementText(t, step);
    else t = t.charCodeAt(0) === OPEN_BRACE ? memberText(t, step) : undefined;
  }
  return t;
}

/**
 * pathText on bytes: a path followed in the line's bytes (a record read as
 * bytes, input/bytes-record.ts), for the own-table byte encoder
 * (stage-bytes.ts). Names are given as their UTF-8 bytes. The reached value
 * is in `found` (start, end, SPECIAL_ flags of envelope-bytes.ts).
 */
export const found = { start: 0, end: 0, flags: 0 };

/** pathSpan's answers besides true (found): the path reaches nothing, or a name on the way has an escape (follow it in text). */
export const NOT_FOUND = 0;
export const ESCAPED_NAME = -1;

function elementSpan(b: Buffer, start: number, end: number, index: number): boolean {
  if (b[start] !== OPEN_BRACKET) return false;
  let i = skipBlank(b, start + 1, end);
  if (b[i] === CLOSE_BRACKET) return false;
  for (let k = 0; ; k++) {
    const to = valueSpan(b, i, end);
    if (to === -1) return false;
    if (k === index) {
      found.start = i;
      found.end = to;
      found.flags = spanFlags;
      return true;
    }
    i = skipBlank(b, to, end);
    if (b[i] !== COMMA) return false;
    i = skipBlank(b, i + 1, end);
  }
}

/** The member named `name` (the last of duplicates) of the object at `start`: 1 found, NOT_FOUND, or ESCAPED_NAME. */
function memberSpan(b: Buffer, start: number, end: number, name: Buffer): number {
  if (b[start] !== OPEN_BRACE) return NOT_FOUND;
  let i = skipBlank(b, start + 1, end);
  let hit = NOT_FOUND;
  while (b[i] === QUOTE) {
    const nameEnd = valueSpan(b, i, end);
    if (nameEnd === -1) return NOT_FOUND;
    if ((spanFlags & SPECIAL_ESCAPE) !== 0) return ESCAPED_NAME;
    const same = sameBytes(b, i + 1, nameEnd - 1, name);
    i = skipBlank(b, nameEnd, end);
    if (b[i] !== COLON) return NOT_FOUND;
    const from = skipBlank(b, i + 1, end);
    const to = valueSpan(b, from, end);
    if (to === -1) return NOT_FOUND;
    if (same) {
      hit = 1;
      found.start = from;
      found.end = to;
      found.flags = spanFlags;
    }
    i = skipBlank(b, to, end);
    if (b[i] !== COMMA) break;
    i = skipBlank(b, i + 1, end);
  }
  return hit;
}

/**
 * Follows `steps` from `from` in the valid JSON value b[start, end) (with
 * SPECIAL_ flags `flags`): 1 with the reached value in `found`, NOT_FOUND when
 * the path finds nothing, ESCAPED_NAME when a member name on the way has an
 * escape (pathText on the text decides then).
 */
export function pathSpan(b: Buffer, start: number, end: number, flags: number, steps: readonly (Buffer | number)[], from: number): number {
  found.start = start;
  found.end = end;
  found.flags = flags;
  for (let k = from; k < steps.length; k++) {
    const step = steps[k]!;
    if (typeof step === 'number') {
      if (!elementSpan(b, found.start, found.end, step)) return NOT_FOUND;
    } else {
      const r = memberSpan(b, found.start, found.end, step);
      if (r !== 1) return r;
    }
  }
  return 1;
}
