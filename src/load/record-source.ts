import { PglandError } from '../errors.js';
import { newScanScratch } from '../input/envelope-bytes.js';
import { parseEnvelope, type Parsed } from '../input/envelope.js';
import { readLineChunks, type Line } from '../input/lines.js';
import { CancelledError, InputError, type RecordSource } from './copy-writer.js';

/** A record source over a byte stream, that also says how far it read. */
export interface LineSource extends RecordSource {
  /** The number of the last line read (blank lines count), before the offset. */
  readonly lastLine: number;
}

export interface LineSourceOptions {
  /** Aborting makes the next peek throw CancelledError, even while a read waits. */
  signal?: AbortSignal;
  /**
   * Added to every line number: an HTTP run's batches number their lines on
   * from the batches before, as if their bodies were one file.
   */
  lineOffset?: number;
  /** Lines longer than this are rejects, skipped unread (max_record_bytes; lines.ts has the default). */
  maxLineBytes?: number;
  /** The run reads columns from raw_data: its members are found as each line is scanned (envelope-bytes.ts). */
  rawMembers?: boolean;
}

/**
 * Turns NDJSON input into a peekable source of parsed lines, for the COPY
 * writer (copy-writer.ts): `pgland load`, the protocols and HTTP batches all
 * read their records through it. Lines arrive a chunk of input at a time;
 * peek() answers without a promise while the chunk lasts.
 */
export function lineSource(input: AsyncIterable<Buffer | string>, options: LineSourceOptions = {}): LineSource {
  const { signal } = options;
  const offset = options.lineOffset ?? 0;
  const rawMembers = options.rawMembers ?? false;
  // Lines stay bytes: the loader scans and encodes them without decoding them (envelope-bytes.ts).
  const chunks = readLineChunks(input, {
    bytes: true,
    lineOffset: offset,
    ...(options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes }),
  });
  let lines: Line[] = [];
  let next = 0;
  // A record is encoded before the next line is read (copy-writer.ts's fill): its scan's arrays are reused.
  const scratch = newScanScratch();
  let head: Parsed | undefined;
  let done = false;
  let lastLine = 0;
  // A read blocked on a silent input must still end when the run is cancelled.
  // One listener for the whole run rejects whichever read is waiting; racing
  // every read against one never-settling promise instead would leave a
  // reaction on it per read, retained for the whole run (1.6 GB at 1M lines).
  let rejectWaiting: ((err: Error) => void) | undefined;
  signal?.addEventListener('abort', () => rejectWaiting?.(new CancelledError('the run was cancelled')), { once: true });
  const nextChunk = (): Promise<IteratorResult<Line[]>> => {
    const read = chunks.next();
    if (!signal) return read;
    return new Promise((resolve, reject) => {
      rejectWaiting = reject;
      read.then(resolve, reject);
    });
  };
  const read = async (): Promise<Parsed | undefined> => {
    let r: IteratorResult<Line[]>;
    try {
      r = await nextChunk();
    } catch (err) {
      // The input's own errors (a body too large) keep their code and hint.
      if (err instanceof CancelledError || err instanceof InputError || err instanceof PglandError) throw err;
      throw new InputError(`reading the input failed: ${(err as Error).message}`, { cause: err });
    }
    if (r.done) {
      done = true;
      return undefined;
    }
    lines = r.value;
    next = 0;
    return source.peek();
  };
  const source: LineSource = {
    get lastLine() {
      return lastLine;
    },
    peek() {
      source.throwIfCancelled();
      if (head !== undefined || done) return head;
      if (next < lines.length) {
        const line = lines[next++]!;
        lastLine = line.lineNumber - offset;
        head = parseEnvelope(line, rawMembers, scratch);
        return head;
      }
      return read();
    },
    take() {
      head = undefined;
    },
    throwIfCancelled() {
      if (signal?.aborted) throw new CancelledError('the run was cancelled');
    },
  };
  return source;
}
