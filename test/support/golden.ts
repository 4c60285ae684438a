import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** test/golden/: texts a change must show in its diff (a merge statement, a schema). */
export const GOLDEN_DIR = fileURLToPath(new URL('../golden/', import.meta.url));

/** PGLAND_UPDATE_GOLDEN=1 rewrites the golden files from what the code produces now. */
const UPDATE = process.env.PGLAND_UPDATE_GOLDEN === '1';

/**
 * Compares `text` with the golden file `name` (under test/golden/); with
 * PGLAND_UPDATE_GOLDEN=1, writes it instead, for the diff to be reviewed.
 */
export function expectGolden(name: string, text: string): void {
  const path = join(GOLDEN_DIR, name);
  if (UPDATE) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  if (!existsSync(path)) throw new Error(`test/golden/${name} is missing: run the test with PGLAND_UPDATE_GOLDEN=1 and review the new file`);
  expect(text, `test/golden/${name} differs: if the change is intended, rerun with PGLAND_UPDATE_GOLDEN=1 and review the diff`).toBe(
    readFileSync(path, 'utf8'),
  );
}

/** Golden files in `folder` that no test produced: left behind by a removed case. */
export function staleGolden(folder: string, produced: string[]): string[] {
  const dir = join(GOLDEN_DIR, folder);
  if (UPDATE || !existsSync(dir)) return [];
  const wanted = new Set(produced);
  return readdirSync(dir).filter((f) => !wanted.has(join(folder, f)));
}
