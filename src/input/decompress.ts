import { createBrotliDecompress, createGunzip, createInflate, type BrotliDecompress, type Gunzip, type Inflate } from 'node:zlib';

/**
 * Bytes a decompressor hands on at a time. zlib's default (16 KiB) makes a
 * round trip to the thread pool and a new buffer for every 16 KiB of
 * output: inflating the bench's 200,000 gzipped records (123 MB) cost 370
 * ms of CPU at 16 KiB, 115-140 at 256 KiB and 105-175 at 1 MiB, whose fresh
 * buffers cost page faults instead. An HTTP batch's body or a URL source's
 * is inflated on the serve process's CPU, beside the database's.
 */
export const DECOMPRESS_CHUNK_BYTES = 256 * 1024;

export function gunzipStream(): Gunzip {
  return createGunzip({ chunkSize: DECOMPRESS_CHUNK_BYTES });
}

export function inflateStream(): Inflate {
  return createInflate({ chunkSize: DECOMPRESS_CHUNK_BYTES });
}

export function brotliStream(): BrotliDecompress {
  return createBrotliDecompress({ chunkSize: DECOMPRESS_CHUNK_BYTES });
}
