import type { ColumnDef, ObjectDef } from '../catalog/definition.js';
import type { BytesRecord } from '../input/bytes-record.js';
import { rawMemberSpans, SPECIAL_ESCAPE, SPECIAL_EXPONENT } from '../input/envelope-bytes.js';
import { OPEN_BRACE, OPEN_BRACKET, QUOTE } from '../input/json-text.js';
import { copyText, LONG_NUMBER_TEXT, type EncodeStats } from './copy-text.js';
import { parsedField, rawField, scannedField, type Problem } from './record.js';
import { inlineWidth, isTimestampBytes, TYPED_ROW_BUDGET } from './values.js';

/**
 * encodeRecord (record.ts) for a record read as bytes (BytesRecord): the row
 * is written straight into the COPY chunk, and what the line holds as it must
 * land is copied byte for byte: the raw payload and jsonb values with only
 * COPY's escaping (backslashes doubled, a tab or newline between tokens
 * escaped, \u escapes as copy-text.ts's copyJsonText writes them), strings of
 * text columns unescaped from JSON into COPY text, a timestamp, boolean or
 * null as its bytes. Anything else (a number in a typed column, a value that
 * does not fit, a payload with a huge number) takes record.ts's way for that
 * one field, from its text: the bytes written are those of encodeRecord's
 * row, which test/envelope-bytes.test.ts checks line by line.
 *
 * Returns the position past the row, ROW_FULL when the chunk has no room for
 * it (nothing written, nothing counted), or ROW_SLOW when encodeRecord must
 * write it (a row too wide for the typed columns, escaped member names).
 */
export const ROW_FULL = -1;
export const ROW_SLOW = -2;

const TAB = 0x09;
const NEWLINE = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const NULL_FIELD = [BACKSLASH, 0x4e]; // \N

/** What each object's columns need, found once: their keys as UTF-8. */
interface Plan {
  keys: Buffer[];
  /** Some column is read from raw_data. */
  fromRaw: boolean;
}
const plans = new WeakMap<ObjectDef, Plan>();

function planOf(def: ObjectDef): Plan {
  let plan = plans.get(def);
  if (plan === undefined) {
    plan = { keys: def.columns.map((c) => Buffer.from(c.source.key, 'utf8')), fromRaw: def.columns.some((c) => c.source.from !== 'data') };
    plans.set(def, plan);
  }
  return plan;
}

export function writeRecordBytes(record: BytesRecord, def: ObjectDef, stats: EncodeStats, problems: Problem[], lead: string, out: Buffer, at: number): number {
  const { scan, src } = record;
  const members = scan.members;
  const plan = planOf(def);
  const rawMembers = plan.fromRaw ? rawMemberSpans(src, scan) : undefined;
  if (scan.escapedNames || (plan.fromRaw && scan.rawEscapedNames)) return ROW_SLOW;
  // What is copied from the line takes at most twice its bytes: room for that is checked once.
  const reserve = 2 * record.lineBytes + 4 * (def.columns.length + 5);
  const limit = out.length;
  if (at + 3 * lead.length + reserve > limit) return ROW_FULL;
  const problemsBefore = problems.length;
  const nulBefore = stats.nulStripped;
  const surrogatesBefore = stats.surrogatesReplaced;
  let p = writeEnvelopeFields(record, stats, out, writeText(out, at, lead));
  out[p++] = TAB;

  const { rawStart, rawEnd } = scan;
  if (rawStart < 0 || src[rawStart] === 0x6e) {
    p = writeNull(out, p);
  } else if ((scan.rawFlags & SPECIAL_EXPONENT) === 0 && rawEnd - rawStart <= LONG_NUMBER_TEXT) {
    p = copyJsonBytes(src, rawStart, rawEnd, scan.rawFlags, out, p, stats);
  } else {
    const field = rawField(record, stats);
    if (field !== null && p + 3 * field.length + reserve > limit) return undo(problems, stats, problemsBefore, nulBefore, surrogatesBefore, ROW_FULL);
    p = writeField(out, p, field);
  }

  let width = 0;
  const columns = def.columns;
  for (let n = 0; n < columns.length; n++) {
    const column = columns[n]!;
    out[p++] = TAB;
    const from = p;
    const fromData = column.source.from === 'data';
    const spans = fromData ? members : rawMembers;
    const k = spans === undefined ? -1 : memberAt(src, spans, plan.keys[n]!);
    const c = k === -1 ? 0x6e : src[spans![k + 2]!];
    if (c === 0x6e) {
      // Absent or null: NULL, whatever the column's type.
      p = writeNull(out, p);
      continue;
    }
    const vs = spans![k + 2]!;
    const ve = spans![k + 3]!;
    const flags = spans![k + 4]!;
    switch (column.type) {
      case 'text':
        if (c === QUOTE) p = (flags & SPECIAL_ESCAPE) === 0 ? copyBytes(src, vs + 1, ve - 1, out, p) : unescapeText(src, vs + 1, ve - 1, out, p, stats);
        break;
      case 'timestamptz':
      case 'date':
        // "" is no value: NULL. A timestamp is ASCII, so its bytes read as latin1 are its text (isTimestampBytes).
        if (c === QUOTE && (flags & SPECIAL_ESCAPE) === 0) {
          if (ve - vs === 2) {
            p = writeNull(out, p);
            continue;
          }
          if (isTimestampBytes(src, vs + 1, ve - 1)) p = copyBytes(src, vs + 1, ve - 1, out, p);
        }
        break;
      case 'jsonb':
        if (
          ((c === OPEN_BRACE && column.shape !== 'array') || (c === OPEN_BRACKET && column.shape !== 'object')) &&
          (flags & SPECIAL_EXPONENT) === 0 &&
          ve - vs <= LONG_NUMBER_TEXT
        ) {
          p = copyJsonBytes(src, vs, ve, flags, out, p, stats);
        }
        break;
      case 'boolean':
        if (c === 0x74 || c === 0x66) out[p++] = c;
        break;
      default:
        break;
    }
    if (p === from && !(column.type === 'text' && c === QUOTE)) {
      // Not one of the cases above: encodeRecord's way, from the member's text (without data, its parsed path's).
      const text = src.toString('utf8', vs, ve);
      const field =
        fromData || members !== undefined ? scannedField(record, column, text, false, stats, problems) : parsedField(record, column, text, stats, problems);
      if (field !== null && p + 3 * field.length + reserve > limit) return undo(problems, stats, problemsBefore, nulBefore, surrogatesBefore, ROW_FULL);
      p = writeField(out, p, field);
      if (field === null) continue;
    }
    width += widthOf(out, from, p, column);
  }
  // Too wide for one row: encodeRecord drops the last typed values, with their problems.
  if (width > TYPED_ROW_BUDGET) return undo(problems, stats, problemsBefore, nulBefore, surrogatesBefore, ROW_SLOW);
  out[p++] = NEWLINE;
  return p;
}

/** Takes back what a row that is not written counted: nothing written, nothing counted. */
function undo(problems: Problem[], stats: EncodeStats, problemsBefore: number, nulBefore: number, surrogatesBefore: number, code: number): number {
  problems.length = problemsBefore;
  stats.nulStripped = nulBefore;
  stats.surrogatesReplaced = surrogatesBefore;
  return code;
}

/**
 * The id, version and deletion flag as COPY fields, tab-separated (no tab
 * after the last): the id's and version's bytes when they were strings
 * without escapes, else their values. Room for them is checked by the caller.
 */
export function writeEnvelopeFields(record: BytesRecord, stats: EncodeStats, out: Buffer, p: number): number {
  const { scan, src } = record;
  if (scan.idStart >= 0 && src[scan.idStart] === QUOTE) p = copyBytes(src, scan.idStart + 1, scan.idEnd - 1, out, p);
  else p = writeText(out, p, copyText(record.id, stats));
  out[p++] = TAB;
  if (scan.lmStart >= 0 && src[scan.lmStart] === QUOTE) p = copyBytes(src, scan.lmStart + 1, scan.lmEnd - 1, out, p);
  else p = writeText(out, p, record.lastModifiedAt);
  out[p++] = TAB;
  out[p++] = record.isDeleted ? 0x74 : 0x66;
  return p;
}

/** Index in `members` of the member named `key` (the last of duplicates), or -1. */
export function memberAt(src: Buffer, members: number[], key: Buffer): number {
  const n = key.length;
  for (let k = members.length - 5; k >= 0; k -= 5) {
    const a = members[k]!;
    if (members[k + 1]! - a !== n) continue;
    let i = 0;
    while (i < n && src[a + i] === key[i]) i++;
    if (i === n) return k;
  }
  return -1;
}

/**
 * The most bytes a non-null field out[from, to) can take inside a row
 * (values.ts's inlineBytes): for text and numeric, counted in UTF-16 units
 * as inlineBytes counts the string.
 */
function widthOf(out: Buffer, from: number, to: number, column: ColumnDef): number {
  if (column.type !== 'text' && column.type !== 'numeric') return inlineWidth(0, column.type);
  // Each UTF-16 unit is at most 3 bytes: more than 18 bytes is more than 6 units.
  if (to - from > 18) return inlineWidth(7, column.type);
  let units = 0;
  for (let i = from; i < to; i++) {
    const b = out[i]!;
    if ((b & 0xc0) !== 0x80) units += b >= 0xf0 ? 2 : 1;
  }
  return inlineWidth(units, column.type);
}

export function writeNull(out: Buffer, p: number): number {
  out[p] = NULL_FIELD[0]!;
  out[p + 1] = NULL_FIELD[1]!;
  return p + 2;
}

function writeField(out: Buffer, p: number, field: string | null): number {
  return field === null ? writeNull(out, p) : writeText(out, p, field);
}

/** Writes text as UTF-8 (room for 3 bytes a unit is checked by the caller). */
export function writeText(out: Buffer, p: number, text: string): number {
  const n = text.length;
  if (n <= 32) {
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      out[p + i] = c;
    }
    if (i === n) return p + n;
  }
  return p + out.write(text, p, 'utf8');
}

/** Copies src[start, end) to out at p. */
export function copyBytes(src: Buffer, start: number, end: number, out: Buffer, p: number): number {
  const n = end - start;
  if (n > 48) return p + src.copy(out, p, start, end);
  for (let i = 0; i < n; i++) out[p + i] = src[start + i]!;
  return p + n;
}

function hexDigit(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

/** The code unit of the \uXXXX escape whose backslash is at `i`. */
function escapedCode(src: Buffer, i: number): number {
  return (hexDigit(src[i + 2]!) << 12) | (hexDigit(src[i + 3]!) << 8) | (hexDigit(src[i + 4]!) << 4) | hexDigit(src[i + 5]!);
}

/** The low surrogate of a \uXXXX escape at `i` (before `end`), or -1. */
function lowSurrogateAt(src: Buffer, i: number, end: number): number {
  if (i + 6 > end || src[i] !== BACKSLASH || src[i + 1] !== 0x75) return -1;
  const code = escapedCode(src, i);
  return code >= 0xdc00 && code <= 0xdfff ? code : -1;
}

/** Writes a code point (not a surrogate) as UTF-8. */
function writeCodePoint(out: Buffer, p: number, code: number): number {
  if (code < 0x80) {
    out[p] = code;
    return p + 1;
  }
  if (code < 0x800) {
    out[p] = 0xc0 | (code >> 6);
    out[p + 1] = 0x80 | (code & 0x3f);
    return p + 2;
  }
  if (code < 0x10000) {
    out[p] = 0xe0 | (code >> 12);
    out[p + 1] = 0x80 | ((code >> 6) & 0x3f);
    out[p + 2] = 0x80 | (code & 0x3f);
    return p + 3;
  }
  out[p] = 0xf0 | (code >> 18);
  out[p + 1] = 0x80 | ((code >> 12) & 0x3f);
  out[p + 2] = 0x80 | ((code >> 6) & 0x3f);
  out[p + 3] = 0x80 | (code & 0x3f);
  return p + 4;
}

/**
 * The code point of the \u escape at `i`, combined with the low surrogate
 * escape after it into one; -2 for a lone surrogate (U+FFFD, counted). Sets
 * `escapeLength` to the bytes read.
 */
function codePointAt(src: Buffer, i: number, end: number, stats: EncodeStats): number {
  const code = escapedCode(src, i);
  escapeLength = 6;
  if (code >= 0xd800 && code <= 0xdbff) {
    const low = lowSurrogateAt(src, i + 6, end);
    if (low !== -1) {
      escapeLength = 12;
      return 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
    }
  }
  if (code >= 0xd800 && code <= 0xdfff) {
    stats.surrogatesReplaced++;
    return -2;
  }
  return code;
}
let escapeLength = 6;

/** U+FFFD, what a lone surrogate becomes. */
function writeReplacement(out: Buffer, p: number): number {
  out[p] = 0xef;
  out[p + 1] = 0xbf;
  out[p + 2] = 0xbd;
  return p + 3;
}

/**
 * A JSON string's content src[start, end) (valid, with escapes) as the COPY
 * text field copy-text.ts's copyText gives for its value: backslash, tab,
 * newline and CR escaped for COPY, NUL removed and a lone surrogate U+FFFD
 * (both counted).
 */
export function unescapeText(src: Buffer, start: number, end: number, out: Buffer, p: number, stats: EncodeStats): number {
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c !== BACKSLASH) {
      out[p++] = c;
      continue;
    }
    const e = src[++i]!;
    let code: number;
    if (e === 0x75) {
      code = codePointAt(src, i - 1, end, stats);
      i += escapeLength - 2;
      if (code === -2) {
        p = writeReplacement(out, p);
        continue;
      }
    } else {
      code = e === 0x6e ? NEWLINE : e === 0x74 ? TAB : e === 0x72 ? CR : e === 0x62 ? 0x08 : e === 0x66 ? 0x0c : e; // \" \\ \/ as themselves
    }
    if (code === 0) {
      stats.nulStripped++;
    } else if (code === BACKSLASH) {
      out[p++] = BACKSLASH;
      out[p++] = BACKSLASH;
    } else if (code === NEWLINE || code === TAB || code === CR) {
      out[p++] = BACKSLASH;
      out[p++] = code === NEWLINE ? 0x6e : code === TAB ? 0x74 : 0x72;
    } else {
      p = writeCodePoint(out, p, code);
    }
  }
  return p;
}

/**
 * Valid JSON text src[start, end) (without a huge number) as the COPY field
 * for jsonb that copy-text.ts's copyJsonText gives: as it stands unless it
 * has an escape or a tab or newline between tokens; then backslashes doubled,
 * those escaped, \u0000 removed, a lone surrogate escape U+FFFD (both
 * counted), a pair and any other non-ASCII escape written as the character.
 */
export function copyJsonBytes(src: Buffer, start: number, end: number, flags: number, out: Buffer, p: number, stats: EncodeStats): number {
  if (flags === 0) return copyBytes(src, start, end, out, p);
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c > BACKSLASH || (c !== BACKSLASH && c >= 0x20)) {
      out[p++] = c;
    } else if (c === TAB || c === NEWLINE || c === CR) {
      out[p++] = BACKSLASH;
      out[p++] = c === NEWLINE ? 0x6e : c === TAB ? 0x74 : 0x72;
    } else if (src[i + 1] !== 0x75) {
      // \" \\ \/ \b \f \n \r \t: every backslash doubled (both of \\).
      out[p++] = BACKSLASH;
      out[p++] = BACKSLASH;
      const e = src[++i]!;
      out[p++] = e;
      if (e === BACKSLASH) out[p++] = BACKSLASH;
    } else {
      const code = codePointAt(src, i, end, stats);
      if (code === -2) {
        p = writeReplacement(out, p);
      } else if (code === 0) {
        stats.nulStripped++;
      } else if (code < 0x80) {
        // Kept as the escape, which every server's jsonb takes.
        out[p++] = BACKSLASH;
        for (let k = 0; k < 6; k++) out[p++] = src[i + k]!;
      } else {
        p = writeCodePoint(out, p, code);
      }
      i += escapeLength - 1;
    }
  }
  return p;
}
