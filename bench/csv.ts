import { PGLAND_COLUMNS as P } from '../src/catalog/definition.js';
import { commonObject } from '../src/index.js';
import type { Contact } from './generate.js';

/** The landed crm_contacts definition: the baselines land the same columns as pgland. */
export const CONTACTS = commonObject('crm_contacts')!;

/**
 * The CSV's columns, in order: the id, the typed columns, then the version
 * timestamp, the deleted flag and the raw payload. Provider and customer are
 * constants that the baselines add in SQL, as pgland's merge does.
 */
export const CSV_COLUMNS: readonly string[] = ['id', ...CONTACTS.columns.map((c) => c.name), P.lastModifiedAt, P.isDeleted, P.rawData];

/** A CSV field: empty and unquoted is NULL (PostgreSQL's CSV default), anything needing it is quoted. */
function field(value: string | null): string {
  if (value === null) return '';
  if (value === '' || value === '\\.' || /[",\n\r]/.test(value)) return '"' + value.replace(/"/g, '""') + '"';
  return value;
}

/** The value a typed column gets from a record, as text: what pgland lands in that column. */
function columnText(value: unknown, type: string): string | null {
  if (value === null || value === undefined) return null;
  return type === 'jsonb' ? JSON.stringify(value) : String(value);
}

/** One CSV line with the same column values that pgland lands for the record. */
export function csvLine(record: Contact): string {
  const out: (string | null)[] = [record.id];
  for (const c of CONTACTS.columns) out.push(columnText(record.data[c.source.key], c.type));
  out.push(record.last_modified_at, record.is_deleted ? 't' : 'f', JSON.stringify(record.raw_data));
  return out.map(field).join(',') + '\n';
}
