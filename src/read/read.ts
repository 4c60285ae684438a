import type { SourceColumn } from './describe.js';
import {
  bookmarkOf,
  envelopeLine,
  recordLine,
  schemaLine,
  stateLine,
  versionOf,
  type ReadFormat,
  type ReadState,
} from './output.js';
import type { Position } from './page.js';
import { prepareRead, readPages, type ReadSpec } from './reader.js';
import { startOf } from './state.js';
import type { SourceConnection } from './source.js';

/*
 * `pgland read` as a library call: checks the source, then writes page after
 * page to the caller's sink. The sink's promise is the back-pressure: the
 * next page is fetched only when the last one is written, so memory holds one
 * page whatever the table's size.
 */

export interface ReadOutput {
  format?: ReadFormat;
  /** The stream's name (Singer) and the state's bookmark key; default the table's name, or "query". */
  stream?: string;
  /** Receives text (whole lines); resolve when it is written, so that the next page waits for it. */
  write(text: string): void | Promise<void>;
  /** After each page: rows written so far. */
  onProgress?: (rows: number) => void;
  signal?: AbortSignal;
}

export interface ReadResult {
  rows: number;
  pages: number;
  columns: SourceColumn[];
  /** Where the read ended (the last row's cursor and key); the start position when nothing was read. */
  position: Position | undefined;
  /** The state to save, to start the next read after this one. */
  state: ReadState;
}

/** The stream name of a spec: the table's name, or "query". */
export function streamName(spec: ReadSpec): string {
  return 'table' in spec.source ? spec.source.table : 'query';
}

/**
 * Reads from `spec.start`, else after the stream's bookmark in `previous`
 * (the state a previous read returned), else from the first row.
 */
export async function readSource(conn: SourceConnection, spec: ReadSpec, out: ReadOutput, previous: ReadState = { bookmarks: {} }): Promise<ReadResult> {
  const stream = out.stream ?? streamName(spec);
  const start = spec.start ?? startOf(previous, stream, spec.cursor);
  const format = out.format ?? 'ndjson';
  const streamJson = JSON.stringify(stream);
  const client = await conn.pool.connect();
  let broken = false;
  try {
    const prepared = await prepareRead(client, spec);
    const version = versionOf(prepared.cursorColumn.kind, new Date());
    const stateAt = (p: Position | undefined): ReadState =>
      p ? { ...previous, bookmarks: { ...previous.bookmarks, [stream]: bookmarkOf(p, spec.cursor, spec.key) } } : previous;
    if (format === 'singer') await out.write(schemaLine(stream, prepared.columns, spec.key, spec.cursor) + '\n');
    let position = start;
    let rows = 0;
    let pages = 0;
    for await (const page of readPages(client, prepared, start, out.signal)) {
      let text = '';
      if (format === 'singer') for (const r of page) text += recordLine(r, streamJson) + '\n';
      else for (const r of page) text += envelopeLine(r, version) + '\n';
      const last = page[page.length - 1]!;
      position = { cursor: last.cursor, key: last.key };
      if (format === 'singer') text += stateLine(stateAt(position)) + '\n';
      await out.write(text);
      rows += page.length;
      pages++;
      out.onProgress?.(rows);
    }
    return { rows, pages, columns: prepared.columns, position, state: stateAt(position) };
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    // A client whose read failed half-way may be in any state: it is not reused.
    client.release(broken);
  }
}
