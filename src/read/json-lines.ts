import type { CopyRowWriter } from './copy-json.js';
import type { ReadFormat, VersionSpec } from './output.js';

/*
 * The read's output lines, written into a buffer of bytes as rows arrive and
 * handed to the sink about CHUNK bytes at a time: one write per chunk, not
 * per row or per page.
 *
 * - ndjson: pgland's input envelope (docs/input.md), so that
 *   `pgland read | pgland load` moves a table: id is the key as text,
 *   raw_data the row, last_modified_at the cursor when it is a time, else a
 *   time that orders as the cursor does (src/read/output.ts, versionOf);
 * - singer: a RECORD per row (the SCHEMA and STATE lines come as text).
 */

const CHUNK = 256 * 1024;

export type Emit = (chunk: Buffer) => void | Promise<void>;

const LAST_MODIFIED = Buffer.from(',"last_modified_at":"');
const RAW_DATA = Buffer.from('","raw_data":');

export class JsonLines {
  private buf = Buffer.allocUnsafe(2 * CHUNK);
  private at = 0;
  private readonly prefix: Buffer;
  private readonly keyAt: number;

  constructor(
    private readonly writer: CopyRowWriter,
    private readonly format: ReadFormat,
    streamJson: string,
    keyAt: number,
    private readonly version: VersionSpec,
    private readonly emit: Emit,
  ) {
    this.keyAt = keyAt;
    this.prefix = Buffer.from(format === 'singer' ? `{"type":"RECORD","stream":${streamJson},"record":` : '{"id":');
  }

  /** Writes the row just split by the writer; returns the sink's promise when a chunk was handed over. */
  row(src: Buffer): void | Promise<void> {
    const { writer } = this;
    const n = writer.lineBytes;
    // Every byte of the line may become six (\u00XX) in the id and again in the row; then the line itself, and one byte.
    this.room(this.prefix.length + 12 * n + writer.overhead + 128 + n + 1);
    const out = this.buf;
    // The line is copied once to the end of the output buffer, so that its
    // fields are copied within one buffer (copyWithin), without a view per copy.
    const line = out.length - n - 1;
    src.copy(out, line, writer.lineStart, writer.lineStart + n);
    out[line + n] = 0x5c; // a backslash after the line: a search for one stops there
    writer.moveLine(line);
    let o = this.at;
    out.set(this.prefix, o);
    o += this.prefix.length;
    if (this.format === 'ndjson') {
      o = writer.writeStringField(out, this.keyAt, out, o);
      out.set(LAST_MODIFIED, o);
      o = this.writeVersion(out, o + LAST_MODIFIED.length);
      out.set(RAW_DATA, o);
      o += RAW_DATA.length;
    }
    o = writer.writeObject(out, out, o);
    out[o++] = 0x7d; // }
    out[o++] = 0x0a;
    this.at = o;
    if (this.at >= CHUNK) return this.flush();
  }

  /** last_modified_at's time (ASCII), from the cursor's bytes when it is a time in the usual form, else from its text. */
  private writeVersion(out: Buffer, o: number): number {
    const { cursorAt, kind, of } = this.version;
    if (kind !== undefined) {
      const end = this.writer.writeVersionField(out, cursorAt, kind, out, o);
      if (end >= 0) return end;
    }
    return o + out.write(of(this.writer.text(out, cursorAt)), o, 'latin1');
  }

  /** Appends a whole line of text (a Singer SCHEMA or STATE). */
  text(line: string): void {
    const bytes = Buffer.byteLength(line) + 1;
    this.room(bytes);
    this.at += this.buf.write(line + '\n', this.at, 'utf8');
  }

  /** Hands over what is buffered. */
  flush(): void | Promise<void> {
    if (this.at === 0) return;
    const chunk = this.buf.subarray(0, this.at);
    // The sink may keep the chunk: the next rows go into a new buffer.
    this.buf = Buffer.allocUnsafe(2 * CHUNK);
    this.at = 0;
    return this.emit(chunk);
  }

  /** Makes room for `bytes` more, the line's copy included (the buffer holds twice a chunk: only a row larger than a chunk needs more). */
  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(this.at + bytes);
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
}
