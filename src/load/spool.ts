import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A request body copied to a temporary file as it is read, so that it can
 * be read a second time without being held in memory: a held first-load
 * batch (held-run.ts) whose COPY into the landed table meets a key that is
 * already there is landed again through the merge, from the spool. The file
 * is removed by close().
 */
export class Spool {
  private constructor(
    private readonly dir: string,
    private readonly file: FileHandle,
  ) {}

  static async open(): Promise<Spool> {
    const dir = await mkdtemp(join(tmpdir(), 'pgland-spool-'));
    return new Spool(dir, await open(join(dir, 'body'), 'w', 0o600));
  }

  /** The input as it is, each chunk written to the file before it is passed on. */
  async *tee(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer | string> {
    for await (const chunk of input) {
      await this.file.write(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      yield chunk;
    }
  }

  /** What tee() passed on, read back from the file. */
  replay(): AsyncIterable<Buffer> {
    return createReadStream(join(this.dir, 'body'));
  }

  async close(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
