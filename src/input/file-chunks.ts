import { open, type FileHandle } from 'node:fs/promises';

/**
 * An input whose chunks may be handed back once nothing refers to them any
 * more (readLineChunks does, lines.ts): the next reads go into the same
 * memory instead of new buffers.
 */
export interface RecyclingInput {
  /** `chunk` (as yielded) is no longer read by anyone: its memory may be read into again. */
  recycle(chunk: Buffer): void;
}

export function isRecyclingInput<T>(input: T): input is T & RecyclingInput {
  return typeof (input as Partial<RecyclingInput>).recycle === 'function';
}

/** A file read as recycled chunks; return() closes it (also when it was never read to its end). */
export interface FileChunks extends RecyclingInput, AsyncIterableIterator<Buffer> {
  return(): Promise<IteratorResult<Buffer>>;
  /** The file's path, as given. */
  readonly path: string;
}

const FILE_CHUNKS = Symbol('pgland.fileChunks');

/** Whether `input` is a file opened by readFileChunks (fileInput in the library): a load closes it when it ends. */
export function isFileChunks(input: unknown): input is FileChunks {
  return typeof input === 'object' && input !== null && FILE_CHUNKS in input;
}

/** Bytes a read asks for: large reads are fewer round trips to libuv's thread pool. */
export const FILE_CHUNK_BYTES = 1024 * 1024;
/** Buffers kept for reuse: the chunk in hand, one a line straddles, and the one being read ahead. */
const MAX_FREE = 4;

/**
 * A file's bytes, read a chunk ahead of the reader into buffers that come
 * back through recycle(). Reading a 620 MB first load into a new buffer per
 * read cost Node 0.4 to 0.9 CPU-seconds, most of it the kernel handing out
 * and zeroing fresh pages; into reused buffers, 0.06 to 0.15 (a read-only
 * loop over the bench's 1M-record file, 256 KiB and 1 MiB reads). A reader
 * that never recycles still works: every read then gets a new buffer.
 */
export function readFileChunks(path: string, chunkBytes = FILE_CHUNK_BYTES): FileChunks {
  const free: ArrayBuffer[] = [];
  let file: Promise<FileHandle> | undefined;
  let ahead: Promise<Buffer | undefined> | undefined;
  let ended = false;

  const readOne = async (): Promise<Buffer | undefined> => {
    file ??= open(path, 'r');
    const fh = await file;
    const memory = free.pop();
    const buf = memory === undefined ? Buffer.allocUnsafeSlow(chunkBytes) : Buffer.from(memory, 0, chunkBytes);
    const { bytesRead } = await fh.read(buf, 0, chunkBytes, null);
    if (bytesRead === 0) {
      free.push(buf.buffer as ArrayBuffer);
      return undefined;
    }
    return buf.subarray(0, bytesRead);
  };

  const close = async (): Promise<void> => {
    ended = true;
    const fh = file;
    file = undefined;
    // A read still under way finishes before its file closes.
    await ahead?.catch(() => undefined);
    ahead = undefined;
    if (fh) await (await fh.catch(() => undefined))?.close();
  };

  const reader: FileChunks & { [FILE_CHUNKS]: true } = {
    [FILE_CHUNKS]: true,
    path,
    [Symbol.asyncIterator]() {
      return reader;
    },
    async next(): Promise<IteratorResult<Buffer>> {
      if (ended) return { done: true, value: undefined };
      let chunk: Buffer | undefined;
      try {
        chunk = await (ahead ?? readOne());
        ahead = undefined;
      } catch (err) {
        ahead = undefined;
        await close();
        throw err;
      }
      if (chunk === undefined) {
        await close();
        return { done: true, value: undefined };
      }
      // The next read runs in the thread pool while this chunk is split and encoded.
      ahead = readOne();
      ahead.catch(() => undefined);
      return { done: false, value: chunk };
    },
    async return(): Promise<IteratorResult<Buffer>> {
      await close();
      return { done: true, value: undefined };
    },
    recycle(chunk: Buffer): void {
      const memory = chunk.buffer as ArrayBuffer;
      if (memory.byteLength === chunkBytes && free.length < MAX_FREE && !free.includes(memory)) free.push(memory);
    },
  };
  return reader;
}
