import type { SourceColumn } from './describe.js';
import { JsonLines } from './json-lines.js';
import { bookmarkOf, schemaLine, stateLine, versionSpec, type ReadFormat, type ReadState } from './output.js';
import type { Position } from './page.js';
import { prepareRead, readPages, type ReadSpec, type RowSink } from './reader.js';
import { readSnapshot } from './snapshot.js';
import { startOf } from './state.js';
import type { SourceConnection } from './source.js';

/*
 * `pgland read` as a library call: checks the source, then writes rows to
 * the caller's sink as they arrive, in chunks of whole lines. The sink's
 * promise is the back-pressure: while a chunk is being written the
 * connection is not read (src/read/copy-rows.ts), so memory holds a chunk or
 * two whatever the size of a page or of the table.
 */

export interface ReadOutput {
  format?: ReadFormat;
  /** The stream's name (Singer) and the state's bookmark key; default the table's name, or "query". */
  stream?: string;
  /** Receives text (whole lines, about 256 KB at a time); return a promise to make the read wait until it is written. */
  write(text: string): void | Promise<void>;
  /** When given, receives the same chunks as UTF-8 bytes instead of `write` (no conversion to a string): for a stream. */
  writeBytes?(chunk: Buffer): void | Promise<void>;
  /** After each page (now and then within a snapshot read): rows read so far. */
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
    const version = versionSpec(prepared.cursorColumn, prepared.codec.cursorAt, new Date());
    const stateAt = (p: Position | undefined): ReadState =>
      p ? { ...previous, bookmarks: { ...previous.bookmarks, [stream]: bookmarkOf(p, spec.cursor, spec.key) } } : previous;
    const emit = out.writeBytes ? out.writeBytes.bind(out) : (chunk: Buffer) => out.write(chunk.toString('utf8'));
    const lines = new JsonLines(prepared.writer, format, streamJson, prepared.codec.keyAt, version, emit);
    if (format === 'singer') {
      lines.text(schemaLine(stream, prepared.columns, spec.key, spec.cursor));
      await lines.flush();
    }
    const sink: RowSink = {
      row: (src) => lines.row(src),
      async pageEnd(position, rows) {
        if (format === 'singer') lines.text(stateLine(stateAt(position)));
        await lines.flush();
        out.onProgress?.(rows);
      },
      progress: (rows) => out.onProgress?.(rows),
    };
    // A first read is one unordered snapshot unless asked for pages; a read from a position is paged (keyset on (cursor, key)).
    const read =
      start === undefined && !spec.paged ? await readSnapshot(client, prepared, sink, out.signal) : await readPages(client, prepared, start, sink, out.signal);
    return { rows: read.rows, pages: read.pages, columns: prepared.columns, position: read.position ?? start, state: stateAt(read.position ?? start) };
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    // A client whose read failed half-way may be in any state: it is not reused.
    client.release(broken);
  }
}
