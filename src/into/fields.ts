import type { BatchBuffer } from '../load/copy-writer.js';
import { copyJson, copyJsonText, copyText, type EncodeStats } from '../encode/copy-text.js';
import { valueExcerpt } from '../encode/values.js';
import type { RecordEnvelope } from '../input/envelope.js';
import { textValue } from '../input/json-text.js';
import { quoteIdent as q } from '../sql/ident.js';
import { compile, type Accessor } from './mapping.js';
import type { IntoPlan, PlannedColumn } from './validate.js';

/**
 * A record's mapped values as COPY fields of the own-table staging row
 * (stage.ts): what the string encoder (stage.ts) and the byte encoder
 * (stage-bytes.ts) both use, so that they stage the same text.
 */

function kindOf(v: unknown): string {
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** A JSON array of scalars as a PostgreSQL array literal (then escaped for COPY). */
function arrayLiteral(items: readonly unknown[]): string | undefined {
  const parts: string[] = [];
  for (const item of items) {
    if (item === null || item === undefined) parts.push('NULL');
    else if (typeof item === 'string') parts.push('"' + item.replace(/[\\"]/g, '\\$&') + '"');
    else if (typeof item === 'number' && Number.isFinite(item)) parts.push(String(item));
    else if (typeof item === 'boolean') parts.push(item ? 't' : 'f');
    else return undefined;
  }
  return '{' + parts.join(',') + '}';
}

/** Whether JSON text is a number (it starts like one: valid JSON, so it is one). */
function isNumberText(text: string): boolean {
  const c = text.charCodeAt(0);
  return c === 0x2d || (c >= 0x30 && c <= 0x39);
}

const INTEGER_TEXT = /^-?\d+$/;

/**
 * For a column whose type keeps every digit of a number as written, which
 * numbers land as sent rather than as JSON.parse reads them (12345678901234567890
 * and 1.10000000000000000000001 would be rounded): every number into a text
 * column ("numbers as written") or a numeric one ('all'); into another numeric
 * type (integers, floats, money), an integer written without fraction or
 * exponent ('integer'), so that 1.0 and 1e2 still reach an integer column as 1
 * and 100. Other columns take String() of the parsed number, as before.
 */
export type AsSent = 'all' | 'integer' | undefined;

function numberAsSent(col: PlannedColumn['column']): AsSent {
  if (col.category === 'S' || col.typname === 'numeric') return 'all';
  if (col.category === 'N') return 'integer';
  return undefined;
}

/** A mapped value as COPY text for its column's type, or the reason it cannot be one. */
export function field(c: PlannedColumn, value: unknown, stats: EncodeStats): { ok: true; text: string | null } | { ok: false; reason: string } {
  const col = c.column;
  if (value === null || value === undefined) {
    if (col.notNull) return { ok: false, reason: `null value in column ${q(col.name)} violates its NOT NULL constraint (mapped from ${c.mapping.expr.text})` };
    return { ok: true, text: null };
  }
  const json = col.typname === 'json' || col.typname === 'jsonb';
  if (json) return { ok: true, text: copyJson(value, stats) };
  switch (typeof value) {
    case 'string':
      return { ok: true, text: copyText(value, stats) };
    case 'number':
      return Number.isFinite(value)
        ? { ok: true, text: String(value) }
        : { ok: false, reason: `column ${q(col.name)}: ${c.mapping.expr.text} is not a finite number` };
    case 'boolean':
      return { ok: true, text: col.category === 'B' ? (value ? 't' : 'f') : String(value) };
    default:
      // Objects and arrays: below.
      break;
  }
  if (Array.isArray(value) && col.category === 'A') {
    const literal = arrayLiteral(value);
    if (literal !== undefined) return { ok: true, text: copyText(literal, stats) };
  }
  if (col.category === 'S') return { ok: true, text: copyJson(value, stats) };
  return { ok: false, reason: `column ${q(col.name)} is ${col.display} and ${c.mapping.expr.text} is ${kindOf(value)} ${valueExcerpt(value)}` };
}

export function groupsField(
  plan: IntoPlan,
  from: Accessor,
  record: RecordEnvelope,
  stats: EncodeStats,
): { ok: true; text: string | null } | { ok: false; reason: string } {
  const value = from.value(record);
  // No list at all: the record's groups are left as they are.
  if (value === null || value === undefined) return { ok: true, text: null };
  const names = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' && typeof n !== 'number' && n !== null)) {
    return { ok: false, reason: `groups: ${plan.groups!.from.text} must be a list of group names (strings), got ${kindOf(value)} ${valueExcerpt(value)}` };
  }
  return { ok: true, text: copyText(arrayLiteral(names.filter((n) => n !== null).map(String))!, stats) };
}

/** A staged column, compiled once per run. */
export interface StageColumn {
  c: PlannedColumn;
  get: Accessor;
  jsonb: boolean;
  asSent: AsSent;
  /** The column holds the matching value. */
  match: boolean;
  /** A deletion stages it (the matching value, or the version when a column holds it). */
  keptOnDelete: boolean;
}

export function compileColumns(plan: IntoPlan, columns: PlannedColumn[]): StageColumn[] {
  return columns.map((c) => ({
    c,
    get: compile(c.mapping.expr),
    jsonb: c.column.typname === 'jsonb',
    asSent: numberAsSent(c.column),
    match: c === plan.match,
    keptOnDelete: c === plan.match || c === plan.lastModified,
  }));
}

/** What columnField found: the field, or why the record cannot be staged; the matching value when the column holds it. */
export interface ColumnOutcome {
  ok: boolean;
  text: string | null;
  reason: string;
  /** For the match column: the value the record's key is compared as (undefined when not read, e.g. into jsonb). */
  match: unknown;
}

/**
 * One staged column's COPY field for a record that is not a deletion. The
 * outcome object is reused from call to call: read it before the next.
 */
export function columnField(col: StageColumn, record: RecordEnvelope, stats: EncodeStats): ColumnOutcome {
  const out = outcome;
  out.ok = true;
  out.match = undefined;
  const { c, get, jsonb, asSent } = col;
  // The text as sent of a path into data or raw_data: parsed only as far as the column needs.
  const text = get.text?.(record);
  if (text !== undefined && text !== 'null') {
    // A jsonb value lands as sent, never parsed (jsonb keeps no spelling; json would keep the sender's).
    if (jsonb) {
      out.text = copyJsonText(text, stats) ?? copyJson(textValue(text), stats);
      return out;
    }
    // A number lands with the digits the sender wrote where the column keeps them all (see numberAsSent).
    if (asSent !== undefined && isNumberText(text) && (asSent === 'all' || INTEGER_TEXT.test(text))) {
      out.text = text;
      if (col.match) out.match = textValue(text);
      return out;
    }
  }
  const value = text === undefined ? get.value(record) : text === 'null' ? null : textValue(text);
  if (col.match) {
    if (value === null || value === undefined) {
      out.ok = false;
      out.reason = `the match column ${q(c.column.name)} has no value: ${c.mapping.expr.text} is missing or null in this record`;
      return out;
    }
    out.match = value;
  }
  const f = field(c, value, stats);
  if (f.ok) out.text = f.text;
  else {
    out.ok = false;
    out.reason = f.reason;
  }
  return out;
}
const outcome: ColumnOutcome = { ok: true, text: null, reason: '', match: undefined };

/** What the byte encoder (stage-bytes.ts) shares with the string encoder: the counts kept per batch. */
export interface BatchTally {
  skips: WeakMap<BatchBuffer, number>;
  deletions: WeakMap<BatchBuffer, number>;
}

export function countIn(map: WeakMap<BatchBuffer, number>, buf: BatchBuffer): void {
  map.set(buf, (map.get(buf) ?? 0) + 1);
}

/**
 * The matching value of the record staged last, compared as the text
 * staged: its bytes in the line when the byte encoder copied them (`src`),
 * else its value (undefined when it was not read).
 */
export interface LastMatch {
  src: Buffer | undefined;
  start: number;
  end: number;
  value: unknown;
}

/** A deletion's groups field: it keeps no list. */
export const NO_GROUPS = { ok: true as const, text: null };
