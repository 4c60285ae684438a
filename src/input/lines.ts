/** One line of input, numbered from 1 as an editor would show it. */
export interface Line {
  lineNumber: number;
  text: string;
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
 * Yields the lines of each input chunk together: one promise per chunk of
 * input rather than one per line (an async generator's round trip per line
 * was part of the 12% of a load's CPU profile spent in promises and
 * microtasks).
 */
export async function* readLineChunks(input: AsyncIterable<Buffer | string>): AsyncGenerator<Line[]> {
  // The start of a line that has not ended yet, kept as pieces: a line longer
  // than a chunk is joined once, when its newline arrives, not re-copied with
  // every chunk (which was quadratic in the line's length).
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lineNumber = 0;
  for await (const piece of input) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    let out: Line[] = [];
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    if (carryBytes > 0 && nl !== -1) {
      // Only the line that straddles the boundary is joined, not the whole chunk.
      carry.push(chunk.subarray(0, nl));
      const joined = Buffer.concat(carry, carryBytes + nl);
      carry = [];
      carryBytes = 0;
      lineNumber++;
      const line = decode(joined, 0, joined.length);
      if (line !== null) out.push({ lineNumber, text: line });
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    for (; nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      lineNumber++;
      const line = decode(chunk, start, nl);
      if (line !== null) out.push({ lineNumber, text: line });
      start = nl + 1;
      if (out.length === MAX_LINES_PER_YIELD) {
        // A large chunk (one big Buffer or string) is decoded as it is read, not all at once.
        yield out;
        out = [];
      }
    }
    if (start < chunk.length) {
      carry.push(chunk.subarray(start));
      carryBytes += chunk.length - start;
    }
    if (out.length > 0) yield out;
  }
  if (carryBytes > 0) {
    lineNumber++;
    const last = Buffer.concat(carry, carryBytes);
    const line = decode(last, 0, last.length);
    if (line !== null) yield [{ lineNumber, text: line }];
  }
}

/** The same, one line at a time, for readers that do little per line. */
export async function* readLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Line> {
  for await (const lines of readLineChunks(input)) yield* lines;
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
