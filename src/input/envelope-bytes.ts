import { MAX_JSON_DEPTH } from '../encode/values.js';
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from './json-text.js';

/**
 * envelope-scan.ts's scan, on the line's bytes instead of its decoded text:
 * the line is never decoded whole. The envelope's own fields become values;
 * raw_data and data's members stay positions in the input chunk, which the
 * byte encoder (encode/record-bytes.ts) copies into the COPY chunk.
 *
 * It accepts exactly what JSON.parse accepts of a line that is valid UTF-8
 * (the caller checks that, lines.ts): the same strict RFC 8259 validator, on
 * bytes. A byte of 0x80 or more is only ever inside a string, where valid
 * UTF-8 needs no check. Anything it does not accept returns undefined, and the
 * line is read from its text as before (envelope-scan.ts, then JSON.parse for
 * the reason of a reject).
 */
export interface BytesEnvelope {
  id: unknown;
  lastModifiedAt: unknown;
  isDeleted: unknown;
  problem: unknown;
  /** Where the id's and last_modified_at's texts are: when they are strings without escapes, COPY fields as they stand. */
  idStart: number;
  idEnd: number;
  lmStart: number;
  lmEnd: number;
  /** raw_data's text, [rawStart, rawEnd); rawStart is -1 when absent. rawFlags: what the text holds (the SPECIAL_ flags). */
  rawStart: number;
  rawEnd: number;
  rawFlags: number;
  /**
   * When raw_data is an object: its members, as `members` holds data's, found
   * by rawMemberSpans() when first asked for. A read's output (pgland read)
   * carries every column in raw_data and no data: its typed columns are
   * copied from these, as data's are. Found on demand, not by the scan:
   * most inputs never ask, and a tenth of the scan's time went to them.
   */
  rawMembers: number[] | undefined;
  /** Some member name of raw_data has an escape (set with rawMembers). */
  rawEscapedNames: boolean;
  /** rawMemberSpans() has looked for raw_data's members. */
  rawScanned: boolean;
  /** data's text, likewise. */
  dataStart: number;
  dataEnd: number;
  /**
   * When data is an object: per member, five numbers (name start and end
   * inside the quotes, value start and end, the value's SPECIAL_ flags);
   * undefined otherwise.
   */
  members: number[] | undefined;
  /** Some member name of data has an escape. */
  escapedNames: boolean;
  /** The line's flags: no SPECIAL_ flag set means every JSON text of it is a COPY field as it stands. */
  flags: number;
}

/** A backslash (an escape) in a string. */
export const SPECIAL_ESCAPE = 1;
/** A tab, carriage return or newline between tokens (COPY must escape it). */
export const SPECIAL_SPACE = 2;
/** A number with an exponent of 4 digits or more (jsonb may refuse it: copy-text.ts checks it). */
export const SPECIAL_EXPONENT = 4;

const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** The flags met since the value being scanned began. */
let flags = 0;

function skipSpace(b: Buffer, i: number, end: number): number {
  for (; i < end; i++) {
    const c = b[i]!;
    if (c !== 0x20) {
      if (c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
      flags |= SPECIAL_SPACE;
    }
  }
  return i;
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= ZERO && c <= NINE) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46));
}

/**
 * Bytes that end or interrupt a string's plain run: the quote, the
 * backslash, and the control characters JSON forbids unescaped. Every other
 * byte (digits and capitals of ids and timestamps as well as letters and
 * each byte of a multi-byte character) is one load and one test.
 */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;

/** Index just past the string whose opening quote is at `i`, or -1. */
function stringEnd(b: Buffer, i: number, end: number): number {
  for (i++; i < end; i++) {
    const c = b[i]!;
    if (STRING_STOP[c] === 0) continue;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      flags |= SPECIAL_ESCAPE;
      if (++i >= end) return -1;
      const e = b[i];
      if (e === 0x75) {
        // \uXXXX
        if (i + 4 >= end || !(isHex(b[i + 1]) && isHex(b[i + 2]) && isHex(b[i + 3]) && isHex(b[i + 4]))) return -1;
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

function digitsEnd(b: Buffer, i: number, end: number): number {
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < ZERO || c > NINE) return i;
  }
  return i;
}

/** Index just past the number that starts at `i`, or -1. */
function numberEnd(b: Buffer, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  if (i >= end) return -1;
  const first = b[i]!;
  if (first === ZERO) i++;
  else if (first > ZERO && first <= NINE) i = digitsEnd(b, i + 1, end);
  else return -1;
  if (i < end && b[i] === DOT) {
    const to = digitsEnd(b, i + 1, end);
    if (to === i + 1) return -1;
    i = to;
  }
  if (i < end) {
    const e = b[i];
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = i < end ? b[i] : undefined;
      if (sign === 0x2b || sign === MINUS) i++;
      const to = digitsEnd(b, i, end);
      if (to === i) return -1;
      if (to - i >= 4) flags |= SPECIAL_EXPONENT;
      i = to;
    }
  }
  return i;
}

/** Index past the literal whose bytes are `word` (true, false, null) at `i`, or -1. */
function literalEnd(b: Buffer, i: number, end: number, word: readonly number[]): number {
  if (i + word.length > end) return -1;
  for (let k = 1; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

// The containers open around the value being scanned: 1 for an object, 2 for an array.
const open = new Uint8Array(MAX_JSON_DEPTH + 1);

/** Index just past the JSON value at `i`, or -1 (as envelope-scan.ts's valueEnd, within [i, end)). */
function valueEnd(b: Buffer, i: number, end: number, outer: number): number {
  let depth = 0;
  for (;;) {
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === QUOTE) {
      i = stringEnd(b, i, end);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (outer + depth + 1 > MAX_JSON_DEPTH) return -1;
      const close = c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
      i = skipSpace(b, i + 1, end);
      if (i < end && b[i] === close) {
        i++;
      } else {
        open[depth++] = c === OPEN_BRACE ? 1 : 2;
        if (c === OPEN_BRACE) {
          i = memberStart(b, i, end);
          if (i === -1) return -1;
        }
        continue;
      }
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      i = numberEnd(b, i, end);
    } else if (c === 0x74) {
      i = literalEnd(b, i, end, TRUE);
    } else if (c === 0x66) {
      i = literalEnd(b, i, end, FALSE);
    } else if (c === 0x6e) {
      i = literalEnd(b, i, end, NULL);
    } else {
      return -1;
    }
    if (i === -1) return -1;
    // After a value: close containers, or move on to the next item.
    for (;;) {
      if (depth === 0) return i;
      i = skipSpace(b, i, end);
      if (i >= end) return -1;
      const d = b[i];
      const inObject = open[depth - 1] === 1;
      if (d === COMMA) {
        i = skipSpace(b, i + 1, end);
        if (inObject) {
          i = memberStart(b, i, end);
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

/** The SPECIAL_ flags of the value valueSpan scanned last. */
export let spanFlags = 0;

/**
 * Index just past the JSON value at `i` in text a scan accepted (a member's
 * text, see BytesEnvelope.members), or -1; its SPECIAL_ flags in spanFlags.
 */
export function valueSpan(b: Buffer, i: number, end: number): number {
  flags = 0;
  const to = valueEnd(b, i, end, 0);
  spanFlags = flags;
  flags = 0;
  return to;
}

/** Index of the first byte at or after `i` that is not JSON whitespace. */
export function skipBlank(b: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** At a member's name: index of its value (space skipped), or -1. */
function memberStart(b: Buffer, i: number, end: number): number {
  if (i >= end || b[i] !== QUOTE) return -1;
  i = stringEnd(b, i, end);
  if (i === -1) return -1;
  i = skipSpace(b, i, end);
  if (i >= end || b[i] !== COLON) return -1;
  return skipSpace(b, i + 1, end);
}

/** Set by memberSpans: whether a member name had an escape. */
let escapedName = false;

/** Adds the spans of each member of the object whose `{` is at `i` (see BytesEnvelope.members) to `spans` (empty, or a scratch array it overwrites); index past its `}`, or -1. */
function memberSpans(b: Buffer, i: number, end: number, outer: number, spans: number[]): number {
  escapedName = false;
  if (outer + 1 > MAX_JSON_DEPTH) return -1;
  let n = 0;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === CLOSE_BRACE) {
    spans.length = 0;
    return i + 1;
  }
  // The flags of the whole object, for the line's; `flags` holds each member's own while it is scanned.
  let seen = flags;
  for (;;) {
    seen |= flags;
    flags = 0;
    if (i >= end || b[i] !== QUOTE) return -1;
    const nameEnd = stringEnd(b, i, end);
    if (nameEnd === -1) return -1;
    if (flags !== 0) escapedName = true;
    const nameStart = i + 1;
    i = skipSpace(b, nameEnd, end);
    if (i >= end || b[i] !== COLON) return -1;
    const start = skipSpace(b, i + 1, end);
    seen |= flags;
    flags = 0;
    const to = valueEnd(b, start, end, outer + 1);
    if (to === -1) return -1;
    spans[n] = nameStart;
    spans[n + 1] = nameEnd - 1;
    spans[n + 2] = start;
    spans[n + 3] = to;
    spans[n + 4] = flags;
    n += 5;
    seen |= flags;
    flags = 0;
    i = skipSpace(b, to, end);
    if (i >= end) return -1;
    const c = b[i];
    if (c === CLOSE_BRACE) {
      flags |= seen;
      // Setting the length is a call into the runtime even when it does not change.
      if (spans.length !== n) spans.length = n;
      return i + 1;
    }
    if (c !== COMMA) return -1;
    i = skipSpace(b, i + 1, end);
  }
}

/** The envelope's names, as bytes. */
const NAMES = {
  id: Buffer.from('id'),
  raw_data: Buffer.from('raw_data'),
  data: Buffer.from('data'),
  last_modified_at: Buffer.from('last_modified_at'),
  is_deleted: Buffer.from('is_deleted'),
  problem: Buffer.from('problem'),
};
type Name = keyof typeof NAMES | undefined;

/** Whether b[start, end) holds the same bytes as `name`. */
export function sameBytes(b: Buffer, start: number, end: number, name: Uint8Array): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (b[start + k] !== name[k]) return false;
  return true;
}

/** The envelope field a member name (the text inside its quotes) is, as JSON.parse reads it. */
function nameOf(b: Buffer, start: number, end: number, escaped: boolean): Name {
  if (escaped) {
    const name = JSON.parse(b.toString('utf8', start - 1, end + 1)) as string;
    return Object.hasOwn(NAMES, name) ? (name as Name) : undefined;
  }
  switch (end - start) {
    case 2:
      return sameBytes(b, start, end, NAMES.id) ? 'id' : undefined;
    case 4:
      return sameBytes(b, start, end, NAMES.data) ? 'data' : undefined;
    case 7:
      return sameBytes(b, start, end, NAMES.problem) ? 'problem' : undefined;
    case 8:
      return sameBytes(b, start, end, NAMES.raw_data) ? 'raw_data' : undefined;
    case 10:
      return sameBytes(b, start, end, NAMES.is_deleted) ? 'is_deleted' : undefined;
    case 16:
      return sameBytes(b, start, end, NAMES.last_modified_at) ? 'last_modified_at' : undefined;
    default:
      return undefined;
  }
}

/**
 * The value of the valid JSON text b[start, end), as JSON.parse gives it
 * (json-text.ts's textValue, on bytes). `escaped`: whether it has a backslash.
 */
export function bytesValue(b: Buffer, start: number, end: number, escaped: boolean): unknown {
  const c = b[start];
  if (c === QUOTE) return escaped ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', start + 1, end - 1);
  if (c === 0x74) return true;
  if (c === 0x66) return false;
  if (c === 0x6e) return null;
  if (c === OPEN_BRACE || c === OPEN_BRACKET) return JSON.parse(b.toString('utf8', start, end));
  return Number(b.toString('latin1', start, end));
}

/**
 * What one reader's scans reuse from line to line: the arrays of data's and
 * raw_data's member spans, overwritten by the next line's scan. A line's scan
 * is then only valid until the next line is scanned with the same scratch:
 * the loader encodes each record before it reads the next
 * (record-source.ts). Grown from empty for every line, these arrays were
 * half of what the scan allocated a line.
 */
export interface ScanScratch {
  data: number[];
  raw: number[];
}

export function newScanScratch(): ScanScratch {
  return { data: [], raw: [] };
}

function newEnvelope(): BytesEnvelope {
  return {
    id: undefined,
    lastModifiedAt: undefined,
    isDeleted: undefined,
    problem: undefined,
    idStart: -1,
    idEnd: -1,
    lmStart: -1,
    lmEnd: -1,
    rawStart: -1,
    rawEnd: -1,
    rawFlags: 0,
    rawMembers: undefined,
    rawEscapedNames: false,
    rawScanned: false,
    dataStart: -1,
    dataEnd: -1,
    members: undefined,
    escapedNames: false,
    flags: 0,
  };
}

/**
 * Scans the envelope line b[start, end) (valid UTF-8); undefined when it must
 * be read from its text. `rawMembers`: find raw_data's members in the same
 * pass, for a run whose columns are read from raw_data (a second pass over
 * the payload costs a read's output a tenth of its load's CPU); others leave
 * them to rawMemberSpans(), which most never call.
 */
export function scanEnvelopeBytes(b: Buffer, start: number, end: number, rawMembers = false, scratch?: ScanScratch): BytesEnvelope | undefined {
  const out = newEnvelope();
  flags = 0;
  let line = 0;
  let i = skipSpace(b, start, end);
  if (i >= end || b[i] !== OPEN_BRACE) return undefined;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === CLOSE_BRACE) return skipSpace(b, i + 1, end) === end ? done(out, line | flags) : undefined;
  for (;;) {
    if (i >= end || b[i] !== QUOTE) return undefined;
    line |= flags;
    flags = 0;
    const nameEnd = stringEnd(b, i, end);
    if (nameEnd === -1) return undefined;
    const name = nameOf(b, i + 1, nameEnd - 1, flags !== 0);
    i = skipSpace(b, nameEnd, end);
    if (i >= end || b[i] !== COLON) return undefined;
    const from = skipSpace(b, i + 1, end);
    line |= flags;
    flags = 0;
    let to: number;
    if ((name === 'data' || (rawMembers && name === 'raw_data')) && from < end && b[from] === OPEN_BRACE) {
      // The members are found as the payload is checked: one pass.
      const spans = scratch === undefined ? [] : name === 'data' ? scratch.data : scratch.raw;
      to = memberSpans(b, from, end, 1, spans);
      if (name === 'data') {
        out.members = spans;
        out.escapedNames = escapedName;
      } else {
        out.rawMembers = spans;
        out.rawEscapedNames = escapedName;
        out.rawScanned = true;
      }
    } else {
      to = valueEnd(b, from, end, 1);
      // A later duplicate that is not an object replaces the members (the last one wins, as in JSON.parse).
      if (name === 'data') {
        out.members = undefined;
        out.escapedNames = false;
      } else if (name === 'raw_data') {
        out.rawMembers = undefined;
        out.rawEscapedNames = false;
        out.rawScanned = rawMembers;
      }
    }
    if (to === -1) return undefined;
    const escaped = (flags & SPECIAL_ESCAPE) !== 0;
    switch (name) {
      case 'raw_data':
        out.rawStart = from;
        out.rawEnd = to;
        out.rawFlags = flags;
        break;
      case 'data':
        out.dataStart = from;
        out.dataEnd = to;
        break;
      case 'id':
        out.id = bytesValue(b, from, to, escaped);
        out.idStart = escaped ? -1 : from;
        out.idEnd = to;
        break;
      case 'last_modified_at':
        out.lastModifiedAt = bytesValue(b, from, to, escaped);
        out.lmStart = escaped ? -1 : from;
        out.lmEnd = to;
        break;
      case 'is_deleted':
        out.isDeleted = bytesValue(b, from, to, escaped);
        break;
      case 'problem':
        out.problem = bytesValue(b, from, to, escaped);
        break;
      default:
        break;
    }
    line |= flags;
    flags = 0;
    i = skipSpace(b, to, end);
    if (i >= end) return undefined;
    const c = b[i];
    if (c === CLOSE_BRACE) return skipSpace(b, i + 1, end) === end ? done(out, line | flags) : undefined;
    if (c !== COMMA) return undefined;
    i = skipSpace(b, i + 1, end);
  }
}

/**
 * raw_data's members (BytesEnvelope.rawMembers), found in the text the scan
 * accepted the first time they are asked for; undefined when raw_data is not
 * an object.
 */
export function rawMemberSpans(b: Buffer, scan: BytesEnvelope): number[] | undefined {
  if (scan.rawScanned) return scan.rawMembers;
  scan.rawScanned = true;
  if (scan.rawStart < 0 || b[scan.rawStart] !== OPEN_BRACE) return undefined;
  const saved = flags;
  flags = 0;
  const spans: number[] = [];
  // Cannot fail: the scan accepted this text.
  if (memberSpans(b, scan.rawStart, scan.rawEnd, 1, spans) !== -1) {
    scan.rawMembers = spans;
    scan.rawEscapedNames = escapedName;
  }
  flags = saved;
  return scan.rawMembers;
}

function done(out: BytesEnvelope, lineFlags: number): BytesEnvelope {
  out.flags = lineFlags;
  return out;
}
