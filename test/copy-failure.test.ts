import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, quoteIdent, type Destination, type LoadResult } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { until } from './support/until.js';
import { contact, ndjson, streamOf } from './support/records.js';

let db: TestDatabase;
const opened: Destination[] = [];

beforeAll(async () => {
  db = await freshDatabase('copy_failure');
});
afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await db?.drop();
});

/**
 * A destination of its own per test (its own schema). batch_retries is 0: these
 * tests are about the failed batch leaving nothing behind, not about replaying it.
 */
async function destination(schema: string, extra: Record<string, unknown> = {}): Promise<Destination> {
  const dest = await openDestination(db.config({ schema, batch_retries: 0, ...extra }));
  opened.push(dest);
  return dest;
}

const tenant = { kind: 'common' as const, object: 'crm_contacts', provider: 'salesforce', customerId: 'acme' };

/** Every column of every row of the landed table, in key order. */
async function snapshot(schema: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(`SELECT * FROM ${quoteIdent(schema)}.crm_contacts ORDER BY _pgland_provider, _pgland_customer_id, id`);
  return rows;
}

interface RunRecord {
  status: string;
  error: string | null;
  finished_at: Date | null;
  batches: number;
  rows_read: number;
  rows_inserted: number;
  rows_updated: number;
  rows_rejected: number;
}

async function runRow(schema: string, runId: string): Promise<RunRecord> {
  const { rows } = await db.pool.query<RunRecord>(
    `SELECT status, error, finished_at, batches, rows_read::int, rows_inserted::int, rows_updated::int, rows_rejected::int
       FROM ${quoteIdent(schema)}._pgland_runs WHERE run_id = $1`,
    [runId],
  );
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

/** An input that delivers `text` in pieces, then fails as a broken socket or file would. */
function failingInput(text: string, error: Error, piece = 16 * 1024): Readable {
  const buf = Buffer.from(text, 'utf8');
  let at = 0;
  return new Readable({
    read() {
      if (at < buf.length) {
        this.push(buf.subarray(at, at + piece));
        at += piece;
      } else {
        this.destroy(error);
      }
    },
  });
}

/** 100 landed contacts to start from. */
async function seed(dest: Destination): Promise<void> {
  const r = await dest.load({ ...tenant, input: streamOf(Array.from({ length: 100 }, (_, i) => contact(i))) });
  expect(r.error?.message).toBeUndefined();
  expect(r.status).toBe('succeeded');
}

/** Updates of landed records, new records and a reject, in one stream. */
function changes(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    if (n % 17 === 0) return `{"id": "broken line ${n}"`;
    return JSON.stringify(contact(n, 2, { lifecycle_stage: 'x'.repeat(200) }));
  });
}

describe('a COPY that fails midway (issue 2)', () => {
  it('leaves the table exactly as it was when the input stream errors inside the batch', async () => {
    const dest = await destination('input_error', { batch_size: 100_000 });
    await seed(dest);
    const before = await snapshot('input_error');

    // About 2 MB: several 256 KiB writes have gone into the COPY when the input breaks.
    const lines = changes(50, 4000);
    const text = ndjson(lines);
    const cut = text.slice(0, Math.floor(text.length * 0.9)); // ends inside a line
    const result: LoadResult = await dest.load({ ...tenant, input: failingInput(cut, new Error('socket hang up (test input)')) });

    expect(result.status).toBe('failed');
    expect(result.error?.message).toMatch(/socket hang up \(test input\)/);
    expect(result.counts.batches).toBe(0);
    expect(await snapshot('input_error')).toEqual(before);

    const run = await runRow('input_error', result.runId);
    expect(run).toMatchObject({ status: 'failed', batches: 0, rows_read: 0, rows_inserted: 0, rows_updated: 0, rows_rejected: 0 });
    expect(run.error).toMatch(/socket hang up \(test input\)/);
    expect(run.finished_at).toBeInstanceOf(Date);
    // The failed batch's rejects rolled back with it.
    const rejects = await db.pool.query(`SELECT 1 FROM input_error._pgland_rejects WHERE run_id = $1`, [result.runId]);
    expect(rejects.rowCount).toBe(0);
    // The connection the failure happened on is not handed out again broken.
    const again = await dest.load({ ...tenant, input: streamOf([contact(5000)]) });
    expect(again.status).toBe('succeeded');
  });

  it('keeps the batches committed before the failing one, and nothing of the failing one', async () => {
    const dest = await destination('earlier_batches', { batch_size: 100 });
    await seed(dest);
    const before = new Map((await snapshot('earlier_batches')).map((r) => [r.id as string, r]));

    // A batch holds 100 records (rejects ride along without counting), so
    // two batches commit and the input breaks inside the third.
    const lines = changes(50, 250);
    const isReject = (l: string): boolean => l.startsWith('{"id": "broken');
    let inCommitted = 0;
    for (let valid = 0; valid < 200; inCommitted++) if (!isReject(lines[inCommitted]!)) valid++;
    const result = await dest.load({ ...tenant, input: failingInput(ndjson(lines), new Error('upstream went away (test input)'), 4096) });

    expect(result.status).toBe('failed');
    expect(result.error?.message).toMatch(/upstream went away/);
    expect(result.counts.batches).toBe(2);
    expect(result.counts.rowsRead).toBe(inCommitted);

    const idsOf = (ls: string[]): Set<string> => new Set(ls.filter((l) => !isReject(l)).map((l) => (JSON.parse(l) as { id: string }).id));
    const committed = idsOf(lines.slice(0, inCommitted));
    const failed = idsOf(lines.slice(inCommitted));
    expect(committed.size).toBe(200);
    expect(failed.size).toBeGreaterThan(0);
    const after = await snapshot('earlier_batches');
    const afterIds = new Set(after.map((r) => r.id as string));
    for (const row of after) {
      const id = row.id as string;
      if (committed.has(id)) {
        expect(row.last_name).toMatch(/ v2$/);
        expect(row._pgland_run_id).toBe(result.runId);
      } else {
        expect(row).toEqual(before.get(id));
      }
    }
    for (const id of committed) expect(afterIds.has(id)).toBe(true);
    // New records of the failing batch did not land; landed ones it would have updated kept their old version.
    for (const id of failed) expect(afterIds.has(id)).toBe(before.has(id));
    expect(after).toHaveLength(new Set([...before.keys(), ...committed]).size);

    const run = await runRow('earlier_batches', result.runId);
    const rejectedInCommitted = lines.slice(0, inCommitted).filter(isReject).length;
    expect(rejectedInCommitted).toBeGreaterThan(0);
    expect(run).toMatchObject({ status: 'failed', batches: 2, rows_read: inCommitted, rows_rejected: rejectedInCommitted });
    expect(run.rows_inserted + run.rows_updated).toBe(committed.size);
    expect(run.error).toMatch(/upstream went away/);
    const rejects = await db.pool.query<{ line_number: string }>(
      `SELECT line_number FROM earlier_batches._pgland_rejects WHERE run_id = $1 ORDER BY line_number`,
      [result.runId],
    );
    expect(rejects.rows.every((r) => Number(r.line_number) <= inCommitted)).toBe(true);
    expect(rejects.rowCount).toBe(rejectedInCommitted);
  });

  it('leaves the table exactly as it was when the backend is terminated during the COPY', async () => {
    const appName = `pgland-kill-${randomBytes(4).toString('hex')}`;
    const dest = await destination('terminated', { batch_size: 100_000, application_name: appName });
    await seed(dest);
    const before = await snapshot('terminated');

    // The input sends part of a batch, then holds the COPY open until the backend is gone.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const lines = changes(50, 4000);
    async function* slowInput(): AsyncGenerator<string> {
      yield ndjson(lines.slice(0, 2000));
      await gate;
      yield ndjson(lines.slice(2000));
    }
    const loading = dest.load({ ...tenant, input: slowInput() });

    const pid = await until(
      'the loader to start its COPY',
      async () => {
        const { rows } = await db.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY %'`,
          [appName],
        );
        return rows[0]?.pid;
      },
      20_000,
    );
    const killed = await db.pool.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
    expect(killed.rows[0]!.ok).toBe(true);
    release();

    const result = await loading;
    expect(result.status).toBe('failed');
    expect(result.error).toBeDefined();
    expect(await snapshot('terminated')).toEqual(before);
    const run = await runRow('terminated', result.runId);
    expect(run).toMatchObject({ status: 'failed', batches: 0, rows_read: 0, rows_inserted: 0, rows_updated: 0 });
    // The recorded error is the lost connection (the server's FATAL, or the socket's
    // EPIPE/ECONNRESET, whichever the client sees first), not a follow-on failure
    // of the dead COPY stream such as pg-copy-streams' TypeError on a null connection.
    const lost = /terminat|EPIPE|ECONNRESET|connection/i;
    expect(result.error?.message).toMatch(lost);
    expect(result.error?.message).not.toMatch(/Cannot read properties/);
    expect(run.error).toMatch(lost);
    expect(run.finished_at).toBeInstanceOf(Date);

    // The pool recovers: the next run lands on a new connection.
    const again = await dest.load({ ...tenant, input: streamOf([contact(6000)]) });
    expect(again.status).toBe('succeeded');
  });
});
