import { LONG_NUMBER_TEXT, newEncodeStats } from '../encode/copy-text.js';
import { copyBytes, copyJsonBytes, memberAt, ROW_FULL, ROW_SLOW, unescapeText, writeEnvelopeFields, writeNull, writeText } from '../encode/record-bytes.js';
import type { BytesRecord } from '../input/bytes-record.js';
import { SPECIAL_ESCAPE, SPECIAL_EXPONENT } from '../input/envelope-bytes.js';
import { QUOTE } from '../input/json-text.js';
import type { BatchBuffer, BytesRowWriter } from '../load/copy-writer.js';
import { columnField, countIn, field, groupsField, NO_GROUPS, type BatchTally, type LastMatch, type StageColumn } from './fields.js';
import { ESCAPED_NAME, found, pathSpan } from './json-path.js';
import type { Accessor } from './mapping.js';
import type { IntoPlan } from './validate.js';

/**
 * The own-table staging row (stage.ts) of a record read as bytes
 * (input/bytes-record.ts), written straight into the COPY chunk: a path into
 * data is followed in the line's bytes (json-path.ts's pathSpan) and the
 * value it reaches copied as its column takes it, as record-bytes.ts does for
 * landed tables. A string is unescaped from JSON into COPY text, a jsonb value
 * copied as sent, a number as sent where fields.ts's columnField keeps it as
 * sent, a boolean as t/f or true/false; nothing is decoded into a string.
 * Anything else (functions, raw_data, a number that needs parsing, an object
 * into a text column, json, an escaped member name) goes through
 * columnField for that one column, from the record's texts: the bytes
 * written are always those of the string encoder's row, which
 * test/own-tables-bytes.test.ts checks record by record. A record the
 * string encoder would not stage (a reject, a skipped deletion) is left to it
 * (ROW_SLOW), with nothing written or counted.
 */

const TAB = 0x09;
const NEWLINE = 0x0a;
const MINUS = 0x2d;
/** Room kept for a column's tab and a NULL, or for a row's end. */
const SLACK = 16;

const enum Kind {
  /** A path into data whose first step is a name: followed in the bytes. */
  Member,
  /** A constant: its field, found once. */
  Constant,
  /** columnField, for each record. */
  Field,
}

interface ByteColumn {
  col: StageColumn;
  kind: Kind;
  /** Member: the first step's name as UTF-8, and the steps after it (names as UTF-8). */
  key: Buffer;
  steps: (Buffer | number)[];
  /** Constant: the field's UTF-8 (undefined for NULL). */
  constant: Buffer | undefined;
  /** A member value of null (or none) may be staged as NULL: the column is neither the match column nor NOT NULL. */
  nullable: boolean;
  /** boolean column: true and false as t and f. */
  bool: boolean;
}

/** A field whose encoding counted nothing (no NUL stripped, no surrogate replaced): the same for every record. */
function constantField(col: StageColumn): Buffer | undefined | null {
  const expr = col.c.mapping.expr;
  if (expr.kind !== 'const' || col.match) return null;
  const stats = newEncodeStats();
  const f = field(col.c, expr.value, stats);
  if (!f.ok || stats.nulStripped !== 0 || stats.surrogatesReplaced !== 0) return null;
  return f.text === null ? undefined : Buffer.from(f.text, 'utf8');
}

function byteColumn(col: StageColumn): ByteColumn {
  const expr = col.c.mapping.expr;
  const out: ByteColumn = {
    col,
    kind: Kind.Field,
    key: Buffer.alloc(0),
    steps: [],
    constant: undefined,
    nullable: !col.match && !col.c.column.notNull,
    bool: col.c.column.category === 'B',
  };
  const constant = constantField(col);
  if (constant !== null) {
    out.kind = Kind.Constant;
    out.constant = constant;
    return out;
  }
  // json keeps the parsed value's spelling (JSON.stringify): columnField writes it.
  if (expr.kind !== 'path' || expr.root !== 'data' || col.c.column.typname === 'json') return out;
  const [first, ...rest] = expr.steps;
  // A name that is not well-formed UTF-16 has no UTF-8 to compare: followed in text.
  if (typeof first !== 'string' || expr.steps.some((s) => typeof s === 'string' && !s.isWellFormed())) return out;
  out.kind = Kind.Member;
  out.key = Buffer.from(first, 'utf8');
  out.steps = rest.map((s) => (typeof s === 'number' ? s : Buffer.from(s, 'utf8')));
  return out;
}

/** Whether src[start, end) (a JSON number) is an integer without fraction or exponent (fields.ts's INTEGER_TEXT). */
function isIntegerBytes(src: Buffer, start: number, end: number): boolean {
  for (let i = src[start] === MINUS ? start + 1 : start; i < end; i++) {
    const c = src[i]!;
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Returned by writeValue when the column's field must come from columnField. */
const BY_FIELD = -3;

export function intoBytesWriter(plan: IntoPlan, cols: StageColumn[], groupsFrom: Accessor | undefined, tally: BatchTally, last: LastMatch): BytesRowWriter {
  const columns = cols.map(byteColumn);

  /** The value found (json-path.ts's `found`) written as column `bc` takes it: the position past it, ROW_FULL or BY_FIELD. */
  const writeValue = (bc: ByteColumn, src: Buffer, out: Buffer, p: number, buf: BatchBuffer): number => {
    const { start, end, flags } = found;
    const c = src[start]!;
    if (p + 2 * (end - start) + SLACK > out.length) return ROW_FULL;
    const { col } = bc;
    if (col.jsonb) {
      // As fields.ts's copyJsonText, which declines (for the parsed value) what may hold a number jsonb refuses.
      if ((flags & SPECIAL_EXPONENT) !== 0 || end - start > LONG_NUMBER_TEXT) return BY_FIELD;
      return copyJsonBytes(src, start, end, flags, out, p, buf.stats);
    }
    if (c === QUOTE) {
      if ((flags & SPECIAL_ESCAPE) === 0) {
        if (col.match) {
          last.src = src;
          last.start = start + 1;
          last.end = end - 1;
        }
        return copyBytes(src, start + 1, end - 1, out, p);
      }
      if (col.match) last.value = JSON.parse(src.toString('utf8', start, end));
      return unescapeText(src, start + 1, end - 1, out, p, buf.stats);
    }
    if (c === 0x74 || c === 0x66) {
      if (col.match) last.value = c === 0x74;
      return writeText(out, p, bc.bool ? (c === 0x74 ? 't' : 'f') : c === 0x74 ? 'true' : 'false');
    }
    if (c === MINUS || (c >= 0x30 && c <= 0x39)) {
      if (col.asSent === undefined || (col.asSent === 'integer' && !isIntegerBytes(src, start, end))) return BY_FIELD;
      if (col.match) last.value = Number(src.toString('latin1', start, end));
      return copyBytes(src, start, end, out, p);
    }
    // An object or array into a column that is not jsonb.
    return BY_FIELD;
  };

  return (record: BytesRecord, buf: BatchBuffer, lead: string, out: Buffer, at: number): number => {
    // Skipped deletions are counted by the string encoder.
    if (record.isDeleted && plan.skipDeleted) return ROW_SLOW;
    const { scan, src } = record;
    const stats = buf.stats;
    const nulBefore = stats.nulStripped;
    const surrogatesBefore = stats.surrogatesReplaced;
    const undo = (code: number): number => {
      stats.nulStripped = nulBefore;
      stats.surrogatesReplaced = surrogatesBefore;
      return code;
    };
    const limit = out.length;
    // Each UTF-16 unit of a string takes at most 3 bytes; the id's COPY escaping at most doubles it.
    if (at + 3 * lead.length + 6 * record.id.length + 3 * record.lastModifiedAt.length + SLACK > limit) return ROW_FULL;
    last.src = undefined;
    last.value = undefined;
    const deleting = plan.action === 'delete' || (record.isDeleted && plan.applyDeletes);
    let p = writeEnvelopeFields(record, stats, out, writeText(out, at, lead));
    if (plan.groups) {
      const g = deleting ? NO_GROUPS : groupsField(plan, groupsFrom!, record, stats);
      if (!g.ok) return undo(ROW_SLOW);
      out[p++] = TAB;
      if (g.text === null) p = writeNull(out, p);
      else if (p + 3 * g.text.length + SLACK > limit) return undo(ROW_FULL);
      else p = writeText(out, p, g.text);
    }
    const members = scan.escapedNames ? undefined : scan.members;
    for (let n = 0; n < columns.length; n++) {
      const bc = columns[n]!;
      if (p + SLACK > limit) return undo(ROW_FULL);
      out[p++] = TAB;
      // A deletion needs only the matching value, and the version when a column holds it.
      if (deleting && !bc.col.keptOnDelete) {
        p = writeNull(out, p);
        continue;
      }
      if (bc.kind === Kind.Constant) {
        if (bc.constant === undefined) p = writeNull(out, p);
        else if (p + bc.constant.length + SLACK > limit) return undo(ROW_FULL);
        else p += bc.constant.copy(out, p);
        continue;
      }
      if (bc.kind === Kind.Member && members !== undefined) {
        const k = memberAt(src, members, bc.key);
        const reached = k === -1 ? 0 : pathSpan(src, members[k + 2]!, members[k + 3]!, members[k + 4]!, bc.steps, 0);
        if (reached === 1 && src[found.start] !== 0x6e) {
          const to = writeValue(bc, src, out, p, buf);
          if (to === ROW_FULL) return undo(ROW_FULL);
          if (to !== BY_FIELD) {
            p = to;
            continue;
          }
        } else if (reached !== ESCAPED_NAME && bc.nullable) {
          // Missing or null: NULL. (The match column and NOT NULL ones: columnField says why not.)
          p = writeNull(out, p);
          continue;
        }
      }
      const f = columnField(bc.col, record, stats);
      if (!f.ok) return undo(ROW_SLOW);
      if (bc.col.match) {
        last.src = undefined;
        last.value = f.match;
      }
      if (f.text === null) p = writeNull(out, p);
      else if (p + 3 * f.text.length + SLACK > limit) return undo(ROW_FULL);
      else p = writeText(out, p, f.text);
    }
    out[p++] = NEWLINE;
    if (record.isDeleted && plan.applyDeletes) countIn(tally.deletions, buf);
    return p;
  };
}
