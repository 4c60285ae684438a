import type { CopyRowWriter } from './copy-json.js';
import type { ReadFormat, VersionOf } from './output.js';

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
    private readonly version: VersionOf,
    private readonly emit: Emit,
  ) {
    this.keyAt = keyAt;
    this.prefix = Buffer.from(format === 'singer' ? `{"type":"RECORD","stream":${streamJson},"record":` : '{"id":');
  }

  /** Writes the row just split by the writer; returns the sink's promise when a chunk was handed over. */
  row(cursor: string, line: Buffer): void | Promise<void> {
    // Every byte of the line may become six (\u00XX) in the id and again in the row.
    this.room(this.prefix.length + 12 * this.writer.lineBytes + this.writer.overhead + 128);
    const out = this.buf;
    let o = this.at;
    o += this.prefix.copy(out, o);
    if (this.format === 'ndjson') {
      o = this.writer.writeStringField(line, this.keyAt, out, o);
      o += out.write(`,"last_modified_at":"${this.version(cursor)}","raw_data":`, o, 'latin1');
    }
    o = this.writer.writeObject(line, out, o);
    out[o++] = 0x7d; // }
    out[o++] = 0x0a;
    this.at = o;
    if (this.at >= CHUNK) return this.flush();
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

  /** Makes room for `bytes` more (the buffer holds twice a chunk: only a row larger than a chunk needs more). */
  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(this.at + bytes);
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
}
