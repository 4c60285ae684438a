import { BytesRecord } from '../input/bytes-record.js';
import { MAX_REJECT_TEXT, type RecordEnvelope } from '../input/envelope.js';
import type { ChunkPool } from '../load/copy-writer.js';
import { keptText } from './stage.js';

/**
 * The input lines of a batch's staged records, kept in Node until the batch
 * commits: a record the table refuses at merge time (bisect.ts) is kept in
 * the rejects table as the line it was sent as, as every reject is, and by
 * then the input has moved on (stdin cannot be read again). The lines are
 * copied as bytes into chunks of the run's pool (no string a line, nothing
 * left for the garbage collector at each batch), and their bytes count
 * towards the batch's batch_bytes (land.ts): a batch holds at most that much
 * of rows and lines together. Staging the line in a column instead was
 * measured and left (docs/benchmarks.md): the server then paid for COPYing,
 * writing and scanning every line, and Node kept the same bytes anyway, in
 * the batch's COPY chunks kept for a replay.
 */
export class KeptLines {
  private readonly chunks: Buffer[] = [];
  /** Bytes used of the last chunk. */
  private used = 0;
  /** Four numbers a line, in input order: its number, its chunk, its start and end in it (a typed array: no boxed number, no growth per push). */
  private index = new Float64Array(4 * 1024);
  private lines = 0;

  constructor(private readonly pool: ChunkPool) {}

  /** Keeps the record's line; returns how many bytes it took. */
  add(record: RecordEnvelope): number {
    if (record instanceof BytesRecord && record.lineBytes <= MAX_REJECT_TEXT) {
      // Read as bytes: copied as they are (a line no longer than the cut, in bytes, needs no cutting).
      const to = this.room(record.lineBytes);
      const start = this.used;
      this.used += record.src.copy(to, start, record.lineStart, record.lineStart + record.lineBytes);
      return this.note(record.lineNumber, start);
    }
    const text = keptText(record);
    const to = this.room(3 * text.length);
    const start = this.used;
    this.used += to.write(text, start, 'utf8');
    return this.note(record.lineNumber, start);
  }

  /**
   * The chunk with `n` bytes free at `used`: the last one, or a new one. A
   * kept line is at most MAX_REJECT_TEXT UTF-16 units, 192 KiB of UTF-8,
   * so it always fits a chunk of the pool (256 KiB).
   */
  private room(n: number): Buffer {
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && this.used + n <= last.length) return last;
    const chunk = this.pool.take();
    this.chunks.push(chunk);
    this.used = 0;
    return chunk;
  }

  private note(lineNumber: number, start: number): number {
    let ix = this.index;
    const at = 4 * this.lines++;
    if (at === ix.length) {
      ix = new Float64Array(2 * ix.length);
      ix.set(this.index);
      this.index = ix;
    }
    ix[at] = lineNumber;
    ix[at + 1] = this.chunks.length - 1;
    ix[at + 2] = start;
    ix[at + 3] = this.used;
    return this.used - start;
  }

  /** The line numbered `lineNumber`, if a staged record of the batch came from it. */
  get(lineNumber: number): string | undefined {
    const ix = this.index;
    let lo = 0;
    let hi = this.lines;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ix[4 * mid]! < lineNumber) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= this.lines || ix[4 * lo] !== lineNumber) return undefined;
    return this.chunks[ix[4 * lo + 1]!]!.toString('utf8', ix[4 * lo + 2], ix[4 * lo + 3]);
  }

  /** Gives the chunks back to the pool once the batch is committed (no line is asked for after). */
  release(): void {
    this.pool.give(this.chunks);
    this.chunks.length = 0;
    this.lines = 0;
    this.used = 0;
  }
}
