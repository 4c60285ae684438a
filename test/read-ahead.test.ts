import { describe, expect, it } from 'vitest';
import { readAhead } from '../src/load/read-ahead.js';

/** An input of `n` chunks of `size` bytes, counting how far it was read and whether it was stopped. */
function chunks(n: number, size: number): { input: AsyncIterable<Buffer>; read: () => number; stopped: () => boolean } {
  let read = 0;
  let stopped = false;
  async function* gen(): AsyncGenerator<Buffer> {
    try {
      for (let i = 0; i < n; i++) {
        read++;
        yield Buffer.alloc(size, 97 + (i % 26));
      }
    } finally {
      if (read < n) stopped = true;
    }
  }
  return { input: gen(), read: () => read, stopped: () => stopped };
}

async function bytesOf(input: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of input) all.push(c);
  return Buffer.concat(all);
}

describe('readAhead (a held batch: small bodies merge before their answers)', () => {
  it('an input that ends within the limit is whole, and yields every byte again', async () => {
    const src = chunks(3, 100);
    const ahead = await readAhead(src.input, 1000);
    expect(ahead.whole).toBe(true);
    expect(await bytesOf(ahead.input)).toEqual(await bytesOf(chunks(3, 100).input));
  });

  it('a longer input is read one chunk past the limit, then yields the chunks read and the rest, in order', async () => {
    const src = chunks(10, 100);
    const ahead = await readAhead(src.input, 250);
    expect(ahead.whole).toBe(false);
    expect(src.read()).toBe(3);
    expect(await bytesOf(ahead.input)).toEqual(await bytesOf(chunks(10, 100).input));
  });

  it('stopping the input returned stops the input under it', async () => {
    const src = chunks(10, 100);
    const ahead = await readAhead(src.input, 150);
    let n = 0;
    for await (const _ of ahead.input) if (++n === 4) break;
    expect(src.read()).toBe(4);
    expect(src.stopped()).toBe(true);
  });

  it('an empty input is whole; with a limit of 0, any other is not', async () => {
    expect((await readAhead(chunks(0, 1).input, 0)).whole).toBe(true);
    expect((await readAhead(chunks(1, 1).input, 0)).whole).toBe(false);
  });
});
