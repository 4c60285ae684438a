import { copyJson, copyText, type EncodeStats } from './copy-text.js';

/** The PostgreSQL types a landed column can have. */
export type ColumnType = 'text' | 'boolean' | 'bigint' | 'numeric' | 'double precision' | 'timestamptz' | 'date' | 'jsonb';

/** A value that fits its column, encoded for COPY; or the reason it does not. */
export type Converted = { ok: true; field: string | null } | { ok: false; reason: string };

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMERIC_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// RFC 3339 and the ISO 8601 forms PostgreSQL reads the same way. Without an
// offset a time is taken as UTC (pgland's sessions run with TimeZone=UTC).
const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?(?:[Zz]|[+-](\d{2})(?::?(\d{2}))?)?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Whether text is a date or timestamp that PostgreSQL will accept as written. */
export function isTimestampText(text: string): boolean {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return false;
  const [, y, mo, d, h, mi, s, , oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (h !== undefined && Number(h) > 23) return false;
  if (mi !== undefined && Number(mi) > 59) return false;
  if (s !== undefined && Number(s) > 59) return false;
  if (oh !== undefined && Number(oh) > 15) return false;
  if (om !== undefined && Number(om) > 59) return false;
  return true;
}

function numericFits(text: string): boolean {
  const m = NUMERIC_TEXT.exec(text);
  if (!m) return false;
  const mantissa = m[1]!;
  const exp = m[2] ? Number(m[2].slice(1)) : 0;
  const [intPart = '', frac = ''] = mantissa.split('.');
  // PostgreSQL's numeric holds up to 131072 digits before the point and 16383 after.
  return intPart.replace(/^0+/, '').length + exp <= 131072 && frac.length - exp <= 16383;
}

function excerpt(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}

function typeName(value: unknown): string {
  return Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
}

/**
 * Converts one JSON value to the COPY text of a column of the given type. A
 * value that does not fit is not coerced to something else: the caller lands
 * NULL in the column, keeps the value in the raw payload and records a problem.
 */
export function convert(value: unknown, type: ColumnType, stats: EncodeStats): Converted {
  if (value === null || value === undefined) return { ok: true, field: null };
  switch (type) {
    case 'jsonb':
      return { ok: true, field: copyJson(value, stats) };
    case 'text':
      if (typeof value === 'string') return { ok: true, field: copyText(value, stats) };
      if (typeof value === 'number' || typeof value === 'boolean') return { ok: true, field: String(value) };
      return { ok: false, reason: `expected a string, got ${typeName(value)}` };
    case 'boolean':
      if (typeof value === 'boolean') return { ok: true, field: value ? 't' : 'f' };
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) {
        return { ok: true, field: value.toLowerCase() === 'true' ? 't' : 'f' };
      }
      return { ok: false, reason: `expected a boolean, got ${typeName(value)} ${excerpt(value)}` };
    case 'bigint': {
      let text: string;
      if (typeof value === 'number') {
        if (!Number.isInteger(value)) return { ok: false, reason: `expected an integer, got ${value}` };
        if (!Number.isSafeInteger(value)) return { ok: false, reason: `integer ${value} is beyond exact JSON precision` };
        return { ok: true, field: String(value) };
      }
      if (typeof value !== 'string' || !INTEGER_TEXT.test(value)) {
        return { ok: false, reason: `expected an integer, got ${typeName(value)} ${excerpt(value)}` };
      }
      text = value;
      const n = BigInt(text);
      if (n < INT8_MIN || n > INT8_MAX) return { ok: false, reason: `integer ${excerpt(text)} is out of range for bigint` };
      return { ok: true, field: n.toString() };
    }
    case 'numeric':
    case 'double precision': {
      if (typeof value === 'number') return { ok: true, field: String(value) };
      if (typeof value === 'string' && numericFits(value)) {
        if (type === 'double precision' && !Number.isFinite(Number(value))) {
          return { ok: false, reason: `number ${excerpt(value)} is out of range for double precision` };
        }
        return { ok: true, field: value };
      }
      return { ok: false, reason: `expected a number, got ${typeName(value)} ${excerpt(value)}` };
    }
    case 'timestamptz':
    case 'date':
      if (typeof value === 'string' && isTimestampText(value)) return { ok: true, field: value };
      return { ok: false, reason: `expected an RFC 3339 ${type === 'date' ? 'date' : 'timestamp'}, got ${typeName(value)} ${excerpt(value)}` };
  }
}

export { excerpt as valueExcerpt };
