/** One line of input, numbered from 1 as an editor would show it. */
export interface Line {
  lineNumber: number;
  text: string;
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
  let lineNumber = 0;
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
        const line = decode(joined, 0, joined.length);
        if (line !== null) out.push({ lineNumber, text: line });
      }
      carry = [];
      carryBytes = 0;
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    for (; nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      lineNumber++;
      if (nl - start > limit) {
        out.push(tooLong(Buffer.from(chunk.subarray(start, start + EXCERPT_BYTES)), nl - start));
      } else {
        const line = decode(chunk, start, nl);
        if (line !== null) out.push({ lineNumber, text: line });
      }
      start = nl + 1;
      if (out.length === MAX_LINES_PER_YIELD) {
        // A large chunk (one big Buffer or string) is decoded as it is read, not all at once.
        yield out;
        out = [];
      }
    }
    if (start < chunk.length) hold(chunk.subarray(start));
    if (out.length > 0) yield out;
  }
  if (skipped) {
    lineNumber++;
    yield [tooLong(skipped.excerpt, skipped.bytes)];
  } else if (carryBytes > 0) {
    lineNumber++;
    const last = Buffer.concat(carry, carryBytes);
    const line = decode(last, 0, last.length);
    if (line !== null) yield [{ lineNumber, text: line }];
  }
}

/** The same, one line at a time, for readers that do little per line. */
export async function* readLines(input: AsyncIterable<Buffer | string>, options: LineOptions = {}): AsyncGenerator<Line> {
  for await (const lines of readLineChunks(input, options)) yield* lines;
}

function decode(buf: Buffer, start: number, end: number): string | null {
  if (end > start && buf[end - 1] === 0x0d) end--;
  const text = buf.toString('utf8', start, end);
  // A line that starts with a printable ASCII character (a JSON line starts
  // with "{") is not blank: only other lines pay for trim().
  const first = text.charCodeAt(0);
  if (first > 0x20 && first < 0x7f) return text;
  return text.trim().length === 0 ? null : text;
}
