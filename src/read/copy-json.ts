import type { ColumnKind, SourceColumn } from './describe.js';

/*
 * COPY's text rows into JSON lines, byte to byte: no JavaScript string is
 * made for a column's value (a read of a million rows made twenty million
 * of them through node-postgres, and their garbage). The JSON is the one
 * row_to_json writes, value for value:
 *
 * - numbers (integers, numeric, floats) as the server's digits, exactly
 *   (numeric is never rounded through a double); NaN and ±Infinity as strings;
 * - booleans as true/false; json and jsonb as their own text;
 * - timestamps in ISO 8601 ('2026-01-15T10:30:00.5+00:00'), dates as text;
 * - columns whose JSON the server wrote (arrays, composites, types that are
 *   not built in: src/read/row-select.ts) as that JSON;
 * - any other type as a JSON string of its text.
 *
 * COPY's text format (docs: COPY, "Text Format"): fields separated by a tab,
 * rows ended by a newline, `\N` for NULL, and a backslash before b f n r t v
 * and before a backslash; no other byte is escaped. A tab or a newline in a
 * value is always escaped, so the separators are unambiguous.
 */

const enum Enc {
  String,
  Json,
  Number,
  Raw,
  Bool,
  Timestamptz,
  Timestamp,
  Date,
}

const ENC_OF: Record<ColumnKind, Enc> = {
  boolean: Enc.Bool,
  integer: Enc.Raw,
  number: Enc.Number,
  json: Enc.Json,
  timestamptz: Enc.Timestamptz,
  timestamp: Enc.Timestamp,
  date: Enc.Date,
  array: Enc.Json,
  string: Enc.String,
};

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const TAB = 0x09;
const HEX = Buffer.from('0123456789abcdef');

/** The byte a COPY escape `\x` stands for. */
function unescaped(x: number): number {
  switch (x) {
    case 0x62 /* b */:
      return 0x08;
    case 0x66 /* f */:
      return 0x0c;
    case 0x6e /* n */:
      return 0x0a;
    case 0x72 /* r */:
      return 0x0d;
    case 0x74 /* t */:
      return 0x09;
    case 0x76 /* v */:
      return 0x0b;
    default:
      return x;
  }
}

/**
 * Copies src[s, e) to out at o. A few bytes by a loop; more by one native
 * copy, which costs about what a loop of ten bytes does. (A loop over every
 * plain byte, and Buffer.copy of a range, which makes a view each time, were
 * most of a read's CPU.)
 */
function copyBytes(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  const n = e - s;
  if (n <= 8) for (let k = 0; k < n; k++) out[o + k] = src[s + k]!;
  // Within one buffer (src/read/json-lines.ts copies each line to its output's end): no view to make, whatever the length.
  else if (src === out) out.copyWithin(o, s, e);
  else src.copy(out, o, s, e);
  return o + n;
}

/** A COPY field as a JSON string: quotes, backslashes and control characters escaped as JSON.stringify does. */
function writeString(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  out[o++] = QUOTE;
  // The run with nothing to escape (usually the whole value) is copied at once.
  let i = s;
  while (i < e) {
    const b = src[i]!;
    if (b < 0x20 || b === QUOTE || b === BACKSLASH) break;
    i++;
  }
  o = copyBytes(src, s, i, out, o);
  if (i < e) o = writeEscaped(src, i, e, out, o);
  out[o++] = QUOTE;
  return o;
}

/** The rest of a string value from its first byte to escape on, byte by byte. */
function writeEscaped(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  for (let i = s; i < e; i++) {
    let b = src[i]!;
    if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) {
      out[o++] = b;
      continue;
    }
    if (b === BACKSLASH) b = unescaped(src[++i]!);
    if (b === QUOTE || b === BACKSLASH) {
      out[o++] = BACKSLASH;
      out[o++] = b;
    } else if (b === 0x0a || b === 0x0d || b === 0x09 || b === 0x08 || b === 0x0c) {
      out[o++] = BACKSLASH;
      out[o++] = b === 0x0a ? 0x6e : b === 0x0d ? 0x72 : b === 0x09 ? 0x74 : b === 0x08 ? 0x62 : 0x66;
    } else if (b < 0x20) {
      // \u00XX
      out[o++] = BACKSLASH;
      out[o++] = 0x75;
      out[o++] = 0x30;
      out[o++] = 0x30;
      out[o++] = HEX[b >> 4]!;
      out[o++] = HEX[b & 15]!;
    } else out[o++] = b;
  }
  return o;
}

/** A field whose text is JSON already (json, jsonb, to_json's), `escaped` when it holds a backslash: COPY's escapes undone. */
function writeJson(src: Buffer, s: number, e: number, out: Buffer, o: number, escaped: boolean): number {
  if (!escaped) return copyBytes(src, s, e, out, o);
  for (let i = s; i < e; i++) {
    const b = src[i]!;
    out[o++] = b === BACKSLASH ? unescaped(src[++i]!) : b;
  }
  return o;
}

function writeQuoted(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  out[o++] = QUOTE;
  o = copyBytes(src, s, e, out, o);
  out[o++] = QUOTE;
  return o;
}

/**
 * '2026-01-15 10:30:00.5+00' as to_json writes it: the first space becomes a
 * T, a whole-hour offset gets ':00' (with time zone only); 'infinity' stays,
 * a BC date keeps its suffix.
 */
function writeTimestamp(src: Buffer, s: number, e: number, out: Buffer, o: number, withZone: boolean): number {
  out[o++] = QUOTE;
  // The common form, a four-digit year and no BC: copied, then the space made a T.
  o = e - s >= 19 && src[s + 10] === 0x20 && src[e - 1] !== 0x43 ? isoTime(src, s, e, out, o, withZone) : isoTimeByByte(src, s, e, out, o, withZone);
  out[o++] = QUOTE;
  return o;
}

/** A timestamp whose space is at 10 and that has no BC suffix, in ISO form. */
function isoTime(src: Buffer, s: number, e: number, out: Buffer, o: number, withZone: boolean): number {
  const end = copyBytes(src, s, e, out, o);
  out[o + 10] = 0x54; // T
  const sign = src[e - 3];
  if (withZone && (sign === 0x2b || sign === 0x2d)) {
    out[end] = 0x3a;
    out[end + 1] = 0x30;
    out[end + 2] = 0x30;
    return end + 3;
  }
  return end;
}

/** Any other timestamp text (a year past 9999, BC, infinity), byte by byte. */
function isoTimeByByte(src: Buffer, s: number, e: number, out: Buffer, o: number, withZone: boolean): number {
  const bc = e - s > 3 && src[e - 3] === 0x20 && src[e - 2] === 0x42 && src[e - 1] === 0x43;
  const end = bc ? e - 3 : e;
  let spaced = false;
  for (let i = s; i < end; i++) {
    const b = src[i]!;
    if (b === 0x20 && !spaced) {
      out[o++] = 0x54; // T
      spaced = true;
    } else out[o++] = b;
  }
  const sign = src[end - 3];
  if (withZone && spaced && (sign === 0x2b || sign === 0x2d)) {
    out[o++] = 0x3a;
    out[o++] = 0x30;
    out[o++] = 0x30;
  }
  if (bc) {
    out[o++] = 0x20;
    out[o++] = 0x42;
    out[o++] = 0x43;
  }
  return o;
}

/** numeric and floats: NaN, Infinity and -Infinity are not JSON numbers. */
function writeNumber(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  const c = src[src[s] === 0x2d ? s + 1 : s];
  return c === 0x4e /* N */ || c === 0x49 /* I */ ? writeQuoted(src, s, e, out, o) : copyBytes(src, s, e, out, o);
}

/** A whole buffer (a column's name, a literal): set() is the cheapest native copy, with no view to make. */
function writeBytes(bytes: Buffer, out: Buffer, o: number): number {
  out.set(bytes, o);
  return o + bytes.length;
}

const NULL = Buffer.from('null');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x39;

/** Whether src[s, e) is digits only, at least one and at most nine (a fraction of a second as RFC 3339 allows it here). */
function isFraction(src: Buffer, s: number, e: number): boolean {
  if (e <= s || e - s > 9) return false;
  for (let i = s; i < e; i++) if (!isDigit(src[i])) return false;
  return true;
}

/**
 * A time cursor's value as the envelope's last_modified_at, from the text a
 * built-in timestamptz, timestamp or date column's output function wrote
 * (so its digits and ranges are valid): what versionOf (output.ts) gives for
 * it, written without a string. -1 for any other form (a year past 9999, BC,
 * infinity, an offset with seconds or past 15 hours), which takes versionOf.
 */
export function writeIsoVersion(src: Buffer, s: number, e: number, kind: ColumnKind, out: Buffer, o: number): number {
  const n = e - s;
  if (n < 10 || src[s + 4] !== 0x2d || src[s + 7] !== 0x2d) return -1;
  if (kind === 'date') return n === 10 ? copyBytes(src, s, e, out, o) : -1;
  if (n < 19 || src[s + 10] !== 0x20 || src[s + 13] !== 0x3a || src[s + 16] !== 0x3a) return -1;
  if (kind === 'timestamp') {
    if (n > 19 && (src[s + 19] !== 0x2e || !isFraction(src, s + 20, e))) return -1;
    return isoTime(src, s, e, out, o, false);
  }
  // ±HH (the T and ':00' added) or ±HH:MM, at most 15 hours.
  const zone = src[e - 3] === 0x3a ? e - 6 : e - 3;
  const sign = src[zone];
  if (sign !== 0x2b && sign !== 0x2d) return -1;
  const h = src[zone + 1]!;
  if (!(h === 0x30 || (h === 0x31 && src[zone + 2]! <= 0x35))) return -1;
  if (zone > s + 19 && (src[s + 19] !== 0x2e || !isFraction(src, s + 20, zone))) return -1;
  if (zone < s + 19) return -1;
  return isoTime(src, s, e, out, o, true);
}

/** Splits COPY text lines into fields and writes a row's JSON object. */
export class CopyRowWriter {
  /** Where each field of the current line starts and ends (after split()). */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  private readonly encs: Enc[];
  private readonly names: Buffer[];
  /** Each column's name followed by null: one copy for a NULL field. */
  private readonly nulls: Buffer[];
  /** Bytes a row's JSON may take besides 6 per byte of its line: names, quotes, suffixes. */
  readonly overhead: number;
  /** Where the line last split starts, and its length. */
  lineStart = 0;
  lineBytes = 0;
  /**
   * The first backslash of `bsSrc` at or after the field being written
   * (bsSrc's length when none): found once and kept while the fields before
   * it are written, so that a chunk with few backslashes is searched once,
   * not to its end for every field.
   */
  private bsSrc: Buffer | undefined;
  private bsAt = 0;
  private lineEnd = -1;

  constructor(columns: readonly SourceColumn[], fieldCount: number) {
    this.starts = new Int32Array(fieldCount);
    this.ends = new Int32Array(fieldCount);
    this.encs = columns.map((c) => (c.serverJson ? Enc.Json : ENC_OF[c.kind]));
    this.names = columns.map((c, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`));
    this.nulls = this.names.map((name) => Buffer.concat([name, NULL]));
    this.overhead = this.names.reduce((n, b) => n + b.length + 16, 2);
  }

  /** Finds the fields of the line [s, e); false when it does not have as many as the statement selects. */
  split(src: Buffer, s: number, e: number): boolean {
    const n = this.starts.length;
    this.lineStart = s;
    this.lineBytes = e - s;
    // Lines of one buffer come in order: the backslash found stays valid. Any other line searches again.
    if (src !== this.bsSrc || s <= this.lineEnd) this.bsSrc = undefined;
    this.lineEnd = e;
    let at = s;
    for (let i = 0; i < n; i++) {
      this.starts[i] = at;
      const tab = src.indexOf(TAB, at);
      const end = tab < 0 || tab > e ? e : tab;
      // Too few fields, or a tab after the last one: not a row of this statement.
      if ((end === e) !== (i === n - 1)) return false;
      this.ends[i] = end;
      at = end + 1;
    }
    return true;
  }

  /**
   * The line last split has been copied to `at` of another buffer (whose
   * byte after the line is a backslash): its fields are read there from now on.
   */
  moveLine(at: number): void {
    const delta = at - this.lineStart;
    for (let i = 0; i < this.starts.length; i++) {
      this.starts[i] = this.starts[i]! + delta;
      this.ends[i] = this.ends[i]! + delta;
    }
    this.lineStart = at;
    this.lineEnd = at + this.lineBytes;
    this.bsSrc = undefined;
  }

  /** Whether src[s, e) (a field of the line last split) holds a backslash. */
  private escaped(src: Buffer, s: number, e: number): boolean {
    if (this.bsSrc !== src || this.bsAt < s) {
      const at = src.indexOf(BACKSLASH, s);
      this.bsAt = at < 0 ? src.length : at;
      this.bsSrc = src;
    }
    return this.bsAt < e;
  }

  isNull(src: Buffer, i: number): boolean {
    const s = this.starts[i]!;
    return this.ends[i]! - s === 2 && src[s] === BACKSLASH && src[s + 1] === 0x4e;
  }

  /** A field's value as a string (the cursor and key), COPY's escapes undone. */
  text(src: Buffer, i: number): string {
    const s = this.starts[i]!;
    const e = this.ends[i]!;
    if (!this.escaped(src, s, e)) return src.toString('utf8', s, e);
    const tmp = Buffer.allocUnsafe(e - s);
    const n = writeJson(src, s, e, tmp, 0, true);
    return tmp.toString('utf8', 0, n);
  }

  /** A field as a JSON string (the envelope's id). */
  writeStringField(src: Buffer, i: number, out: Buffer, o: number): number {
    return writeString(src, this.starts[i]!, this.ends[i]!, out, o);
  }

  /** A time field as last_modified_at (writeIsoVersion), or -1. */
  writeVersionField(src: Buffer, i: number, kind: ColumnKind, out: Buffer, o: number): number {
    return writeIsoVersion(src, this.starts[i]!, this.ends[i]!, kind, out, o);
  }

  /** The row's JSON object; `out` must have room for overhead + 6 bytes per byte of the line. */
  writeObject(src: Buffer, out: Buffer, o: number): number {
    const { encs, names, starts, ends } = this;
    for (let i = 0; i < encs.length; i++) {
      const s = starts[i]!;
      const e = ends[i]!;
      if (e - s === 2 && src[s] === BACKSLASH && src[s + 1] === 0x4e) {
        o = writeBytes(this.nulls[i]!, out, o);
        continue;
      }
      o = writeBytes(names[i]!, out, o);
      switch (encs[i]!) {
        case Enc.String:
          o = writeString(src, s, e, out, o);
          break;
        case Enc.Json:
          o = writeJson(src, s, e, out, o, this.escaped(src, s, e));
          break;
        case Enc.Number:
          o = writeNumber(src, s, e, out, o);
          break;
        case Enc.Raw:
          o = copyBytes(src, s, e, out, o);
          break;
        case Enc.Bool:
          o = writeBytes(src[s] === 0x74 ? TRUE : FALSE, out, o);
          break;
        case Enc.Timestamptz:
          o = writeTimestamp(src, s, e, out, o, true);
          break;
        case Enc.Timestamp:
          o = writeTimestamp(src, s, e, out, o, false);
          break;
        case Enc.Date:
          o = writeQuoted(src, s, e, out, o);
          break;
      }
    }
    out[o++] = 0x7d; // }
    return o;
  }
}
