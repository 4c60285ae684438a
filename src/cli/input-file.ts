import { readFileChunks } from '../input/file-chunks.js';

/** A command's NDJSON input, and how to let go of it when the command ends early. */
export interface CommandInput {
  input: AsyncIterable<Buffer | string>;
  /** Closes the file if it is still open (a run refused before reading, or failed half way). */
  close(): Promise<void>;
}

/**
 * A command's NDJSON input: stdin for "-", else the file, read a chunk ahead
 * into buffers that are reused once their lines are encoded (file-chunks.ts).
 * Each read is a round trip to libuv's thread pool: at 64 KiB, reading a
 * 620 MB first load cost Node two to three times the CPU of 256 KiB reads,
 * and a new buffer per read most of the rest.
 */
export function openInput(path: string): CommandInput {
  if (path === '-') return { input: process.stdin, close: async () => undefined };
  const file = readFileChunks(path);
  return { input: file, close: async () => void (await file.return()) };
}
