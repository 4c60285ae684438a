import { isUtf8 } from 'node:buffer';
import { isRecyclingInput, type RecyclingInput } from './file-chunks.js';

/** One line of input, numbered from 1 as an editor would show it. */
export interface Line {
  lineNumber: number;
  readonly text: string;
  /**
   * Set on a line longer than the reader's cap: it was skipped as it streamed,
   * never held. `text` is then only its first EXCERPT_BYTES bytes.
   */
  tooLong?: { bytes: number; limit: number };
}

/** The default cap on one line (max_record_bytes): well above the 10 MB values that land today. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
/** How much of a line longer than the cap is kept, for the reject's excerpt. */
export const EXCERPT_BYTES = 200;

export interface LineOptions {
  /** Lines longer than this many bytes (newline excluded) are skipped and yielded as `tooLong`. */
  maxLineBytes?: number;
  /** Updated as the reader runs: the most bytes it held of a line that had not ended yet. */
  stats?: { maxCarriedBytes: number };
  /**
   * Yield lines as their bytes (BytesLine), decoded only when asked: the
   * loader scans and encodes them as bytes (envelope-bytes.ts). Without it a
   * line is decoded as it is read, and holds no reference to its input chunk.
   */
  bytes?: boolean;
  /** Added to every line number (an HTTP run numbers its batches' lines on from the batches before). */
  lineOffset?: number;
}

/**
 * A line kept as the bytes it was read as: a range of an input chunk, not a
 * copy. `utf8` says whether the bytes are valid UTF-8 (checked natively, a
 * chunk at a time); only such a line may be read as bytes, any other is read
 * from its decoded text, where each invalid sequence is U+FFFD, as ever.
 */
export class BytesLine implements Line {
  private decoded: string | undefined;

  constructor(
    readonly lineNumber: number,
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
    readonly utf8: boolean,
    text?: string,
  ) {
    this.decoded = text;
  }

  get text(): string {
    return (this.decoded ??= this.buf.toString('utf8', this.start, this.end));
  }
}

const NEWLINE = 0x0a;
const MAX_LINES_PER_YIELD = 1024;

/**
 * Splits a byte stream on newlines and decodes each line on its own. Decoding
 * line by line (rather than the stream as large strings) keeps a multi-byte
 * character from being cut at a chunk boundary and avoids building one huge
 * string. Blank lines are skipped but still counted for numbering; a trailing
 * carriage return (CRLF files) is dropped.
 *
 * A line longer than maxLineBytes is never held: once it passes the cap, its
 * first bytes are kept as an excerpt and the rest is counted and dropped as it
 * streams, so the reader holds at most the cap plus the chunk in hand (a
 * 400 MB line without a newline took a server from 110 MB to 1.18 GB before).
 *
 * Yields the lines of each input chunk together: one promise per chunk of
 * input rather than one per line (an async generator's round trip per line
 * was part of the 12% of a load's CPU profile spent in promises and
 * microtasks).
 *
 * Lines read as bytes are ranges of the input's chunks. From an input that
 * recycles its chunks (file-chunks.ts), a chunk goes back to it once its
 * lines have been yielded and the consumer has asked for more, and no line
 * still being joined refers to it: a consumer must be done with a batch of
 * lines (their bytes copied or decoded) before it asks for the next.
 */
export async function* readLineChunks(input: AsyncIterable<Buffer | string>, options: LineOptions = {}): AsyncGenerator<Line[]> {
  const limit = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const stats = options.stats;
  // The start of a line that has not ended yet, kept as pieces: a line longer
  // than a chunk is joined once, when its newline arrives, not re-copied with
  // every chunk (which was quadratic in the line's length).
  let carry: Buffer[] = [];
  let carryBytes = 0;
  // The line being skipped (longer than the cap): its excerpt and length so far.
  let skipped: { excerpt: Buffer; bytes: number } | undefined;
  const asBytes = options.bytes === true;
  const recycler = isRecyclingInput(input) ? input : undefined;
  // Chunks whose lines have all been yielded, to recycle once no carried piece refers to them.
  let spent: Buffer[] = [];
  let lineNumber = options.lineOffset ?? 0;
  const tooLong = (excerpt: Buffer, bytes: number): Line => ({
    lineNumber,
    text: excerpt.toString('utf8'),
    tooLong: { bytes, limit },
  });
  /** Adds the piece of a line that has not ended to the carry, or starts skipping it once it passes the cap. */
  const hold = (piece: Buffer): void => {
    if (skipped) {
      skipped.bytes += piece.length;
      return;
    }
    if (carryBytes + piece.length > limit) {
      const head = Buffer.concat([...carry, piece.subarray(0, EXCERPT_BYTES)]);
      // A copy: the excerpt must not keep the whole chunk it came from alive.
      skipped = { excerpt: Buffer.from(head.subarray(0, EXCERPT_BYTES)), bytes: carryBytes + piece.length };
      carry = [];
      carryBytes = 0;
      return;
    }
    carry.push(piece);
    carryBytes += piece.length;
    if (stats && carryBytes > stats.maxCarriedBytes) stats.maxCarriedBytes = carryBytes;
  };
  for await (const piece of input) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    let out: Line[] = [];
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    if ((carryBytes > 0 || skipped) && nl !== -1) {
      // Only the line that straddles the boundary is joined, not the whole chunk.
      hold(chunk.subarray(0, nl));
      lineNumber++;
      if (skipped) {
        out.push(tooLong(skipped.excerpt, skipped.bytes));
        skipped = undefined;
      } else {
        const joined = Buffer.concat(carry, carryBytes);
        const line = lineOf(joined, 0, joined.length, lineNumber, asBytes, undefined);
        if (line !== null) out.push(line);
      }
      carry = [];
      carryBytes = 0;
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    // The consumer asked for more lines: it is done with the chunks before this one.
    if (recycler && spent.length > 0) spent = recycleUnheld(recycler, spent, carry);
    // Whether the chunk's whole lines are valid UTF-8: one native check for
    // all of them (a newline is never inside a multi-byte character).
    const valid = asBytes && nl !== -1 ? isUtf8(chunk.subarray(start, chunk.lastIndexOf(NEWLINE))) : undefined;
    for (; nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      lineNumber++;
      if (nl - start > limit) {
        out.push(tooLong(Buffer.from(chunk.subarray(start, start + EXCERPT_BYTES)), nl - start));
      } else {
        const line = lineOf(chunk, start, nl, lineNumber, asBytes, valid);
        if (line !== null) out.push(line);
      }
      start = nl + 1;
      if (out.length === MAX_LINES_PER_YIELD) {
        // A large chunk (one big Buffer or string) is decoded as it is read, not all at once.
        yield out;
        out = [];
      }
    }
    if (start < chunk.length) hold(chunk.subarray(start));
    if (recycler) spent.push(chunk);
    if (out.length > 0) yield out;
  }
  if (skipped) {
    lineNumber++;
    yield [tooLong(skipped.excerpt, skipped.bytes)];
  } else if (carryBytes > 0) {
    lineNumber++;
    const last = Buffer.concat(carry, carryBytes);
    const line = lineOf(last, 0, last.length, lineNumber, asBytes, undefined);
    if (line !== null) yield [line];
  }
}

/** Hands back the chunks no carried piece refers to; returns the others, to keep. */
function recycleUnheld(recycler: RecyclingInput, spent: Buffer[], carry: Buffer[]): Buffer[] {
  const kept: Buffer[] = [];
  for (const chunk of spent) {
    if (carry.some((piece) => piece.buffer === chunk.buffer)) kept.push(chunk);
    else recycler.recycle(chunk);
  }
  return kept;
}

/** The same, one line at a time, for readers that do little per line. */
export async function* readLines(input: AsyncIterable<Buffer | string>, options: LineOptions = {}): AsyncGenerator<Line> {
  for await (const lines of readLineChunks(input, options)) yield* lines;
}

/**
 * The line of buf[start, end), or null when it is blank. `valid`: whether the
 * bytes are known to be valid UTF-8 (undefined: not checked yet).
 */
function lineOf(buf: Buffer, start: number, end: number, lineNumber: number, asBytes: boolean, valid: boolean | undefined): Line | null {
  if (end > start && buf[end - 1] === 0x0d) end--;
  // A line that starts with a printable ASCII character (a JSON line starts
  // with "{") is not blank: only other lines are decoded here, for trim().
  const first = buf[start];
  let text: string | undefined;
  if (first === undefined || first <= 0x20 || first >= 0x7f || !asBytes) {
    text = buf.toString('utf8', start, end);
    const c = text.charCodeAt(0);
    if (!(c > 0x20 && c < 0x7f) && text.trim().length === 0) return null;
    if (!asBytes) return { lineNumber, text };
  }
  return new BytesLine(lineNumber, buf, start, end, valid === true || isUtf8(buf.subarray(start, end)), text);
}
