import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { PglandError } from '../errors.js';
import type { Bookmark, ReadState } from './output.js';
import type { Position } from './page.js';

/*
 * The state file of `pgland read --state FILE`: a Singer STATE value
 * ({"bookmarks": {stream: {...}}}), so that the same file works with Meltano.
 * It is replaced whole (written beside, then renamed), and only after the
 * read's output has been flushed: a read that fails half-way leaves the old
 * state, and the next read starts where the last complete one ended.
 */

/** `where` names the state: "state file F", or "the previous state" for a library call. */
function invalid(where: string, why: string): PglandError {
  return new PglandError('config_invalid', `${where}: ${why}`, {
    hint: 'give the file a previous read wrote, or delete it to read from the start',
  });
}

/** The state in a file; an empty one when the file does not exist yet (the first read). */
export async function readStateFile(path: string): Promise<ReadState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bookmarks: {} };
    throw invalid(`state file ${path}`, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(`state file ${path}`, 'is not valid JSON');
  }
  const bookmarks = (value as { bookmarks?: unknown } | null)?.bookmarks;
  if (typeof bookmarks !== 'object' || bookmarks === null || Array.isArray(bookmarks)) throw invalid(`state file ${path}`, 'has no "bookmarks" object');
  return value as ReadState;
}

/** Where a stream's bookmark says to start; undefined for a stream the state does not know. */
export function startOf(state: ReadState, stream: string, cursor: string, where = 'the previous state'): Position | undefined {
  const b: Bookmark | undefined = state.bookmarks[stream];
  if (!b) return undefined;
  if (typeof b.replication_key_value !== 'string') throw invalid(where, `the bookmark of "${stream}" has no replication_key_value`);
  if (b.replication_key !== cursor) {
    throw new PglandError('config_invalid', `${where}: the bookmark of "${stream}" is on column "${b.replication_key}", not "${cursor}"`, {
      hint: 'use a state file of a read with the same --cursor, or a new file to read from the start',
    });
  }
  return typeof b.key_value === 'string' ? { cursor: b.replication_key_value, key: b.key_value } : { cursor: b.replication_key_value };
}

/** Replaces the file with the new state: a reader never sees half a file. */
export async function writeStateFile(path: string, state: ReadState): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}
