import { MAX_JSON_DEPTH } from '../encode/values.js';
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE, textValue } from './json-text.js';

/**
 * Reads an input envelope line without building its payload: the envelope's
 * own fields (id, last_modified_at, is_deleted, problem) are decoded, raw_data
 * is kept as the text it was sent as, and data as the text of each of its
 * members. JSON.parse of the whole line, then JSON.stringify of the payload
 * again for jsonb, was about 70% of Node's CPU on a load; a payload that is
 * only passed through to a jsonb column is now checked, not built.
 *
 * The scan is a strict JSON validator (RFC 8259, as JSON.parse reads it): it
 * accepts exactly what JSON.parse accepts, so that no text the server would
 * refuse reaches COPY (one bad jsonb value fails a whole batch). Anything it
 * does not accept (bad JSON, not an object, nesting past MAX_JSON_DEPTH)
 * returns undefined, and the caller parses the line with JSON.parse as before:
 * the line is rejected with the same reason as ever.
 *
 * Duplicate keys: as JSON.parse does, the last one wins, at the envelope's
 * level and inside data; inside raw_data the server's jsonb keeps the last.
 */
export interface ScannedEnvelope {
  /** The envelope's fields, as JSON.parse would give them (undefined when absent). */
  id: unknown;
  lastModifiedAt: unknown;
  isDeleted: unknown;
  problem: unknown;
  /** raw_data's text as sent, undefined when absent. */
  rawText: string | undefined;
  /** data's text as sent, undefined when absent. */
  dataText: string | undefined;
  /** When data is an object: each member's value text as sent, by name (the last of duplicates). */
  dataMembers: MemberTexts | undefined;
  /**
   * Every JSON text of the line is already a COPY field as it stands: the
   * line has no backslash (so no escape), no tab, carriage return or newline,
   * no exponent of 4 digits or more, and is well-formed UTF-16. A string
   * member's text is then its value less the quotes; raw_data and a jsonb
   * member of up to LONG_NUMBER_TEXT characters land as sent, unchecked
   * (copy-text.ts would find nothing to change in them).
   */
  asIs: boolean;
}

/** Members' value texts as sent, by name. */
export interface MemberTexts {
  /** The value text of the member `key` (the last of duplicates), undefined when absent. */
  get(key: string): string | undefined;
}

/**
 * data's members as positions in the line, looked up by name when asked:
 * cheaper than a Map per record (a Map's inserts were a tenth of the scan).
 * `spans` holds, per member, its name's first and last-plus-one character
 * (inside the quotes) and its value's.
 */
export class LineMembers implements MemberTexts {
  private map: Map<string, string> | undefined;

  constructor(
    private readonly line: string,
    private readonly spans: number[],
    /** Some name has an escape: names are then decoded once, into a Map. */
    private readonly escapedNames: boolean,
  ) {}

  get(key: string): string | undefined {
    if (this.escapedNames) return this.toMap().get(key);
    const { line, spans } = this;
    for (let k = spans.length - 4; k >= 0; k -= 4) {
      const a = spans[k]!;
      if (spans[k + 1]! - a === key.length && line.startsWith(key, a)) return line.slice(spans[k + 2], spans[k + 3]);
    }
    return undefined;
  }

  /** Every member, by name (the last of duplicates). */
  toMap(): Map<string, string> {
    if (this.map) return this.map;
    const map = new Map<string, string>();
    const { line, spans } = this;
    for (let k = 0; k < spans.length; k += 4) {
      const raw = line.slice(spans[k], spans[k + 1]);
      map.set(raw.includes('\\') ? (JSON.parse('"' + raw + '"') as string) : raw, line.slice(spans[k + 2], spans[k + 3]));
    }
    return (this.map = map);
  }
}

const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Set by stringEnd: whether the last string scanned had an escape. */
let escaped = false;

/**
 * Set while a line is scanned: it has something COPY text must escape or
 * copy-text.ts must look at (a backslash, a tab, CR or LF between tokens, an
 * exponent of 4 digits or more). Found on the way, so that the encoder does
 * not scan every value again (ScannedEnvelope.asIs).
 */
let copySpecial = false;

function skipSpace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20) {
      if (c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
      copySpecial = true;
    }
    i++;
  }
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Index just past the string whose opening quote is at `i`, or -1 when it is not valid JSON. */
function stringEnd(s: string, i: number): number {
  escaped = false;
  const n = s.length;
  for (i++; i < n; i++) {
    const c = s.charCodeAt(i);
    // Lower-case letters and every non-ASCII unit: one comparison (most of a payload's characters).
    if (c > BACKSLASH) continue;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      escaped = true;
      copySpecial = true;
      const e = s.charCodeAt(++i);
      if (e === 0x75) {
        // \uXXXX
        if (!(isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2)) && isHex(s.charCodeAt(i + 3)) && isHex(s.charCodeAt(i + 4)))) return -1;
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    }
  }
  return -1;
}

function digitsEnd(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    // Past the end c is NaN: written so that NaN ends the digits (a line that ends in a number looped forever).
    if (!(c >= ZERO && c <= NINE)) return i;
    i++;
  }
}

/** Index just past the number that starts at `i`, or -1. */
function numberEnd(s: string, i: number): number {
  if (s.charCodeAt(i) === MINUS) i++;
  const first = s.charCodeAt(i);
  if (first === ZERO) i++;
  else if (first > ZERO && first <= NINE) i = digitsEnd(s, i + 1);
  else return -1;
  if (s.charCodeAt(i) === DOT) {
    const end = digitsEnd(s, i + 1);
    if (end === i + 1) return -1;
    i = end;
  }
  const e = s.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    i++;
    const sign = s.charCodeAt(i);
    if (sign === 0x2b || sign === MINUS) i++;
    const end = digitsEnd(s, i);
    if (end === i) return -1;
    if (end - i >= 4) copySpecial = true;
    i = end;
  }
  return i;
}

function literalEnd(s: string, i: number, word: string): number {
  return s.startsWith(word, i) ? i + word.length : -1;
}

// The containers open around the value being scanned: 1 for an object, 2 for an array.
const open = new Uint8Array(MAX_JSON_DEPTH + 1);

/**
 * Index just past the JSON value that starts at `i` (no leading space), or -1
 * when it is not valid JSON or nests deeper than MAX_JSON_DEPTH counting the
 * `outer` levels around it. Iterative: a deep value cannot overflow the stack.
 */
function valueEnd(s: string, i: number, outer: number): number {
  let depth = 0;
  for (;;) {
    // A value at i.
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(s, i);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (outer + depth + 1 > MAX_JSON_DEPTH) return -1;
      const close = c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
      i = skipSpace(s, i + 1);
      if (s.charCodeAt(i) === close) {
        i++;
      } else {
        open[depth++] = c === OPEN_BRACE ? 1 : 2;
        if (c === OPEN_BRACE) {
          i = memberStart(s, i);
          if (i === -1) return -1;
        }
        continue;
      }
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      i = numberEnd(s, i);
    } else if (c === 0x74) {
      i = literalEnd(s, i, 'true');
    } else if (c === 0x66) {
      i = literalEnd(s, i, 'false');
    } else if (c === 0x6e) {
      i = literalEnd(s, i, 'null');
    } else {
      return -1;
    }
    if (i === -1) return -1;
    // After a value: close containers, or move on to the next item.
    for (;;) {
      if (depth === 0) return i;
      i = skipSpace(s, i);
      const d = s.charCodeAt(i);
      const inObject = open[depth - 1] === 1;
      if (d === COMMA) {
        i = skipSpace(s, i + 1);
        if (inObject) {
          i = memberStart(s, i);
          if (i === -1) return -1;
        }
        break;
      }
      if (d !== (inObject ? CLOSE_BRACE : CLOSE_BRACKET)) return -1;
      depth--;
      i++;
    }
  }
}

/** At a member's name: index of its value (space skipped), or -1. */
function memberStart(s: string, i: number): number {
  if (s.charCodeAt(i) !== QUOTE) return -1;
  i = stringEnd(s, i);
  if (i === -1) return -1;
  i = skipSpace(s, i);
  if (s.charCodeAt(i) !== COLON) return -1;
  return skipSpace(s, i + 1);
}

/** The member name whose quotes are at `i` and `end - 1`, as JSON.parse reads it (just scanned: `escaped` is its own). */
function nameAt(s: string, i: number, end: number): string {
  return escaped ? (JSON.parse(s.slice(i, end)) as string) : s.slice(i + 1, end - 1);
}

/** Set by memberSpans: whether a member name had an escape. */
let escapedName = false;

/**
 * Adds the spans (see LineMembers) of each member of the object whose `{` is
 * at `i` to `spans`, and returns the index just past its `}`, or -1 when it
 * is not valid JSON.
 */
function memberSpans(s: string, i: number, outer: number, spans: number[]): number {
  escapedName = false;
  if (outer + 1 > MAX_JSON_DEPTH) return -1;
  i = skipSpace(s, i + 1);
  if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (s.charCodeAt(i) !== QUOTE) return -1;
    const nameEnd = stringEnd(s, i);
    if (nameEnd === -1) return -1;
    if (escaped) escapedName = true;
    const nameStart = i + 1;
    i = skipSpace(s, nameEnd);
    if (s.charCodeAt(i) !== COLON) return -1;
    const start = skipSpace(s, i + 1);
    const end = valueEnd(s, start, outer + 1);
    if (end === -1) return -1;
    spans.push(nameStart, nameEnd - 1, start, end);
    i = skipSpace(s, end);
    const c = s.charCodeAt(i);
    if (c === CLOSE_BRACE) return i + 1;
    if (c !== COMMA) return -1;
    i = skipSpace(s, i + 1);
  }
}

/** Scans one envelope line (see the file's comment); undefined when JSON.parse must read it. */
export function scanEnvelope(s: string): ScannedEnvelope | undefined {
  const out: ScannedEnvelope = {
    id: undefined,
    lastModifiedAt: undefined,
    isDeleted: undefined,
    problem: undefined,
    rawText: undefined,
    dataText: undefined,
    dataMembers: undefined,
    asIs: false,
  };
  copySpecial = false;
  let i = skipSpace(s, 0);
  if (s.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(s, i + 1);
  if (s.charCodeAt(i) === CLOSE_BRACE) return skipSpace(s, i + 1) === s.length ? scanned(out, s) : undefined;
  for (;;) {
    if (s.charCodeAt(i) !== QUOTE) return undefined;
    const nameEnd = stringEnd(s, i);
    if (nameEnd === -1) return undefined;
    const name = nameAt(s, i, nameEnd);
    i = skipSpace(s, nameEnd);
    if (s.charCodeAt(i) !== COLON) return undefined;
    const from = skipSpace(s, i + 1);
    let to: number;
    if (name === 'data' && s.charCodeAt(from) === OPEN_BRACE) {
      // data's members are found as it is checked: one pass.
      const spans: number[] = [];
      to = memberSpans(s, from, 1, spans);
      out.dataMembers = new LineMembers(s, spans, escapedName);
    } else {
      to = valueEnd(s, from, 1);
      if (name === 'data') out.dataMembers = undefined;
    }
    if (to === -1) return undefined;
    switch (name) {
      case 'raw_data':
        out.rawText = s.slice(from, to);
        break;
      case 'data':
        out.dataText = s.slice(from, to);
        break;
      case 'id':
        out.id = textValue(s.slice(from, to));
        break;
      case 'last_modified_at':
        out.lastModifiedAt = textValue(s.slice(from, to));
        break;
      case 'is_deleted':
        out.isDeleted = textValue(s.slice(from, to));
        break;
      case 'problem':
        out.problem = textValue(s.slice(from, to));
        break;
      default:
        break;
    }
    i = skipSpace(s, to);
    const c = s.charCodeAt(i);
    if (c === CLOSE_BRACE) return skipSpace(s, i + 1) === s.length ? scanned(out, s) : undefined;
    if (c !== COMMA) return undefined;
    i = skipSpace(s, i + 1);
  }
}

/** The scan's result once the whole line is accepted. */
function scanned(out: ScannedEnvelope, s: string): ScannedEnvelope {
  // isWellFormed() is native: one call for the line instead of one per value.
  out.asIs = !copySpecial && s.isWellFormed();
  return out;
}
