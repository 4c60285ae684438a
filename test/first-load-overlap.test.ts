import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, streamOf, type TestRecord } from './support/records.js';

// Issue 20: a first load's batches are COPYed on two connections in turn
// (src/load/pipeline.ts, landFirstLoad), committing in input order.

let db: TestDatabase;
let dest: Destination;
const role = `pgland_overlap_${process.pid}`;

beforeAll(async () => {
  db = await freshDatabase('first_load_overlap');
  dest = await openDestination(db.config({ schema: 'ov', batch_size: 1000, application_name: 'pgland-overlap' }));
  // The table exists before the tests' first loads (a CHECK is added to it below).
  await dest.load({ ...object, customerId: 'someone-else', input: streamOf([contact(1)]) });
});
afterAll(async () => {
  await dest?.close();
  await db?.pool.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await db?.drop();
});

const object = { kind: 'common' as const, object: 'crm_contacts', provider: 'hubspot' };

async function landed(customer: string): Promise<Map<string, string>> {
  const { rows } = await db.pool.query<{ id: string; last_name: string }>(
    `SELECT id, last_name FROM ov.crm_contacts WHERE _pgland_provider = 'hubspot' AND _pgland_customer_id = $1`,
    [customer],
  );
  return new Map(rows.map((r) => [r.id, r.last_name]));
}

async function batchesRecorded(runId: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ batch_no: number }>(`SELECT batch_no FROM ov._pgland_run_batches WHERE run_id = $1 ORDER BY batch_no`, [runId]);
  return rows.map((r) => Number(r.batch_no));
}

/** The backend holding batch `batchNo`'s own turn lock (an advisory lock keyed by the batch's number modulo 3). */
async function turnHolder(batchNo: number): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = $1 AND l.mode = 'ExclusiveLock' AND l.granted
        AND a.application_name = 'pgland-overlap'`,
    [batchNo % 3],
  );
  return rows.map((r) => r.pid);
}

describe('a first load on two connections (issue 20)', () => {
  it('COPYs alternate batches on the run connection and a second one, landing every record once, counted', async () => {
    const holders = new Map<number, number[]>();
    let leaseHolder: number | undefined;
    async function* input(): AsyncGenerator<string> {
      for (let n = 0; n < 4800; n++) {
        // Mid-batch: the batch's transaction holds its turn, its COPY is open.
        if (n % 1000 === 500) {
          const batchNo = Math.floor(n / 1000) + 1;
          holders.set(batchNo, await turnHolder(batchNo));
          const { rows } = await db.pool.query<{ holder_pid: number }>(`SELECT holder_pid FROM ov._pgland_leases WHERE customer_id = 'two-connections'`);
          leaseHolder = rows[0]?.holder_pid;
        }
        yield ndjson([contact(n)]);
      }
    }
    const r = await dest.load({ ...object, customerId: 'two-connections', input: input() });
    expect(r.error).toBeUndefined();
    expect(r.batchesCopiedDirect).toBe(5);
    expect(r.counts).toMatchObject({ rowsRead: 4800, inserted: 4800, updated: 0, batches: 5 });
    expect(await batchesRecorded(r.runId)).toEqual([1, 2, 3, 4, 5]);
    const rows = await landed('two-connections');
    expect(rows.size).toBe(4800);
    expect(rows.get(contact(4799).id)).toBe('Last4799 v1');
    // Odd batches on the run's connection (the lease's holder), even ones on the other.
    expect(leaseHolder).toBeDefined();
    for (const b of [1, 3, 5]) expect(holders.get(b)).toEqual([leaseHolder]);
    for (const b of [2, 4]) {
      expect(holders.get(b)).toHaveLength(1);
      expect(holders.get(b)![0]).not.toBe(leaseHolder);
    }
  });

  it('keeps the newest version of ids repeated across neighbouring batches, on either side of the boundary', async () => {
    // Batch 1 ends with ids 0..9 (older), batch 2 starts with them again (half newer, half older),
    // batch 3 repeats id 500 of batch 1 (newer) at its start.
    const input: TestRecord[] = [];
    for (let n = 10; n < 1000; n++) input.push(contact(n, 2));
    for (let n = 0; n < 10; n++) input.push(contact(n, 2));
    for (let n = 0; n < 10; n++) input.push(contact(n, n < 5 ? 3 : 1));
    for (let n = 1010; n < 2000; n++) input.push(contact(n, 2));
    input.push(contact(500, 5));
    for (let n = 2001; n < 2500; n++) input.push(contact(n, 2));
    const r = await dest.load({ ...object, customerId: 'repeats-across', input: streamOf(input) });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ rowsRead: 2500, inserted: 2489, updated: 6, unchanged: 5, batches: 3 });
    const rows = await landed('repeats-across');
    expect(rows.size).toBe(2489);
    for (let n = 0; n < 10; n++) expect(rows.get(contact(n).id)).toBe(`Last${n} v${n < 5 ? 3 : 2}`);
    expect(rows.get(contact(500).id)).toBe('Last500 v5');
  });

  it('fails the run at a batch the server refuses, landing no batch after it', async () => {
    await db.pool.query(`ALTER TABLE ov.crm_contacts ADD CONSTRAINT no_boom CHECK (last_name IS DISTINCT FROM 'boom')`);
    try {
      const input = Array.from({ length: 5000 }, (_, n) => (n === 2100 ? contact(n, 1, { last_name: 'boom' }) : contact(n)));
      const r = await dest.load({ ...object, customerId: 'refused', input: streamOf(input) });
      expect(r.status).toBe('failed');
      expect(r.error?.message).toMatch(/no_boom/);
      expect(await batchesRecorded(r.runId)).toEqual([1, 2]);
      expect((await landed('refused')).size).toBe(2000);
      expect(r.counts).toMatchObject({ inserted: 2000, batches: 2 });
    } finally {
      await db.pool.query(`ALTER TABLE ov.crm_contacts DROP CONSTRAINT no_boom`);
    }
  });

  it('loads one batch at a time when the role cannot open a second connection for it', async () => {
    const database = new URL(db.url).pathname.slice(1);
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'overlap-pw' CONNECTION LIMIT 2`);
    await db.pool.query(
      `GRANT ALL ON SCHEMA ov TO ${role}; GRANT ALL ON ALL TABLES IN SCHEMA ov TO ${role}; GRANT CONNECT ON DATABASE "${database}" TO ${role}`,
    );
    const url = new URL(db.url);
    url.username = role;
    url.password = 'overlap-pw';
    const limited = await openDestination({ url: url.toString(), sslmode: 'disable', schema: 'ov', batch_size: 1000 });
    // Another client of the role holds one of its two connections.
    const other = new pg.Client({ connectionString: url.toString() });
    await other.connect();
    try {
      // Mid-batch 2 and 3: no batch holds a turn lock, the batches go one at a time on the run's connection.
      const turnLocks: number[] = [];
      async function* input(): AsyncGenerator<string> {
        for (let n = 0; n < 3500; n++) {
          if (n === 1500 || n === 2500) {
            const { rows } = await db.pool.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND a.usename = $1`,
              [role],
            );
            turnLocks.push(rows[0]!.n);
          }
          yield ndjson([contact(n)]);
        }
      }
      const r = await limited.load({ ...object, customerId: 'limited', input: input() });
      expect(r.error).toBeUndefined();
      expect(turnLocks).toEqual([0, 0]);
      expect(r.batchesCopiedDirect).toBe(4);
      expect(r.counts).toMatchObject({ rowsRead: 3500, inserted: 3500, batches: 4 });
      expect((await landed('limited')).size).toBe(3500);
    } finally {
      await other.end();
      await limited.close();
    }
  });
});
