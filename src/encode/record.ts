import type { ColumnDef, ObjectDef } from '../catalog/definition.js';
import type { RecordEnvelope } from '../input/envelope.js';
import { mayLoseDigits, memberTexts, OPEN_BRACE, OPEN_BRACKET, QUOTE, textValue } from '../input/json-text.js';
import type { MemberTexts } from '../input/envelope-scan.js';
import { copyJson, copyJsonText, copyRow, copyText, LONG_NUMBER_TEXT, type EncodeStats } from './copy-text.js';
import { convert, inlineBytes, isTimestampText, TOO_WIDE, TYPED_ROW_BUDGET, valueExcerpt } from './values.js';

/** A value that did not fit its column: the record landed, the value stayed in the raw payload. */
export interface Problem {
  lineNumber: number;
  recordId: string;
  field: string;
  column: string;
  reason: string;
  valueExcerpt: string;
}

/**
 * Encodes one record as a COPY row: `lead` (the fields that come before the
 * record's own, already encoded and ending in a tab: the line number for the
 * staging table, the tenant and run for a landed table, see stage.ts), then
 * id, last-modified, is-deleted, raw payload and the object's typed columns.
 */
export function encodeRecord(record: RecordEnvelope, def: ObjectDef, stats: EncodeStats, problems: Problem[], lead: string): string {
  const fields: (string | null)[] = [copyText(record.id, stats), record.lastModifiedAt, record.isDeleted ? 't' : 'f', rawField(record, stats)];
  if (record.dataMembers !== undefined) return encodeScanned(record, record.dataMembers, def, stats, problems, lead, fields);
  const typedFrom = fields.length;
  const raw = record.rawData;
  const rawObject = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  let sent: SentTexts | undefined;
  const sentTexts = record.rawText !== undefined || record.dataText !== undefined;
  let width = 0;
  for (const column of def.columns) {
    const value = valueOf(record, rawObject, column);
    // Only a line whose numbers JSON.parse may have changed has its texts (envelope.ts).
    const exact =
      sentTexts && (typeof value === 'number' || (typeof value === 'object' && value !== null)) ? (sent ??= new SentTexts(record)).of(column) : undefined;
    const converted = convert(value, column.type, stats, column.shape, exact);
    if (converted.ok) {
      fields.push(converted.field);
      if (converted.field !== null) width += inlineBytes(converted.field, column.type);
    } else {
      fields.push(null);
      problems.push(problem(record, column, converted.reason, exact ?? value));
    }
  }
  if (width > TYPED_ROW_BUDGET) dropTooWide(record, fields, typedFrom, width, def, (column) => valueOf(record, rawObject, column), problems);
  return copyRow(fields, lead);
}

/** The raw payload's COPY field: its text as sent when there is one (json-text.ts), else the parsed value's. */
export function rawField(record: RecordEnvelope, stats: EncodeStats): string | null {
  const text = record.rawText;
  if (text !== undefined && record.asIs === true && text.length <= LONG_NUMBER_TEXT) return text === 'null' ? null : text;
  if (text !== undefined) return text === 'null' ? null : (copyJsonText(text, stats) ?? copyJson(record.rawData, stats));
  const raw = record.rawData;
  return raw === null ? null : copyJson(raw, stats);
}

/**
 * encodeRecord for a scanned line (envelope-scan.ts): typed values are read
 * from the members' texts as sent, and a jsonb value is landed as its text,
 * never parsed. A number lands as sent when JSON.parse would change it
 * (mayLoseDigits), else as before, as JavaScript writes it.
 */
function encodeScanned(
  record: RecordEnvelope,
  dataMembers: MemberTexts,
  def: ObjectDef,
  stats: EncodeStats,
  problems: Problem[],
  lead: string,
  fields: (string | null)[],
): string {
  const typedFrom = fields.length;
  const asIs = record.asIs === true;
  let width = 0;
  for (const column of def.columns) {
    const field = scannedField(record, column, memberText(record, dataMembers, column), asIs, stats, problems);
    fields.push(field);
    if (field !== null) width += inlineBytes(field, column.type);
  }
  if (width > TYPED_ROW_BUDGET) {
    dropTooWide(
      record,
      fields,
      typedFrom,
      width,
      def,
      (column) => {
        const text = memberText(record, dataMembers, column);
        return text === undefined ? undefined : textValue(text);
      },
      problems,
    );
  }
  return copyRow(fields, lead);
}

/**
 * One typed column's COPY field of a scanned record, from its member's text
 * as sent (undefined when absent); a value that does not fit is a problem,
 * and NULL. `asIs`: the record's RecordEnvelope.asIs.
 */
export function scannedField(
  record: RecordEnvelope,
  column: ColumnDef,
  text: string | undefined,
  asIs: boolean,
  stats: EncodeStats,
  problems: Problem[],
): string | null {
  const c = text === undefined ? 0 : text.charCodeAt(0);
  const plain = asIs ? asIsField(text, c, column) : undefined;
  if (plain !== undefined) return plain;
  if (column.type === 'jsonb' && (c === 0x7b || c === 0x5b) && (column.shape === undefined || (column.shape === 'array') === (c === 0x5b))) {
    return copyJsonText(text!, stats) ?? copyJson(JSON.parse(text!), stats);
  }
  const value = text === undefined ? undefined : textValue(text);
  const exact = c === 0x22 || c === 0x74 || c === 0x66 || c === 0x6e || text === undefined || !mayLoseDigits(text) ? undefined : text;
  const converted = convert(value, column.type, stats, column.shape, exact);
  if (converted.ok) return converted.field;
  problems.push(problem(record, column, converted.reason, exact ?? value));
  return null;
}

/**
 * One typed column's COPY field of a record without data's members, as
 * encodeRecord's parsed path gives it, from its member's text in raw_data
 * (undefined when absent): the value JSON.parse gives, with the text as sent
 * for a number, an object or an array (SentTexts).
 */
export function parsedField(record: RecordEnvelope, column: ColumnDef, text: string | undefined, stats: EncodeStats, problems: Problem[]): string | null {
  if (text === undefined) return null;
  const value = textValue(text);
  const exact = typeof value === 'number' || (typeof value === 'object' && value !== null) ? text : undefined;
  const converted = convert(value, column.type, stats, column.shape, exact);
  if (converted.ok) return converted.field;
  problems.push(problem(record, column, converted.reason, exact ?? value));
  return null;
}

/**
 * A typed field straight from its text as sent, on a line whose texts are
 * COPY fields as they stand (RecordEnvelope.asIs): a string without escapes
 * for text, a valid timestamp string, an object or array for jsonb. The same
 * field as convert() gives, without its checks and allocations; undefined for
 * anything else, which takes the general path.
 */
function asIsField(text: string | undefined, c: number, column: ColumnDef): string | undefined {
  if (text === undefined) return undefined;
  switch (column.type) {
    case 'text':
      return c === QUOTE ? text.slice(1, -1) : undefined;
    case 'timestamptz':
    case 'date': {
      if (c !== QUOTE || text.length === 2) return undefined;
      const value = text.slice(1, -1);
      return isTimestampText(value) ? value : undefined;
    }
    case 'jsonb':
      if (text.length > LONG_NUMBER_TEXT) return undefined;
      if (c === OPEN_BRACE) return column.shape === 'array' ? undefined : text;
      if (c === OPEN_BRACKET) return column.shape === 'object' ? undefined : text;
      return undefined;
    default:
      return undefined;
  }
}

/** A column's value as sent: the text of its member in data or in the raw payload. */
export function memberText(record: RecordEnvelope, dataMembers: MemberTexts, column: ColumnDef): string | undefined {
  return column.source.from === 'data' ? dataMembers.get(column.source.key) : record.rawMembers?.get(column.source.key);
}

/**
 * Too wide for one row: rather than fail the batch, land the last typed
 * columns as NULL (their values stay in the raw payload) until it fits.
 */
function dropTooWide(
  record: RecordEnvelope,
  fields: (string | null)[],
  typedFrom: number,
  width: number,
  def: ObjectDef,
  valueOfColumn: (column: ColumnDef) => unknown,
  problems: Problem[],
): void {
  for (let i = def.columns.length - 1; width > TYPED_ROW_BUDGET && i >= 0; i--) {
    const field = fields[typedFrom + i];
    if (field === null || field === undefined) continue;
    const column = def.columns[i]!;
    width -= inlineBytes(field, column.type);
    fields[typedFrom + i] = null;
    problems.push(problem(record, column, TOO_WIDE, valueOfColumn(column)));
  }
}

function problem(record: RecordEnvelope, column: ColumnDef, reason: string, value: unknown): Problem {
  return { lineNumber: record.lineNumber, recordId: record.id, field: column.source.key, column: column.name, reason, valueExcerpt: valueExcerpt(value) };
}

/**
 * The members' texts as sent of a record's raw_data and data, each found on
 * first need: only records with a number, object or array in a typed column
 * pay for the scan.
 */
class SentTexts {
  private raw: Map<string, string> | undefined | null = null;
  private data: Map<string, string> | undefined | null = null;

  constructor(private readonly record: RecordEnvelope) {}

  of(column: ColumnDef): string | undefined {
    if (column.source.from === 'data') {
      if (this.data === null) this.data = this.record.dataText === undefined ? undefined : memberTexts(this.record.dataText);
      return this.data?.get(column.source.key);
    }
    if (this.raw === null) this.raw = this.record.rawText === undefined ? undefined : memberTexts(this.record.rawText);
    return this.raw?.get(column.source.key);
  }
}

/** A typed column's value in the record; only the bag's own keys (a field named "constructor" is not Object's). */
function valueOf(record: RecordEnvelope, rawObject: Record<string, unknown> | undefined, column: ColumnDef): unknown {
  const bag = column.source.from === 'data' ? record.data : rawObject;
  if (bag === undefined) return undefined;
  const value = bag[column.source.key];
  return value === undefined || Object.hasOwn(bag, column.source.key) ? value : undefined;
}
