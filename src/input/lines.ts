/** One line of input, numbered from 1 as an editor would show it. */
export interface Line {
  lineNumber: number;
  text: string;
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream on newlines and decodes each line on its own. Decoding
 * line by line (rather than the stream as large strings) keeps a multi-byte
 * character from being cut at a chunk boundary and avoids building one huge
 * string. Blank lines are skipped but still counted for numbering; a trailing
 * carriage return (CRLF files) is dropped.
 */
export async function* readLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Line> {
  let carry: Buffer | null = null;
  let lineNumber = 0;
  for await (const piece of input) {
    let chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    if (carry) {
      chunk = Buffer.concat([carry, chunk]);
      carry = null;
    }
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      lineNumber++;
      const line = decode(chunk, start, nl);
      if (line !== null) yield { lineNumber, text: line };
      start = nl + 1;
    }
    if (start < chunk.length) carry = chunk.subarray(start);
  }
  if (carry && carry.length > 0) {
    lineNumber++;
    const line = decode(carry, 0, carry.length);
    if (line !== null) yield { lineNumber, text: line };
  }
}

function decode(buf: Buffer, start: number, end: number): string | null {
  if (end > start && buf[end - 1] === 0x0d) end--;
  const text = buf.toString('utf8', start, end);
  return text.trim().length === 0 ? null : text;
}
