import { isTimestampText } from '../encode/values.js';
import type { Line } from '../input/lines.js';
import { memberText } from '../input/json-text.js';
import { isPlainObject } from './messages.js';

/*
 * Protocol records carry no pgland envelope; this file builds one
 * (docs/protocols.md, "From a message to a landed row"):
 *
 * - id: the key properties' values; one key as its text, several as a JSON
 *   array of the values. A stream without keys gets a random UUID per record.
 * - last_modified_at: the cursor (bookmark) field when the stream has one,
 *   else the message order (OrderClock), so that a later message wins.
 * - is_deleted: the protocol's CDC deletion field is set (keyed streams only).
 * - raw_data: the record, as its sender wrote it.
 * - data: the protocol's version / generation column.
 */

/** The timestamp of a record whose stream has a cursor but the record has no usable value: older than any real one. */
export const FLOOR_TIME = '0001-01-01T00:00:00Z';

/** An instant given in microseconds since 1970 as RFC 3339 text with microseconds. */
export function microsToText(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const frac = micros - ms * 1000;
  return new Date(ms).toISOString().slice(0, 23) + String(frac).padStart(3, '0') + 'Z';
}

/**
 * Timestamps in message order: the run's start plus one microsecond per
 * record. Later records get later times, within a run and (as long as the
 * clock moves forward between runs) across runs, so that on one key the later
 * message wins.
 */
export class OrderClock {
  private next = 0;
  private readonly base: number;

  constructor(startMs: number = Date.now()) {
    this.base = startMs * 1000;
  }

  tick(): string {
    return microsToText(this.base + this.next++);
  }
}

/** The value at a path of nested object keys; only own keys count. */
export function valueAt(record: unknown, path: readonly string[]): unknown {
  let v: unknown = record;
  for (const key of path) {
    if (!isPlainObject(v) || !Object.hasOwn(v, key)) return undefined;
    v = v[key];
  }
  return v;
}

/**
 * The version time of a cursor value: an RFC 3339 timestamp as is; a number
 * (an id, an epoch) as 1970-01-01 plus that many microseconds, so that
 * numeric cursors order as numbers; anything else (missing, null, other text)
 * as FLOOR_TIME, so that it never replaces a version that has a cursor.
 */
export function cursorTime(value: unknown): string {
  if (typeof value === 'string' && isTimestampText(value)) return value;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    return microsToText(Math.min(Math.floor(value), Number.MAX_SAFE_INTEGER));
  }
  return FLOOR_TIME;
}

/** The exact text of the value at `path` in a record's JSON text. */
function textAt(recordText: string | undefined, path: readonly string[]): string | undefined {
  let t = recordText;
  for (const key of path) {
    if (t === undefined) return undefined;
    t = memberText(t, key);
  }
  return t;
}

/** One key value as text: a number JSON.parse may have rounded is taken as the sender wrote it. */
function keyPart(value: unknown, recordText: string | undefined, path: readonly string[], inArray: boolean): string {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    const exact = textAt(recordText, path);
    if (exact !== undefined) return exact;
  }
  if (typeof value === 'string') return inArray ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/**
 * The landed id of a record: the key's value as text for one key property,
 * a JSON array of the values for several (`[42,"eu"]`). Undefined, with the
 * key that is missing, when a key value is missing or null.
 */
export function recordId(
  record: Record<string, unknown>,
  recordText: string | undefined,
  keys: readonly (readonly string[])[],
): { id: string } | { missing: string; isNull: boolean } {
  const values = keys.map((k) => valueAt(record, k));
  const missing = values.findIndex((v) => v === undefined || v === null);
  if (missing !== -1) return { missing: keys[missing]!.join('.'), isNull: values[missing] === null };
  if (keys.length === 1) return { id: keyPart(values[0], recordText, keys[0]!, false) };
  return { id: '[' + values.map((v, i) => keyPart(v, recordText, keys[i]!, true)).join(',') + ']' };
}

/** Whether a CDC deletion field (`_sdc_deleted_at`, `_ab_cdc_deleted_at`) says the record was deleted. */
export function isDeletedBy(record: Record<string, unknown>, field: string | undefined): boolean {
  if (!field || !Object.hasOwn(record, field)) return false;
  const v = record[field];
  return v !== null && v !== undefined && v !== '' && v !== false;
}

export interface EnvelopeParts {
  /** Undefined when a key value is missing: the loader rejects the line, and `problem` says why. */
  id: string | undefined;
  lastModifiedAt: string;
  isDeleted: boolean;
  /** The column that carries the protocol's version or generation, and its value. */
  generationColumn: string;
  generation: number | null;
  /** More columns taken from the envelope's data (Airbyte's `_airbyte_meta`). */
  meta?: Record<string, unknown>;
  record: Record<string, unknown>;
  /** The record's JSON text as sent, when known. */
  recordText: string | undefined;
  /** Only on a line the loader will reject: why, and the protocol line it came from. */
  problem?: string;
  messageLine?: number;
}

/** One NDJSON envelope line (docs/input.md); raw_data last, as the record's own text. */
export function envelopeLine(p: EnvelopeParts): string {
  const head: Record<string, unknown> = {};
  if (p.id !== undefined) head.id = p.id;
  head.last_modified_at = p.lastModifiedAt;
  if (p.isDeleted) head.is_deleted = true;
  head.data = { [p.generationColumn]: p.generation, ...p.meta };
  if (p.problem !== undefined) {
    head.problem = p.problem;
    head.message_line = p.messageLine;
  }
  const raw = p.recordText ?? JSON.stringify(p.record);
  return JSON.stringify(head).slice(0, -1) + ',"raw_data":' + raw + '}';
}

/**
 * The envelope of a RECORD that could not be read (longer than
 * max_record_bytes): no id, so the loader keeps it as a reject, with why, the
 * message's line, and its first bytes as raw_data.
 */
export function rejectedRecord(line: Line, problem: string, generationColumn: string, clock: OrderClock): string {
  return envelopeLine({
    id: undefined,
    lastModifiedAt: clock.tick(),
    isDeleted: false,
    generationColumn,
    generation: null,
    record: {},
    recordText: JSON.stringify(line.text),
    problem,
    messageLine: line.lineNumber,
  });
}
