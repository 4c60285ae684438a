import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * A command's NDJSON input: stdin for "-", else the file, read 256 KiB at a
 * time. Each read is a round trip to libuv's thread pool and a new Buffer;
 * at the default 64 KiB, reading a 620 MB first load cost Node two to three
 * times the CPU of 256 KiB reads (bench/encode.ts's read stage), and larger
 * reads gave nothing more.
 */
export function openInput(path: string): Readable {
  return path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 256 * 1024 });
}
