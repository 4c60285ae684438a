import { isTimestampText } from '../encode/values.js';
import { cursorTime } from '../protocols/envelope.js';
import type { ColumnKind, SourceColumn } from './describe.js';
import type { Position } from './page.js';
import { isoTimestamptz } from './row-select.js';

/*
 * The two formats a read writes (docs/reading.md, "Output"):
 *
 * - ndjson: pgland's input envelope (docs/input.md), one line per row, so
 *   that `pgland read | pgland load` moves a table: id is the key as text,
 *   raw_data the row in JSON as row_to_json writes it, last_modified_at the
 *   cursor when it is a time, else a time that orders as the cursor does.
 * - singer: a SCHEMA from the result's column types, a RECORD per row and a
 *   STATE with the bookmark after every page.
 *
 * The record lines themselves are written as bytes (src/read/json-lines.ts,
 * src/read/copy-json.ts); this file gives their parts and the other lines.
 */

export type ReadFormat = 'ndjson' | 'singer';

/** How last_modified_at is derived from a row's cursor text. */
export type VersionOf = (cursor: string) => string;

/**
 * Time cursors give their own value; integer cursors the time the Singer
 * target gives them (1970 plus that many microseconds), so that a larger
 * number is a later version; any other cursor (text, uuid…) the read's start
 * time: a later read is a later version.
 */
export function versionOf(kind: ColumnKind, readStart: Date): VersionOf {
  const fallback = readStart.toISOString();
  if (kind === 'timestamptz' || kind === 'timestamp' || kind === 'date') {
    // The server's ISO text ('2026-01-15 10:30:00.5+00') in RFC 3339's form;
    // 'infinity' and BC dates are not RFC 3339: they get the read's time.
    return (c) => (isTimestampText(c) ? isoTimestamptz(c) : fallback);
  }
  if (kind === 'integer') return (c) => cursorTime(Number(c));
  return () => fallback;
}

/** How a row's last_modified_at is written: its cursor field and how it becomes a time. */
export interface VersionSpec {
  cursorAt: number;
  /** The cursor column's kind when its text is the output of the built-in type (written from its bytes), else undefined. */
  kind: ColumnKind | undefined;
  /** The time from the cursor's text, for every other cursor (and other forms of a time: infinity, BC…). */
  of: VersionOf;
}

/**
 * versionOf for a read's rows, the cursor being field `cursorAt` of each: a
 * built-in time type's text is also written straight from its bytes
 * (src/read/copy-json.ts, writeIsoVersion), the same time without a string.
 */
export function versionSpec(cursor: SourceColumn, cursorAt: number, readStart: Date): VersionSpec {
  const k = cursor.kind;
  const fromBytes = !cursor.serverJson && (k === 'timestamptz' || k === 'timestamp' || k === 'date');
  return { cursorAt, kind: fromBytes ? k : undefined, of: versionOf(k, readStart) };
}

/** A column's JSON Schema, as its values appear in row_to_json. */
function propertyOf(c: SourceColumn, nullable: boolean): Record<string, unknown> {
  const t = (type: string): string | string[] => (nullable ? [type, 'null'] : type);
  switch (c.kind) {
    case 'boolean':
      return { type: t('boolean') };
    case 'integer':
      return { type: t('integer') };
    case 'number':
      // NaN and Infinity come out as strings; a plain number otherwise.
      return { type: t('number') };
    case 'timestamptz':
    case 'timestamp':
      return { type: t('string'), format: 'date-time' };
    case 'date':
      return { type: t('string'), format: 'date' };
    case 'array':
      return { type: t('array') };
    case 'json':
      return {};
    default:
      return { type: t('string') };
  }
}

/** The JSON Schema of the source's rows: the key is never null (rows with a NULL key are not read). */
export function jsonSchemaOf(columns: readonly SourceColumn[], key: string): { type: 'object'; properties: Record<string, unknown> } {
  const properties: Record<string, unknown> = {};
  for (const c of columns) properties[c.name] = propertyOf(c, c.name !== key);
  return { type: 'object', properties };
}

export function schemaLine(stream: string, columns: readonly SourceColumn[], key: string, cursor: string): string {
  return JSON.stringify({ type: 'SCHEMA', stream, schema: jsonSchemaOf(columns, key), key_properties: [key], bookmark_properties: [cursor] });
}

/** A stream's bookmark, in the shape Singer taps keep in their STATE (and `--state FILE` holds). */
export interface Bookmark {
  replication_key: string;
  replication_key_value: string;
  key_property: string;
  key_value?: string;
}

export interface ReadState {
  bookmarks: Record<string, Bookmark>;
}

export function bookmarkOf(position: Position, cursor: string, key: string): Bookmark {
  return {
    replication_key: cursor,
    replication_key_value: position.cursor,
    key_property: key,
    ...(position.key !== undefined ? { key_value: position.key } : {}),
  };
}

export function stateLine(state: ReadState): string {
  return JSON.stringify({ type: 'STATE', value: state });
}
