import { copyJson, copyJsonText, copyText, type EncodeStats } from './copy-text.js';
import { closingQuote } from '../input/json-text.js';
import { firstNonZero, NOT_A_NUMBER, numericProblem } from './numeric.js';

/** The PostgreSQL types a landed column can have. */
export type ColumnType = 'text' | 'boolean' | 'bigint' | 'numeric' | 'double precision' | 'timestamptz' | 'date' | 'jsonb';

/** The JSON type a jsonb column's values must have; a column without one takes any JSON. */
export type JsonShape = 'array' | 'object';

/** A value that fits its column, encoded for COPY; or the reason it does not. */
export type Converted = { ok: true; field: string | null } | { ok: false; reason: string };

/*
 * The rule of this file: whatever text convert() returns for a column, the
 * server must accept for that column's type. One value the server refuses
 * fails the whole COPY, and with it the whole batch; so every check here is at
 * least as strict as PostgreSQL's input function, never looser. Stricter only
 * costs a problem row (the value stays in the raw payload).
 */

const NULL_FIELD: Converted = { ok: true, field: null };
const TRUE_FIELD: Converted = { ok: true, field: 't' };
const FALSE_FIELD: Converted = { ok: true, field: 'f' };

const INTEGER_TEXT = /^[+-]?\d+$/;

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month]!;
}

// RFC 3339, plus the forms PostgreSQL reads the same way: a space or lower-case
// t/z, no seconds, an offset without a colon or without minutes. An offset is
// only allowed after a time: PostgreSQL refuses "2026-01-15-05". Without an
// offset a time is taken as UTC (pgland's sessions run with TimeZone=UTC).
// The fields have fixed widths, so the pattern cannot backtrack. Every range
// but the day-of-month is in the pattern itself: one test() call on the hot
// path (3 to 4 per record), no captures; the exact day is checked only past
// the 28th.
const TIMESTAMP_CHECK =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[Tt ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:[Zz]|[+-](?:0\d|1[0-5])(?::?[0-5]\d)?)?)?$/;

/** Whether text is a date or timestamp that PostgreSQL will accept as written (see TIMESTAMP_CHECK). */
export function isTimestampText(text: string): boolean {
  if (text.length > 40 || !TIMESTAMP_CHECK.test(text)) return false;
  if (text.startsWith('0000')) return false; // there is no year 0
  const day = (text.charCodeAt(8) - 48) * 10 + (text.charCodeAt(9) - 48);
  if (day <= 28) return true;
  const year = Number(text.slice(0, 4));
  const month = (text.charCodeAt(5) - 48) * 10 + (text.charCodeAt(6) - 48);
  return day <= daysInMonth(year, month);
}

/**
 * isTimestampText of the bytes b[start, end) (ASCII text read as latin1).
 * The common forms, YYYY-MM-DDTHH:MM:SS[.fraction] then Z or an offset
 * ±HH:MM (what pgland read writes), are checked on the bytes (the same ranges as TIMESTAMP_CHECK); any other form goes to
 * isTimestampText.
 */
export function isTimestampBytes(b: Uint8Array, start: number, end: number): boolean {
  const n = end - start;
  if (n >= 20 && n <= 35 && b[start + 10] === 0x54) {
    const zone = b[end - 1] === 0x5a ? end - 1 : offsetStart(b, start, end);
    if (zone !== -1 && isCommonTimestamp(b, start, zone)) return true;
  }
  return isTimestampText(Buffer.from(b.buffer, b.byteOffset + start, n).toString('latin1'));
}

/** Where an offset ±HH:MM (HH at most 15, as TIMESTAMP_CHECK) ends b[start, end), or -1. */
function offsetStart(b: Uint8Array, start: number, end: number): number {
  const at = end - 6;
  if (at < start) return -1;
  const sign = b[at];
  if ((sign !== 0x2b && sign !== 0x2d) || b[end - 3] !== 0x3a) return -1;
  const hours = twoDigits(b, at + 1);
  const minutes = twoDigits(b, end - 2);
  return hours >= 0 && hours <= 15 && minutes >= 0 && minutes <= 59 ? at : -1;
}

/** The two-digit number at b[i], or -1 when either byte is not a digit. */
function twoDigits(b: Uint8Array, i: number): number {
  const hi = b[i]! - 48;
  const lo = b[i + 1]! - 48;
  return hi >= 0 && hi <= 9 && lo >= 0 && lo <= 9 ? hi * 10 + lo : -1;
}

/** YYYY-MM-DDTHH:MM:SS[.d{1,9}] before the zone at `zone`, a day the month has, year not 0 (T and the zone are checked by the caller). */
function isCommonTimestamp(b: Uint8Array, s: number, zone: number): boolean {
  const century = twoDigits(b, s);
  const year = twoDigits(b, s + 2);
  const month = twoDigits(b, s + 5);
  const day = twoDigits(b, s + 8);
  const hour = twoDigits(b, s + 11);
  const minute = twoDigits(b, s + 14);
  const second = twoDigits(b, s + 17);
  if (century < 0 || year < 0 || century + year === 0) return false;
  if (!(month >= 1 && month <= 12 && day >= 1 && hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59)) return false;
  // The 29th to the 31st, a tenth of all dates, are checked here too: on the text they cost a string and a regular expression each.
  if (day > 28 && day > daysInMonth(century * 100 + year, month)) return false;
  if (b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a) return false;
  let i = s + 19;
  if (i === zone) return true;
  // A fraction of 1 to 9 digits.
  if (b[i] !== 0x2e || zone - i < 2 || zone - i > 10) return false;
  for (i++; i < zone; i++) if (!(b[i]! >= 0x30 && b[i]! <= 0x39)) return false;
  return true;
}

/** Why numeric text does not fit double precision, or null when it does. */
function doubleProblem(text: string): string | null {
  const problem = numericProblem(text);
  if (problem) return problem;
  const n = Number(text);
  if (!Number.isFinite(n)) return 'is out of range for double precision';
  // PostgreSQL refuses a non-zero number that underflows to 0 (1e-400).
  if (n === 0 && /[1-9]/.test(text.replace(/[eE].*$/, ''))) return 'is out of range for double precision';
  return null;
}

/** Why integer text does not fit bigint, or null when it does. */
function bigintProblem(text: string): string | null {
  if (!INTEGER_TEXT.test(text)) return NOT_A_NUMBER;
  // Bound the work before BigInt(): at most 19 significant digits can fit.
  const start = text.charCodeAt(0) === 43 || text.charCodeAt(0) === 45 ? 1 : 0;
  const digits = text.length - start - firstNonZero(start ? text.slice(start) : text);
  if (digits > 19) return 'is out of range for bigint';
  const n = BigInt(text);
  return n < INT8_MIN || n > INT8_MAX ? 'is out of range for bigint' : null;
}

function typeName(value: unknown): string {
  return Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function mismatch(expected: string, value: unknown): Converted {
  return { ok: false, reason: `expected ${expected}, got ${typeName(value)} ${valueExcerpt(value)}` };
}

function outOfRange(what: string, value: unknown, problem: string): Converted {
  return { ok: false, reason: `${what} ${valueExcerpt(value)} ${problem}` };
}

// JSON.parse turns 1e400 into Infinity; the number as written is lost (the raw
// payload holds null for it), so it cannot land anywhere as written.
const NOT_FINITE = 'is beyond the range of a JSON number (a 64-bit double) and was read as Infinity';

/**
 * Converts one JSON value to the COPY text of a column of the given type. A
 * value that does not fit is not coerced to something else: the caller lands
 * NULL in the column, keeps the value in the raw payload and records a problem.
 *
 * Accepted (docs/landed-tables.md has the table): for text, strings, and
 * numbers and booleans as written; for boolean, true/false and the strings
 * "true"/"false"; for bigint and numeric, numbers and numeric strings; for
 * timestamptz and date, RFC 3339 strings. An empty string in a boolean,
 * number, date or timestamp column is no value: NULL, without a problem
 * (providers send "" for a property that is not set).
 *
 * `exact` is the value's JSON text as sent, for a number, an object or an
 * array: numbers then land with every digit the sender wrote (JSON.parse
 * rounds 12345678901234567890 and 1.10000000000000000000001), and a number
 * that does not fit its column is a problem, never a rounded value.
 *
 * This runs once per typed value per record: no allocation on the common paths.
 */
export function convert(value: unknown, type: ColumnType, stats: EncodeStats, shape?: JsonShape, exact?: string): Converted {
  if (value === null || value === undefined) return NULL_FIELD;
  switch (type) {
    case 'text':
      if (typeof value === 'string') return { ok: true, field: copyText(value, stats) };
      if (typeof value === 'boolean') return value ? { ok: true, field: 'true' } : { ok: true, field: 'false' };
      if (typeof value === 'number') {
        if (exact !== undefined) return { ok: true, field: exact };
        return Number.isFinite(value) ? { ok: true, field: String(value) } : outOfRange('number', value, NOT_FINITE);
      }
      return mismatch('a string', value);
    case 'jsonb':
      if (shape === 'array' && !Array.isArray(value)) return mismatch('a JSON array', value);
      if (shape === 'object' && (typeof value !== 'object' || Array.isArray(value))) return mismatch('a JSON object', value);
      return { ok: true, field: (exact === undefined ? undefined : copyJsonText(exact, stats)) ?? copyJson(value, stats) };
    case 'boolean':
      if (typeof value === 'boolean') return value ? TRUE_FIELD : FALSE_FIELD;
      if (typeof value === 'string') {
        if (value === '') return NULL_FIELD;
        if (value.length <= 5) {
          const lower = value.toLowerCase();
          if (lower === 'true') return TRUE_FIELD;
          if (lower === 'false') return FALSE_FIELD;
        }
      }
      return mismatch('a boolean', value);
    case 'bigint':
      if (typeof value === 'number') {
        // The digits as sent: an id beyond 2^53 fits bigint exactly (1.0 and 1e3 take the parsed path).
        if (exact !== undefined && INTEGER_TEXT.test(exact)) {
          const problem = bigintProblem(exact);
          return problem ? outOfRange('integer', exact, problem) : { ok: true, field: exact };
        }
        if (!Number.isFinite(value)) return outOfRange('number', value, NOT_FINITE);
        if (!Number.isInteger(value)) return mismatch('an integer', value);
        // Past 2^53 a JSON number has already been rounded by JSON.parse: the digits are not the sender's.
        if (!Number.isSafeInteger(value)) return outOfRange('integer', value, 'is beyond the exact range of a JSON number; send it as a string');
        return { ok: true, field: String(value) };
      }
      if (typeof value === 'string') {
        if (value === '') return NULL_FIELD;
        const problem = bigintProblem(value);
        if (problem === NOT_A_NUMBER) return mismatch('an integer', value);
        return problem ? outOfRange('value', value, problem) : { ok: true, field: value };
      }
      return mismatch('an integer', value);
    case 'numeric':
    case 'double precision':
      if (typeof value === 'number') {
        if (exact !== undefined) {
          const problem = type === 'numeric' ? numericProblem(exact) : doubleProblem(exact);
          return problem ? outOfRange('number', exact, problem) : { ok: true, field: exact };
        }
        return Number.isFinite(value) ? { ok: true, field: String(value) } : outOfRange('number', value, NOT_FINITE);
      }
      if (typeof value === 'string') {
        if (value === '') return NULL_FIELD;
        const problem = type === 'numeric' ? numericProblem(value) : doubleProblem(value);
        if (problem === NOT_A_NUMBER) return mismatch('a number', value);
        return problem ? outOfRange('value', value, problem) : { ok: true, field: value };
      }
      return mismatch('a number', value);
    case 'timestamptz':
    case 'date':
      if (typeof value === 'string') {
        if (value === '') return NULL_FIELD;
        if (isTimestampText(value)) return { ok: true, field: value };
        return outOfRange('value', value, `is not a valid RFC 3339 ${type === 'date' ? 'date' : 'timestamp'} (e.g. 2026-01-15T10:30:00Z)`);
      }
      return mismatch(type === 'date' ? 'a date string' : 'a timestamp string', value);
  }
}

/**
 * How deep a line's JSON may nest. JSON.parse takes any depth, but
 * JSON.stringify (which encodes jsonb for COPY) overflows the stack past about
 * 4,000 levels, and the server's jsonb parser past about 10,000 with the
 * default max_stack_depth: either would fail the batch. 2,000 is far beyond
 * any real payload.
 */
export const MAX_JSON_DEPTH = 2000;

/**
 * Whether valid JSON text nests deeper than `max` arrays and objects. A text
 * shorter than 2 × max characters cannot (every level takes an opening and a
 * closing bracket), so typical lines cost one comparison.
 */
export function jsonNestsDeeper(text: string, max: number = MAX_JSON_DEPTH): boolean {
  if (text.length <= 2 * max) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/*
 * A row must fit in one 8 kB page: at most 8160 bytes once TOAST has moved every
 * value longer than 24 bytes out of line (leaving an 18-byte pointer). A value
 * of up to 24 bytes cannot be moved, so a record with hundreds of short values
 * (a HubSpot contact has 400+ properties) can be too wide for one row, and
 * "row is too big" fails the COPY. TYPED_ROW_BUDGET is what is left for the
 * typed columns after the row header (with a null bitmap for 1,600 columns)
 * and pgland's own columns, each counted at its worst.
 */
export const TYPED_ROW_BUDGET = 8160 - 224 - 200;

/**
 * The most bytes a converted (non-null) field can take inside a row after
 * TOAST, alignment padding included. Cheap: no measuring of long values.
 */
export function inlineBytes(field: string, type: ColumnType): number {
  return inlineWidth(field.length, type);
}

/** inlineBytes of a field `units` UTF-16 units long (only text and numeric depend on it). */
export function inlineWidth(units: number, type: ColumnType): number {
  switch (type) {
    case 'boolean':
      return 1;
    case 'date':
      return 7;
    case 'bigint':
    case 'double precision':
    case 'timestamptz':
      return 15;
    case 'jsonb':
      return 24;
    default:
      // text and numeric: a 1-byte header (2 more for numeric) and at most 3 bytes per UTF-16 unit.
      return units > 6 ? 24 : 3 + 3 * units;
  }
}

/** The problem reason for a value left out because the record is too wide for one row. */
export const TOO_WIDE =
  'the record has more values than fit in one PostgreSQL row (8 kB, after TOAST); the last typed columns land as NULL, the values are in the raw payload';

const EXCERPT_CHARS = 60;

/**
 * A short, single-line sketch of a value for a problem row: strings as they
 * are, anything else as JSON, cut to 60 characters. It walks only as much of
 * the value as it shows, so a 10 MB string or an array nested 10,000 deep
 * costs next to nothing (JSON.stringify would copy it all, or overflow the
 * stack).
 */
export function valueExcerpt(value: unknown): string {
  const text = typeof value === 'string' ? value.slice(0, EXCERPT_CHARS + 1) : sketch(value, EXCERPT_CHARS + 1);
  if (text.length <= EXCERPT_CHARS) return text;
  // Do not cut a surrogate pair in half.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(EXCERPT_CHARS - 4)) ? EXCERPT_CHARS - 4 : EXCERPT_CHARS - 3;
  return text.slice(0, end) + '...';
}

/** JSON text of a value, stopped once it is longer than `budget` characters. */
function sketch(value: unknown, budget: number): string {
  if (typeof value === 'string') return JSON.stringify(value.length > budget ? value.slice(0, budget) : value);
  if (typeof value !== 'object' || value === null) return String(value);
  let out = Array.isArray(value) ? '[' : '{';
  let first = true;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (out.length > budget) return out;
      out += (first ? '' : ',') + sketch(item, budget - out.length);
      first = false;
    }
    return out + ']';
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (out.length > budget) return out;
    out += (first ? '' : ',') + JSON.stringify(key.length > budget ? key.slice(0, budget) : key) + ':';
    out += sketch((value as Record<string, unknown>)[key], budget - out.length);
    first = false;
  }
  return out + '}';
}
