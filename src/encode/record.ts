import type { ColumnDef, ObjectDef } from '../catalog/definition.js';
import type { RecordEnvelope } from '../input/envelope.js';
import { memberTexts } from '../input/json-text.js';
import { copyJson, copyJsonText, copyRow, copyText, type EncodeStats } from './copy-text.js';
import { convert, inlineBytes, TOO_WIDE, TYPED_ROW_BUDGET, valueExcerpt } from './values.js';

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
  const fields: (string | null)[] = [
    copyText(record.id, stats),
    record.lastModifiedAt,
    record.isDeleted ? 't' : 'f',
    record.rawData === null ? null : ((record.rawText === undefined ? undefined : copyJsonText(record.rawText, stats)) ?? copyJson(record.rawData, stats)),
  ];
  const typedFrom = fields.length;
  const raw = record.rawData;
  const rawObject = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  let sent: SentTexts | undefined;
  const sentTexts = record.rawText !== undefined || record.dataText !== undefined;
  let width = 0;
  for (const column of def.columns) {
    const value = valueOf(record, rawObject, column);
    // Only a line whose numbers JSON.parse may have changed has its texts (envelope.ts).
    const exact = sentTexts && (typeof value === 'number' || (typeof value === 'object' && value !== null)) ? (sent ??= new SentTexts(record)).of(column) : undefined;
    const converted = convert(value, column.type, stats, column.shape, exact);
    if (converted.ok) {
      fields.push(converted.field);
      if (converted.field !== null) width += inlineBytes(converted.field, column.type);
    } else {
      fields.push(null);
      problems.push({
        lineNumber: record.lineNumber,
        recordId: record.id,
        field: column.source.key,
        column: column.name,
        reason: converted.reason,
        valueExcerpt: valueExcerpt(exact ?? value),
      });
    }
  }
  // Too wide for one row: rather than fail the batch, land the last typed
  // columns as NULL (their values stay in the raw payload) until it fits.
  for (let i = def.columns.length - 1; width > TYPED_ROW_BUDGET && i >= 0; i--) {
    const field = fields[typedFrom + i];
    if (field === null || field === undefined) continue;
    const column = def.columns[i]!;
    width -= inlineBytes(field, column.type);
    fields[typedFrom + i] = null;
    problems.push({
      lineNumber: record.lineNumber,
      recordId: record.id,
      field: column.source.key,
      column: column.name,
      reason: TOO_WIDE,
      valueExcerpt: valueExcerpt(valueOf(record, rawObject, column)),
    });
  }
  return copyRow(fields, lead);
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
