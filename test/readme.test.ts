import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';

// Issue 16: the README's library snippet, run as a reader would (it lacked `import fs`).

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const ENTRY = new URL('../src/index.ts', import.meta.url).href;
const TSX = import.meta.resolve('tsx');

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await freshDatabase('readme');
  dir = mkdtempSync(join(tmpdir(), 'pgland-readme-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The README's ```ts blocks. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

describe('README (issue 16)', () => {
  it('the library snippet runs as written and lands the file', async () => {
    const blocks = tsBlocks(README);
    expect(blocks).toHaveLength(1);
    // The one change: `pgland` is this checkout's source, as the published package would be.
    const file = join(dir, 'snippet.mts');
    writeFileSync(file, blocks[0]!.replace(/from 'pgland'/, `from ${JSON.stringify(ENTRY)}`));
    writeFileSync(join(dir, 'contacts.ndjson'), ndjson(Array.from({ length: 7 }, (_, i) => contact(i))));
    const run = await promisify(execFile)(process.execPath, ['--import', TSX, file], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: db.url },
    });
    expect(run.stderr).toBe('');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pgland.crm_contacts WHERE _pgland_customer_id = 'acme'`);
    expect(rows[0].n).toBe(7);
  });
});
