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

/** A COPY field as a JSON string: quotes, backslashes and control characters escaped as JSON.stringify does. */
function writeString(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  out[o++] = QUOTE;
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
  out[o++] = QUOTE;
  return o;
}

/** A field whose text is JSON already (json, jsonb, to_json's): COPY's escapes undone. */
function writeJson(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  const first = src.indexOf(BACKSLASH, s);
  if (first < 0 || first >= e) {
    src.copy(out, o, s, e);
    return o + (e - s);
  }
  for (let i = s; i < e; i++) {
    const b = src[i]!;
    out[o++] = b === BACKSLASH ? unescaped(src[++i]!) : b;
  }
  return o;
}

function writeRaw(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  for (let i = s; i < e; i++) out[o++] = src[i]!;
  return o;
}

function writeQuoted(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  out[o++] = QUOTE;
  o = writeRaw(src, s, e, out, o);
  out[o++] = QUOTE;
  return o;
}

/**
 * '2026-01-15 10:30:00.5+00' as to_json writes it: the first space becomes a
 * T, a whole-hour offset gets ':00' (with time zone only); 'infinity' stays,
 * a BC date keeps its suffix.
 */
function writeTimestamp(src: Buffer, s: number, e: number, out: Buffer, o: number, withZone: boolean): number {
  const bc = e - s > 3 && src[e - 3] === 0x20 && src[e - 2] === 0x42 && src[e - 1] === 0x43;
  const end = bc ? e - 3 : e;
  out[o++] = QUOTE;
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
  out[o++] = QUOTE;
  return o;
}

/** numeric and floats: NaN, Infinity and -Infinity are not JSON numbers. */
function writeNumber(src: Buffer, s: number, e: number, out: Buffer, o: number): number {
  const c = src[src[s] === 0x2d ? s + 1 : s];
  return c === 0x4e /* N */ || c === 0x49 /* I */ ? writeQuoted(src, s, e, out, o) : writeRaw(src, s, e, out, o);
}

function writeBytes(bytes: Buffer, out: Buffer, o: number): number {
  bytes.copy(out, o);
  return o + bytes.length;
}

const NULL = Buffer.from('null');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** Splits COPY text lines into fields and writes a row's JSON object. */
export class CopyRowWriter {
  /** Where each field of the current line starts and ends (after split()). */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  private readonly encs: Enc[];
  private readonly names: Buffer[];
  /** Bytes a row's JSON may take besides 6 per byte of its line: names, quotes, suffixes. */
  readonly overhead: number;
  /** The length of the line last split. */
  lineBytes = 0;

  constructor(columns: readonly SourceColumn[], fieldCount: number) {
    this.starts = new Int32Array(fieldCount);
    this.ends = new Int32Array(fieldCount);
    this.encs = columns.map((c) => (c.serverJson ? Enc.Json : ENC_OF[c.kind]));
    this.names = columns.map((c, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`));
    this.overhead = this.names.reduce((n, b) => n + b.length + 16, 2);
  }

  /** Finds the fields of the line [s, e); false when it does not have as many as the statement selects. */
  split(src: Buffer, s: number, e: number): boolean {
    const n = this.starts.length;
    this.lineBytes = e - s;
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

  isNull(src: Buffer, i: number): boolean {
    const s = this.starts[i]!;
    return this.ends[i]! - s === 2 && src[s] === BACKSLASH && src[s + 1] === 0x4e;
  }

  /** A field's value as a string (the cursor and key), COPY's escapes undone. */
  text(src: Buffer, i: number): string {
    const s = this.starts[i]!;
    const e = this.ends[i]!;
    const first = src.indexOf(BACKSLASH, s);
    if (first < 0 || first >= e) return src.toString('utf8', s, e);
    const tmp = Buffer.allocUnsafe(e - s);
    const n = writeJson(src, s, e, tmp, 0);
    return tmp.toString('utf8', 0, n);
  }

  /** A field as a JSON string (the envelope's id). */
  writeStringField(src: Buffer, i: number, out: Buffer, o: number): number {
    return writeString(src, this.starts[i]!, this.ends[i]!, out, o);
  }

  /** The row's JSON object; `out` must have room for overhead + 6 bytes per byte of the line. */
  writeObject(src: Buffer, out: Buffer, o: number): number {
    const { encs, names, starts, ends } = this;
    for (let i = 0; i < encs.length; i++) {
      o = writeBytes(names[i]!, out, o);
      const s = starts[i]!;
      const e = ends[i]!;
      if (e - s === 2 && src[s] === BACKSLASH && src[s + 1] === 0x4e) {
        o = writeBytes(NULL, out, o);
        continue;
      }
      switch (encs[i]!) {
        case Enc.String:
          o = writeString(src, s, e, out, o);
          break;
        case Enc.Json:
          o = writeJson(src, s, e, out, o);
          break;
        case Enc.Number:
          o = writeNumber(src, s, e, out, o);
          break;
        case Enc.Raw:
          o = writeRaw(src, s, e, out, o);
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
