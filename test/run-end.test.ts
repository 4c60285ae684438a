import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';
import { until } from './support/until.js';

// Issue 20: an incremental run ends in the transaction of its last batch
// (src/load/loader.ts, LastBatch): one COMMIT for both.

let db: TestDatabase;
let dest: Destination;
beforeAll(async () => {
  db = await freshDatabase('run_end');
  dest = await openDestination(db.config({ schema: 'run_end', batch_size: 5 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

function contacts(n: number, version: number, from = 0): unknown[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `c${from + i}`,
    last_modified_at: `2026-05-${String(version).padStart(2, '0')}T00:00:00Z`,
    raw_data: { email: `c${from + i}@example.com`, firstname: `v${version}` },
  }));
}

const load = (customerId: string, records: unknown[], mode: 'incremental' | 'full' = 'incremental') =>
  dest.load({ kind: 'common', object: 'crm_contacts', provider: 'hubspot', customerId, mode, input: streamOf(records) });

/** The statements sent while fn runs (pg.Client.prototype.query), as text. */
async function statements<T>(fn: () => Promise<T>, onQuery?: (text: string, client: pg.Client, run: () => Promise<unknown>) => Promise<unknown> | undefined) {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = proto.query;
  const sent: string[] = [];
  proto.query = function (this: pg.Client, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    const text = typeof q === 'string' ? q : (q.text ?? '');
    sent.push(text);
    const run = () => query.apply(this, args) as Promise<unknown>;
    return onQuery?.(text, this, run) ?? run();
  };
  try {
    return { result: await fn(), sent };
  } finally {
    proto.query = query;
  }
}

const commits = (sent: string[]) => sent.filter((t) => /\bCOMMIT\s*$/i.test(t.trim())).length;

async function runRow(runId: string) {
  const { rows } = await db.pool.query(`SELECT status, rows_inserted, rows_updated, rows_rejected FROM run_end._pgland_runs WHERE run_id = $1`, [runId]);
  return rows[0];
}

async function leases(customerId: string): Promise<number> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM run_end._pgland_leases WHERE customer_id = $1`, [customerId]);
  return rows[0].n;
}

async function watermark(customerId: string): Promise<string | null> {
  const { rows } = await db.pool.query(
    `SELECT to_char(high_water_mark AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d FROM run_end._pgland_watermarks WHERE customer_id = $1`,
    [customerId],
  );
  return rows[0]?.d ?? null;
}

describe("an incremental run's end in its last batch", () => {
  it('a one-batch increment commits once: the batch, the status, the watermark and the lease together', async () => {
    // Two runs first: after the second, this process remembers the table as up to date, and checks it without a transaction.
    expect((await load('one', contacts(4, 1))).status).toBe('succeeded');
    expect((await load('one', contacts(4, 2))).status).toBe('succeeded');
    const { result, sent } = await statements(() => load('one', contacts(4, 3)));
    expect(result.status).toBe('succeeded');
    expect(result.counts.updated).toBe(4);
    expect(commits(sent)).toBe(1);
    expect(await runRow(result.runId)).toMatchObject({ status: 'succeeded', rows_updated: '4' });
    expect(await watermark('one')).toBe('2026-05-03');
    expect(await leases('one')).toBe(0);
  });

  it('a run of several batches ends in the last one, which reads the end of the input', async () => {
    // 12 records in batches of 5: three batches, three commits, no fourth transaction.
    const { result, sent } = await statements(() => load('many', contacts(12, 1)));
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ inserted: 12, batches: 3 });
    expect(commits(sent)).toBe(3);
    expect(await watermark('many')).toBe('2026-05-01');
    expect(await leases('many')).toBe(0);
  });

  const pipeTables = async (): Promise<number> =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'run_end' AND tablename LIKE '\\_pgland\\_pipe\\_%'`)).rows[0].n;

  // 12 records: the last batch reads the end itself; 10: it fills up just as the input ends, and the helper's read of the next finds nothing.
  it.each([
    ['pipe', 12, 3],
    ['pipe-even', 10, 2],
  ])('a pipelined increment (%s) ends in the merge of its last batch, which drops the staging tables in the same round trip', async (customer, n, batches) => {
    expect((await load(customer, contacts(n, 1))).status).toBe('succeeded');
    const { result, sent } = await statements(() => load(customer, contacts(n, 2)));
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ updated: n, batches });
    // The run's end is sent once, with the last batch's DROP and COMMIT; no transaction of its own, no DROP after it.
    const ends = sent.filter((t) => /_pgland_watermarks/.test(t));
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatch(/^DROP TABLE IF EXISTS [^;]+; WITH fence AS \(DELETE[\s\S]*; COMMIT$/);
    expect(sent.filter((t) => /^DROP TABLE/.test(t))).toHaveLength(1);
    expect(await pipeTables()).toBe(0);
    expect(await watermark(customer)).toBe('2026-05-02');
    expect(await leases(customer)).toBe(0);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM run_end.crm_contacts WHERE _pgland_customer_id = $1 AND _pgland_raw_data->>'firstname' = 'v2'`,
      [customer],
    );
    expect(rows[0].n).toBe(n);
  });

  it('a pipelined increment stages batch 2 on the helper while batch 1 merges', async () => {
    expect((await load('overlap', contacts(12, 1))).status).toBe('succeeded');
    // Batch 1's merge (from the run's temporary stage) is held until the helper has begun batch 2's COPY:
    // one waiting for the other's commit would time out here.
    let copying = false;
    let held = 0;
    const { result, sent } = await statements(
      () => load('overlap', contacts(12, 2)),
      (text, _client, send) => {
        if (/^COPY [^(]*_pgland_pipe_/.test(text)) copying = true;
        if (!/^WITH src AS NOT MATERIALIZED \(SELECT \* FROM pg_temp\./.test(text)) return undefined;
        held++;
        return until('the helper staging batch 2', () => copying, 10_000).then(send);
      },
    );
    expect(result.status).toBe('succeeded');
    expect(result.counts).toMatchObject({ updated: 12, batches: 3 });
    // The merge was held (once), and went on only once the helper had begun.
    expect(held).toBe(1);
    expect(sent.some((t) => /^COPY [^(]*_pgland_pipe_/.test(t))).toBe(true);
  });

  it('a reject in the last batch ends the run partial, in the same transaction', async () => {
    const r = await load('rej', [...contacts(3, 1), { id: 'bad', last_modified_at: 'not a time', raw_data: {} }]);
    expect(r.status).toBe('partial');
    expect(r.counts.rejected).toBe(1);
    expect(await runRow(r.runId)).toMatchObject({ status: 'partial', rows_rejected: '1' });
    // A completed run moves the watermark, partial or not.
    expect(await watermark('rej')).toBe('2026-05-01');
  });

  it('a full refresh keeps its own final transaction: its deletions come after every batch', async () => {
    expect((await load('full', contacts(6, 1))).status).toBe('succeeded');
    const { result, sent } = await statements(() => load('full', contacts(4, 2), 'full'));
    expect(result.status).toBe('succeeded');
    expect(result.counts.deleted).toBe(2);
    // One batch of 4, then the run's own transaction.
    expect(commits(sent)).toBe(2);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM run_end.crm_contacts WHERE _pgland_customer_id = 'full' AND _pgland_is_deleted`);
    expect(rows[0].n).toBe(2);
  });

  it('the answer to the last COMMIT lost after it landed: the run reports what it recorded, and the next run is not kept waiting', async () => {
    expect((await load('lost', contacts(4, 1))).status).toBe('succeeded');
    let dropped = 0;
    const { result } = await statements(
      () => load('lost', contacts(4, 2)),
      (text, client, run) => {
        // The run's end and its COMMIT (one simple query): let the server commit, then lose the connection before the answer.
        if (dropped > 0 || !/_pgland_watermarks/.test(text) || !/;\s*COMMIT\s*$/i.test(text)) return undefined;
        dropped++;
        return run().then(() => {
          (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
          throw new Error('Connection terminated unexpectedly');
        });
      },
    );
    expect(dropped).toBe(1);
    expect(result.status).toBe('succeeded');
    expect(result.error).toBeUndefined();
    expect(result.counts.updated).toBe(4);
    expect(await runRow(result.runId)).toMatchObject({ status: 'succeeded', rows_updated: '4' });
    expect(await leases('lost')).toBe(0);
    expect(await watermark('lost')).toBe('2026-05-02');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM run_end.crm_contacts WHERE _pgland_customer_id = 'lost'`);
    expect(rows[0].n).toBe(4);
    // The next run takes the lease at once (a lease left behind would make it wait lock_timeout_ms).
    const started = Date.now();
    expect((await load('lost', contacts(4, 3))).status).toBe('succeeded');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('the connection lost before the last COMMIT reached the server: the batch is replayed and the run ends once', async () => {
    expect((await load('early', contacts(4, 1))).status).toBe('succeeded');
    let dropped = 0;
    const { result } = await statements(
      () => load('early', contacts(4, 2)),
      (text, client) => {
        if (dropped > 0 || !/_pgland_watermarks/.test(text) || !/;\s*COMMIT\s*$/i.test(text)) return undefined;
        dropped++;
        (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      },
    );
    expect(dropped).toBe(1);
    expect(result.status).toBe('succeeded');
    expect(result.counts.updated).toBe(4);
    expect(await runRow(result.runId)).toMatchObject({ status: 'succeeded', rows_updated: '4' });
    expect(await leases('early')).toBe(0);
    expect(await watermark('early')).toBe('2026-05-02');
  });
});

describe("a heartbeat's renewal in flight when the run ends", () => {
  // The heartbeat renews the lease on a connection of its own. In the last
  // batch's transaction the batch's fence has locked the lease's row, so a
  // renewal sent then waits for that transaction's COMMIT. The final fence
  // must not wait for the renewal (each would wait for the other, out of
  // the server's sight), and the renewal's answer after the COMMIT (the row
  // is gone) is not a lost lease. The test holds the batch's fence until
  // the server shows a renewal waiting on the row, then lets the run end.
  let leased: Destination;
  const logged: string[] = [];
  beforeAll(async () => {
    const { pino } = await import('pino');
    const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
    // lease_ttl_ms at its least (1 s): a heartbeat every third of it.
    leased = await openDestination(db.config({ schema: 'run_end', batch_size: 5, lease_ttl_ms: 1000 }), { log });
  });
  afterAll(async () => {
    await leased?.close();
  });

  const blockedRenewals = async (): Promise<number> => {
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE %' AND query LIKE '%SET expires_at%'`,
    );
    return rows[0].n;
  };

  it('the run ends, once, without waiting for the renewal, and the renewal does not report the lease lost', async () => {
    const run = (version: number) =>
      leased.load({
        kind: 'common',
        object: 'crm_contacts',
        provider: 'hubspot',
        customerId: 'beat',
        mode: 'incremental',
        input: streamOf(contacts(4, version)),
      });
    expect((await run(1)).status).toBe('succeeded');
    let held = 0;
    // Bounded: a final fence that waits for the renewal waits for ever. The
    // renewal's backend is then ended, so that the run, and the file, end.
    const bounded = async <T>(p: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), 20_000)));
      const first = await Promise.race([p, stuck]);
      clearTimeout(timer);
      if (first !== 'stuck') return first;
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE %' AND query LIKE '%SET expires_at%'`,
      );
      await p.catch(() => undefined);
      throw new Error('the run did not end: its final fence waited for the renewal, which waited for the fence');
    };
    const { result, sent } = await statements(
      () => bounded(run(2)),
      (text, _client, send) => {
        // The batch's fence (recordBatch): answered only once a renewal waits for the row it locked.
        if (!text.includes('fence AS (UPDATE')) return undefined;
        return send().then(async (answer) => {
          held = await until('a heartbeat renewal waiting for the lease row', async () => (await blockedRenewals()) || undefined, 10_000);
          return answer;
        });
      },
    );
    expect(held).toBe(1);
    expect(result.status).toBe('succeeded');
    expect(result.counts.updated).toBe(4);
    expect(commits(sent)).toBe(1);
    expect(await leases('beat')).toBe(0);
    // The renewal ran to its end after the COMMIT (it found no row) without a word of a lost lease.
    await until('the renewal answered', async () => (await blockedRenewals()) === 0, 10_000);
    // The next run takes the lease at once.
    expect((await run(3)).status).toBe('succeeded');
    expect(logged.filter((l) => /taken over|lost/.test(l))).toEqual([]);
  }, 60_000);
});
