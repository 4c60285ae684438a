import type { BatchBuffer, BytesRowWriter } from '../load/copy-writer.js';
import type { IdSet } from '../load/id-set.js';
import { copyRow, copyText } from '../encode/copy-text.js';
import { MAX_REJECT_TEXT, type RecordEnvelope, type Reject } from '../input/envelope.js';
import { quoteIdent as q } from '../sql/ident.js';
import { createUnloggedStageSql } from '../load/pipelined.js';
import { columnField, compileColumns, countIn, groupsField, NO_GROUPS, type BatchTally, type LastMatch } from './fields.js';
import { compile, evaluate, isLastModified } from './mapping.js';
import { intoBytesWriter } from './stage-bytes.js';
import type { IntoPlan, PlannedColumn } from './validate.js';

/**
 * The staging table of a load into an own table: the record's line, id,
 * version and deletion flag, its group names, then each mapped value, as
 * text unless the encoder guarantees the column's type takes it (stagedType).
 * Values staged as text are cast to the column's type by the merge, not by
 * COPY: a value the type refuses then fails one record (found by bisection,
 * merge-into.ts), not the COPY of the whole batch.
 */
export const INTO_STAGE = '_pgland_into';
export const LINE = '_pgland_line';
export const RECORD_ID = '_pgland_id';
export const VERSION = '_pgland_lm';
export const DELETED = '_pgland_deleted';
export const GROUPS = '_pgland_groups';

/**
 * The type a mapped value is staged as: the column's own where the encoder
 * only ever writes what that type's input takes, so that the COPY (on the
 * helper connection, beside the merge) reads it once and the merge casts
 * nothing; text otherwise. text columns; jsonb (valid JSON, with what jsonb
 * refuses taken out, as for landed tables: encode/copy-text.ts); a
 * timestamptz column mapped from last_modified_at (the envelope checked it,
 * and the version column is staged as timestamptz already).
 */
export function stagedType(c: PlannedColumn): string {
  const { typname } = c.column;
  if (typname === 'text' || typname === 'jsonb') return c.column.castType;
  if (typname === 'timestamptz' && isLastModified(c.mapping.expr)) return c.column.castType;
  return 'text';
}

function stageColumnsSql(plan: IntoPlan): string[] {
  const cols = [`${q(LINE)} bigint`, `${q(RECORD_ID)} text`, `${q(VERSION)} timestamptz`, `${q(DELETED)} boolean`];
  if (plan.groups) cols.push(`${q(GROUPS)} text[]`);
  for (const c of staged(plan)) cols.push(`${q(c.stage!)} ${stagedType(c)}`);
  return cols;
}

/** The connection's staging table of a batch landed on its own, dropped at its commit. */
export const TEMP_STAGE = q(INTO_STAGE);

export function createIntoStageSql(plan: IntoPlan): string {
  return `CREATE TEMP TABLE ${TEMP_STAGE} (${stageColumnsSql(plan).join(', ')}) ON COMMIT DROP`;
}

/**
 * One of a pipelined run's two staging tables (load/pipelined.ts): in
 * pgland's schema, never the customer's; staged on the helper connection,
 * merged on the run's.
 */
export function createIntoPipeStageSql(plan: IntoPlan, table: string): string {
  return createUnloggedStageSql(table, stageColumnsSql(plan));
}

export function copyIntoStageSql(table = TEMP_STAGE): string {
  return `COPY ${table} FROM STDIN`;
}

export function staged(plan: IntoPlan): PlannedColumn[] {
  return plan.columns.filter((c) => c.stage !== undefined);
}

/** What a reject of the record keeps: its input line, cut as every reject's (a record not read from a line: its envelope again). */
export function keptText(record: RecordEnvelope): string {
  const raw =
    record.lineText ??
    JSON.stringify({
      id: record.id,
      last_modified_at: record.lastModifiedAt,
      is_deleted: record.isDeleted,
      raw_data: record.rawData,
      data: record.data,
    });
  return raw.length > MAX_REJECT_TEXT ? raw.slice(0, MAX_REJECT_TEXT) : raw;
}

function reject(buf: BatchBuffer, record: RecordEnvelope, reason: string): '' {
  buf.rejects.push({ lineNumber: record.lineNumber, recordId: record.id, reason, rawText: keptText(record) } satisfies Reject);
  return '';
}

export interface IntoRowEncoder {
  /** The record's staging row, or '' when it is not staged (see intoRowEncoder). */
  encode: (record: RecordEnvelope, buf: BatchBuffer, lead: string) => string;
  /** The same row written into `out` at `at` for a record read as bytes: the position past it, ROW_FULL or ROW_SLOW (then encode). */
  encodeBytes: BytesRowWriter;
  skipped: (buf: BatchBuffer) => number;
  /** Whether the matching value of the record staged last repeats one seen since `keys` was cleared (it is added). */
  repeats: (keys: IdSet, record: RecordEnvelope) => boolean;
  /** How many records of the batch are deletions the mode applies (upsert, sync): none, no DELETE in the merge. */
  deletions: (buf: BatchBuffer) => number;
}

/**
 * The row encoder given to the batch buffer (load/copy-writer.ts): one
 * staging row per record, or '' when the record is not staged: rejected here
 * (a value of the wrong shape, a null into NOT NULL, no matching value), with
 * why; or a deletion the mode skips, counted per batch by `skipped`. A
 * record read as bytes is written by stage-bytes.ts's writer, the same bytes.
 */
export function intoRowEncoder(plan: IntoPlan): IntoRowEncoder {
  const cols = compileColumns(plan, staged(plan));
  const groupsFrom = plan.groups ? compile(plan.groups.from) : undefined;
  const tally: BatchTally = { skips: new WeakMap(), deletions: new WeakMap() };
  const matchExpr = plan.match?.mapping.expr;
  const last: LastMatch = { src: undefined, start: 0, end: 0, value: undefined };
  const encode = (record: RecordEnvelope, buf: BatchBuffer, lead: string): string => {
    last.src = undefined;
    last.value = undefined;
    if (record.isDeleted && plan.skipDeleted) {
      countIn(tally.skips, buf);
      return '';
    }
    const fields: (string | null)[] = [copyText(record.id, buf.stats), record.lastModifiedAt, record.isDeleted ? 't' : 'f'];
    const deleting = plan.action === 'delete' || (record.isDeleted && plan.applyDeletes);
    // Counted before the record is encoded: one rejected below only makes the merge look for a deletion in vain.
    if (record.isDeleted && plan.applyDeletes) countIn(tally.deletions, buf);
    if (plan.groups) {
      const g = deleting ? NO_GROUPS : groupsField(plan, groupsFrom!, record, buf.stats);
      if (!g.ok) return reject(buf, record, g.reason);
      fields.push(g.text);
    }
    for (const col of cols) {
      // A deletion needs only the matching value, and the version when a column holds it.
      if (deleting && !col.keptOnDelete) {
        fields.push(null);
        continue;
      }
      const f = columnField(col, record, buf.stats);
      if (!f.ok) return reject(buf, record, f.reason);
      if (col.match) last.value = f.match;
      fields.push(f.text);
    }
    return copyRow(fields, lead);
  };
  return {
    encode,
    encodeBytes: intoBytesWriter(plan, cols, groupsFrom, tally, last),
    skipped: (buf) => tally.skips.get(buf) ?? 0,
    deletions: (buf) => tally.deletions.get(buf) ?? 0,
    // Keys compared as the text staged; two spellings of one value (01 and 1) are caught by the merge's DISTINCT ON.
    repeats: (keys, record) =>
      last.src !== undefined ? keys.addRepeatsBytes(last.src, last.start, last.end) : keys.addRepeats(String(last.value ?? evaluate(matchExpr!, record))),
  };
}
