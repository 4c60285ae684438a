import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileChunks } from '../src/input/file-chunks.js';
import { BytesLine, readLineChunks } from '../src/input/lines.js';

const dir = mkdtempSync(join(tmpdir(), 'pgland-file-chunks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lines of many lengths (some longer than several chunks), with multi-byte characters. */
function sampleLines(n: number, seed: number): string[] {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  return Array.from({ length: n }, (_, i) => {
    const len = rand() < 0.1 ? Math.floor(rand() * 300) : Math.floor(rand() * 40);
    return `{"n":${i},"s":"${'é€x'.repeat(len)}"}`;
  });
}

/** Reads the file as the loader does, copying each line's text before asking for more, as consumers must. */
async function readBack(path: string, chunkBytes: number): Promise<{ texts: string[]; numbers: number[]; recycled: number }> {
  const file = readFileChunks(path, chunkBytes);
  let recycled = 0;
  const recycle = file.recycle.bind(file);
  file.recycle = (chunk) => {
    recycled++;
    recycle(chunk);
  };
  const texts: string[] = [];
  const numbers: number[] = [];
  for await (const lines of readLineChunks(file, { bytes: true })) {
    for (const line of lines) {
      expect(line).toBeInstanceOf(BytesLine);
      texts.push(line.text);
      numbers.push(line.lineNumber);
    }
  }
  return { texts, numbers, recycled };
}

describe('readFileChunks: a file read into reused buffers', () => {
  it('gives every line whole and in order when lines straddle chunks and outlast several of them', async () => {
    const lines = sampleLines(600, 7);
    const path = join(dir, 'sample.ndjson');
    writeFileSync(path, lines.join('\n') + '\n');
    for (const chunkBytes of [7, 64, 1000, 4096]) {
      const got = await readBack(path, chunkBytes);
      expect(got.texts).toEqual(lines);
      expect(got.numbers).toEqual(lines.map((_, i) => i + 1));
      // Buffers were handed back, so later reads went into reused memory.
      expect(got.recycled).toBeGreaterThan(10);
    }
  });

  it('keeps the last line without a newline, and blank lines counted', async () => {
    const path = join(dir, 'tail.ndjson');
    writeFileSync(path, '{"a":1}\n\n\r\n{"b":2}\r\n{"c":3}');
    const got = await readBack(path, 5);
    expect(got.texts).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(got.numbers).toEqual([1, 4, 5]);
  });

  it('fails with the file system error for a missing file, and closes the file when left early', async () => {
    await expect(readBack(join(dir, 'missing.ndjson'), 64)).rejects.toMatchObject({ code: 'ENOENT' });
    const path = join(dir, 'early.ndjson');
    writeFileSync(path, sampleLines(500, 3).join('\n'));
    const file = readFileChunks(path, 64);
    const first = await file.next();
    expect(first.done).toBe(false);
    await file.return();
    // Ended: nothing more, and no read still under way on a closed file.
    expect(await file.next()).toEqual({ done: true, value: undefined });
  });
});
