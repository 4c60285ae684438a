import type { ObjectDef } from '../catalog/definition.js';
import type { RecordEnvelope } from '../input/envelope.js';
import { copyJson, copyRow, copyText, type EncodeStats } from './copy-text.js';
import { convert, valueExcerpt } from './values.js';

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
 * Encodes one record as a COPY row in the staging table's column order
 * (see stage.ts): line number, id, last-modified, is-deleted, raw payload,
 * then the object's typed columns.
 */
export function encodeRecord(record: RecordEnvelope, def: ObjectDef, stats: EncodeStats, problems: Problem[]): string {
  const fields: (string | null)[] = [
    String(record.lineNumber),
    copyText(record.id, stats),
    record.lastModifiedAt,
    record.isDeleted ? 't' : 'f',
    record.rawData === null ? null : copyJson(record.rawData, stats),
  ];
  const raw = record.rawData;
  const rawObject = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  for (const column of def.columns) {
    const bag = column.source.from === 'data' ? record.data : rawObject;
    const value = bag === undefined ? undefined : bag[column.source.key];
    const converted = convert(value, column.type, stats);
    if (converted.ok) {
      fields.push(converted.field);
    } else {
      fields.push(null);
      problems.push({
        lineNumber: record.lineNumber,
        recordId: record.id,
        field: column.source.key,
        column: column.name,
        reason: converted.reason,
        valueExcerpt: valueExcerpt(value),
      });
    }
  }
  return copyRow(fields);
}
