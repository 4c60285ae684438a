/** An input after readAhead: the same bytes from the start, and whether all of them were read. */
export interface ReadAhead<T> {
  /** The input ended within the bytes read ahead. */
  whole: boolean;
  input: AsyncIterable<T>;
}

const sizeOf = (chunk: Buffer | string): number => (typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length);

/**
 * Reads an input ahead up to `limit` bytes (at most one chunk more), to
 * learn whether it is small before choosing how to land it; the input
 * returned yields those chunks, then the rest. Stopping it early stops the
 * input under it.
 */
export async function readAhead<T extends Buffer | string>(input: AsyncIterable<T>, limit: number): Promise<ReadAhead<T>> {
  const it = input[Symbol.asyncIterator]();
  const head: T[] = [];
  let bytes = 0;
  while (bytes <= limit) {
    const r = await it.next();
    if (r.done) return { whole: true, input: replay(head) };
    head.push(r.value);
    bytes += sizeOf(r.value);
  }
  return { whole: false, input: replay(head, it) };
}

async function* replay<T>(head: T[], rest?: AsyncIterator<T>): AsyncGenerator<T> {
  let ended = rest === undefined;
  try {
    yield* head;
    while (!ended) {
      const r = await rest!.next();
      if (r.done) ended = true;
      else yield r.value;
    }
  } finally {
    if (!ended) await rest?.return?.();
  }
}
