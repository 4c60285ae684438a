import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { spawnCli } from './support/cli.js';
import { until } from './support/until.js';
import { contact, ndjson } from './support/records.js';

// Issue 4: a loader killed with SIGKILL mid-COPY, mid-merge or between batches
// leaves no partial batch and no stale lock; the next run completes the data.

const TOTAL = 200_000;
const BATCH = 20_000;
let db: TestDatabase;
let lines: string[];
let dir: string;

beforeAll(async () => {
  db = await freshDatabase('kill');
  dir = mkdtempSync(join(tmpdir(), 'pgland-kill-'));
  lines = ndjson(Array.from({ length: TOTAL }, (_, i) => contact(i, 2)))
    .trimEnd()
    .split('\n');
  // The expected state: the same input loaded once, undisturbed.
  const d = await openDestination(db.config({ schema: 'expected', batch_size: BATCH }));
  const r = await d.load({ kind: 'common', object: 'crm_contacts', provider: 'p', customerId: 'c', input: Readable.from([lines.join('\n') + '\n']) });
  expect(r.counts.inserted).toBe(TOTAL);
  await d.close();
}, 300_000);
afterAll(async () => {
  await db?.drop();
});

/** A checksum over every column except when and by which run a row was written. */
async function checksum(schema: string): Promise<{ n: number; sum: string }> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n,
            md5(string_agg((to_jsonb(t) - '_pgland_landed_at' - '_pgland_run_id')::text, '|' ORDER BY id)) AS sum
       FROM ${schema}.crm_contacts t`,
  );
  return rows[0];
}

function configFile(schema: string): string {
  const path = join(dir, `${schema}.json`);
  writeFileSync(path, JSON.stringify(db.config({ schema, batch_size: BATCH, application_name: `pgland-kill-${schema}` })));
  return path;
}

function startLoad(schema: string) {
  return spawnCli(['load', '--config', configFile(schema), '--provider', 'p', '--customer', 'c', '--object', 'crm_contacts', '--input', '-']);
}

async function committedBatches(schema: string): Promise<number> {
  const { rows } = await db.pool
    .query(`SELECT coalesce(max(batches), 0)::int AS n FROM ${schema}._pgland_runs WHERE status = 'running'`)
    .catch(() => ({ rows: [{ n: 0 }] }));
  return rows[0].n;
}

/** The loader's backends: its run's connection and, from the second batch of a merged run on, its helper (issue 8). */
async function backends(schema: string): Promise<{ query: string; state: string; wait_event_type: string | null }[]> {
  const { rows } = await db.pool.query(`SELECT query, state, wait_event_type FROM pg_stat_activity WHERE application_name = $1`, [`pgland-kill-${schema}`]);
  return rows;
}

/** Writes lines to the child's stdin without closing it. */
function feed(child: ReturnType<typeof startLoad>['child'], from: number, to: number): void {
  child.stdin!.write(lines.slice(from, to).join('\n') + '\n');
}

async function rerunAndCompare(schema: string): Promise<void> {
  const { child, done } = startLoad(schema);
  child.stdin!.end(lines.join('\n') + '\n');
  const r = await done;
  expect(r.stderr).not.toMatch(/object_locked|another run/);
  expect(r.code).toBe(0);
  expect(await checksum(schema)).toEqual(await checksum('expected'));
  const { rows } = await db.pool.query(`SELECT status FROM ${schema}._pgland_runs ORDER BY started_at`);
  expect(rows.map((x) => x.status)).toEqual(['abandoned', 'succeeded']);
}

describe('SIGKILL recovery (issue 4)', () => {
  it('killed between batches: committed batches stay, nothing partial, the re-run completes exactly', async () => {
    const schema = 'k_between';
    const { child, done } = startLoad(schema);
    feed(child, 0, 2 * BATCH);
    // Two batches committed; the loader now waits on its input with no transaction open.
    await until('two committed batches', async () => (await committedBatches(schema)) === 2);
    await until('the loader to wait for input', async () => {
      const b = await backends(schema);
      return b.length > 0 && b.every((x) => x.state === 'idle');
    });
    child.kill('SIGKILL');
    await done;
    expect((await checksum(schema)).n).toBe(2 * BATCH);
    await rerunAndCompare(schema);
  });

  it('killed during COPY: the open batch leaves nothing behind', async () => {
    const schema = 'k_copy';
    const { child, done } = startLoad(schema);
    feed(child, 0, 2 * BATCH + BATCH / 2);
    await until('the third batch to be copying', async () => {
      const b = await backends(schema);
      return (await committedBatches(schema)) === 2 && b.some((x) => x.query.startsWith('COPY') && x.state === 'active');
    });
    child.kill('SIGKILL');
    await done;
    expect((await checksum(schema)).n).toBe(2 * BATCH);
    await rerunAndCompare(schema);
  });

  it('killed during the merge: the batch rolls back', async () => {
    const schema = 'k_merge';
    // A row the third batch will update, locked by us so that its merge waits.
    const seed = await openDestination(db.config({ schema }));
    await seed.load({
      kind: 'common',
      object: 'crm_contacts',
      provider: 'p',
      customerId: 'c',
      input: Readable.from([JSON.stringify(contact(2 * BATCH + 5, 1)) + '\n']),
    });
    await seed.close();
    const locker: pg.PoolClient = await db.pool.connect();
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM ${schema}.crm_contacts WHERE id = $1 FOR UPDATE`, [contact(2 * BATCH + 5).id]);
    try {
      const { child, done } = startLoad(schema);
      feed(child, 0, 3 * BATCH);
      await until('the third batch to wait in its merge', async () => {
        const b = await backends(schema);
        return b.some((x) => x.query.startsWith('WITH src') && x.wait_event_type === 'Lock');
      });
      child.kill('SIGKILL');
      await done;
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    const c = await checksum(schema);
    expect(c.n).toBe(2 * BATCH + 1);
    const kept = await db.pool.query(`SELECT last_name FROM ${schema}.crm_contacts WHERE id = $1`, [contact(2 * BATCH + 5).id]);
    expect(kept.rows[0].last_name).toMatch(/ v1$/);
    // The seeding run succeeded; the killed one is abandoned; the re-run succeeds.
    const { child, done } = startLoad(schema);
    child.stdin!.end(lines.join('\n') + '\n');
    const r = await done;
    expect(r.code).toBe(0);
    expect(await checksum(schema)).toEqual(await checksum('expected'));
    const { rows } = await db.pool.query(`SELECT status FROM ${schema}._pgland_runs ORDER BY started_at`);
    expect(rows.map((x) => x.status)).toEqual(['succeeded', 'abandoned', 'succeeded']);
  });
});
