import type { BatchBuffer } from '../load/copy-writer.js';
import { copyJson, copyJsonText, copyRow, copyText, type EncodeStats } from '../encode/copy-text.js';
import { valueExcerpt } from '../encode/values.js';
import { MAX_REJECT_TEXT, type RecordEnvelope, type Reject } from '../input/envelope.js';
import { quoteIdent as q } from '../sql/ident.js';
import { createUnloggedStageSql } from '../load/pipelined.js';
import { compile, type Accessor } from './mapping.js';
import { textValue } from '../input/json-text.js';
import type { IntoPlan, PlannedColumn } from './validate.js';

/**
 * The staging table of a load into an own table: the record's line, id,
 * version and deletion flag, its group names, then each mapped value as text.
 * Values are cast to the column's type by the merge, not by COPY: a value the
 * type refuses then fails one record (found by bisection, merge-into.ts), not
 * the COPY of the whole batch.
 */
export const INTO_STAGE = '_pgland_into';
export const LINE = '_pgland_line';
export const RECORD_ID = '_pgland_id';
export const VERSION = '_pgland_lm';
export const DELETED = '_pgland_deleted';
export const GROUPS = '_pgland_groups';

function stageColumns(plan: IntoPlan): string[] {
  const cols = [`${q(LINE)} bigint`, `${q(RECORD_ID)} text`, `${q(VERSION)} timestamptz`, `${q(DELETED)} boolean`];
  if (plan.groups) cols.push(`${q(GROUPS)} text[]`);
  for (const c of staged(plan)) cols.push(`${q(c.stage!)} text`);
  return cols;
}

/** The connection's staging table of a batch landed on its own, dropped at its commit. */
export const TEMP_STAGE = q(INTO_STAGE);

export function createIntoStageSql(plan: IntoPlan): string {
  return `CREATE TEMP TABLE ${TEMP_STAGE} (${stageColumns(plan).join(', ')}) ON COMMIT DROP`;
}

/**
 * One of a pipelined run's two staging tables (load/pipelined.ts): in
 * pgland's schema, never the customer's; staged on the helper connection,
 * merged on the run's.
 */
export function createIntoPipeStageSql(plan: IntoPlan, table: string): string {
  return createUnloggedStageSql(table, stageColumns(plan));
}

export function copyIntoStageSql(table = TEMP_STAGE): string {
  return `COPY ${table} FROM STDIN`;
}

export function staged(plan: IntoPlan): PlannedColumn[] {
  return plan.columns.filter((c) => c.stage !== undefined);
}

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
 * column ("numbers as written") or a numeric one; into another numeric type
 * (integers, floats, money), an integer written without fraction or exponent,
 * so that 1.0 and 1e2 still reach an integer column as 1 and 100. Other
 * columns take String() of the parsed number, as before.
 */
function numberAsSent(col: PlannedColumn['column']): ((text: string) => boolean) | undefined {
  if (col.category === 'S' || col.typname === 'numeric') return () => true;
  if (col.category === 'N') return (text) => INTEGER_TEXT.test(text);
  return undefined;
}

/** A mapped value as COPY text for its column's type, or the reason it cannot be one. */
function field(c: PlannedColumn, value: unknown, stats: EncodeStats): { ok: true; text: string | null } | { ok: false; reason: string } {
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

function groupsField(
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

function reject(buf: BatchBuffer, record: RecordEnvelope, reason: string): '' {
  const raw = JSON.stringify({
    id: record.id,
    last_modified_at: record.lastModifiedAt,
    is_deleted: record.isDeleted,
    raw_data: record.rawData,
    data: record.data,
  });
  buf.rejects.push({
    lineNumber: record.lineNumber,
    recordId: record.id,
    reason,
    rawText: raw.length > MAX_REJECT_TEXT ? raw.slice(0, MAX_REJECT_TEXT) : raw,
  } satisfies Reject);
  return '';
}

/**
 * The row encoder given to the batch buffer (load/copy-writer.ts): one
 * staging row per record, or '' when the record is not staged: rejected here
 * (a value of the wrong shape, a null into NOT NULL, no matching value), with
 * why; or a deletion the mode skips, counted per batch by `skipped`.
 */
export function intoRowEncoder(plan: IntoPlan): {
  encode: (record: RecordEnvelope, buf: BatchBuffer, lead: string) => string;
  skipped: (buf: BatchBuffer) => number;
  /** The matching value of the record encoded last (undefined before any, or when it was not read). */
  lastMatch: () => unknown;
  /** How many records of the batch are deletions the mode applies (upsert, sync): none, no DELETE in the merge. */
  deletions: (buf: BatchBuffer) => number;
} {
  const cols = staged(plan).map((c) => ({
    c,
    get: compile(c.mapping.expr),
    jsonb: c.column.typname === 'jsonb',
    asSent: numberAsSent(c.column),
  }));
  const groupsFrom = plan.groups ? compile(plan.groups.from) : undefined;
  const skips = new WeakMap<BatchBuffer, number>();
  const deletions = new WeakMap<BatchBuffer, number>();
  let lastMatch: unknown;
  const encode = (record: RecordEnvelope, buf: BatchBuffer, lead: string): string => {
    lastMatch = undefined;
    if (record.isDeleted && plan.skipDeleted) {
      skips.set(buf, (skips.get(buf) ?? 0) + 1);
      return '';
    }
    const fields: (string | null)[] = [copyText(record.id, buf.stats), record.lastModifiedAt, record.isDeleted ? 't' : 'f'];
    const deleting = plan.action === 'delete' || (record.isDeleted && plan.applyDeletes);
    // Counted before the record is encoded: one rejected below only makes the merge look for a deletion in vain.
    if (record.isDeleted && plan.applyDeletes) deletions.set(buf, (deletions.get(buf) ?? 0) + 1);
    if (plan.groups) {
      const g = deleting ? { ok: true as const, text: null } : groupsField(plan, groupsFrom!, record, buf.stats);
      if (!g.ok) return reject(buf, record, g.reason);
      fields.push(g.text);
    }
    for (const { c, get, jsonb, asSent } of cols) {
      // A deletion needs only the matching value, and the version when a column holds it.
      if (deleting && c !== plan.match && c !== plan.lastModified) {
        fields.push(null);
        continue;
      }
      // The text as sent of a path into data or raw_data: parsed only as far as the column needs.
      const text = get.text?.(record);
      if (text !== undefined && text !== 'null') {
        // A jsonb value lands as sent, never parsed (jsonb keeps no spelling; json would keep the sender's).
        if (jsonb) {
          fields.push(copyJsonText(text, buf.stats) ?? copyJson(textValue(text), buf.stats));
          continue;
        }
        // A number lands with the digits the sender wrote where the column keeps them all (see numberAsSent).
        if (asSent && isNumberText(text) && asSent(text)) {
          fields.push(text);
          if (c === plan.match) lastMatch = textValue(text);
          continue;
        }
      }
      const value = text === undefined ? get.value(record) : text === 'null' ? null : textValue(text);
      if (c === plan.match) {
        if (value === null || value === undefined) {
          return reject(buf, record, `the match column ${q(c.column.name)} has no value: ${c.mapping.expr.text} is missing or null in this record`);
        }
        lastMatch = value;
      }
      const f = field(c, value, buf.stats);
      if (!f.ok) return reject(buf, record, f.reason);
      fields.push(f.text);
    }
    return copyRow(fields, lead);
  };
  return { encode, skipped: (buf) => skips.get(buf) ?? 0, lastMatch: () => lastMatch, deletions: (buf) => deletions.get(buf) ?? 0 };
}
