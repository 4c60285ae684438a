import { CLOSE_BRACKET, COMMA, memberText, OPEN_BRACE, OPEN_BRACKET, valueEnd } from '../input/json-text.js';

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
