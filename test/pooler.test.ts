import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedInIncrement, contact as benchContact, missingInFullRefresh } from '../bench/generate.js';
import { openDestination, type Destination } from '../src/index.js';
import { quoteIdent } from '../src/sql/ident.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { pgbouncerBinary, startPgbouncer, type Pgbouncer } from '../bench/pgbouncer.js';
import { contact, ndjson } from './support/records.js';
import { until } from './support/until.js';
import { call, startTestService } from './support/service.js';

// Issue 21: pgland through a transaction-mode pooler (PgBouncer, as Supabase's,
// Neon's and RDS Proxy's pooled connection strings are) keeps every guarantee
// of the direct connection, and says that it found one.

const binary = pgbouncerBinary();
if (!binary) console.warn('test/pooler.test.ts skipped: the pgbouncer binary is absent (apt-get install pgbouncer)');

/** Rows of the first load, increment and full refresh compared with the direct path; CI runs 1M (PGLAND_TEST_POOLER_ROWS). */
const ROWS = Number(process.env.PGLAND_TEST_POOLER_ROWS ?? 200_000);
const OBJECT = { kind: 'common', object: 'crm_contacts', provider: 'p', customerId: 'c' } as const;

let db: TestDatabase;
let bouncer: Pgbouncer;
let pooledUrl: string;
let dir: string;

/**
 * A checksum over every column except when and by which run a row was
 * written or deleted (whether it is deleted is _pgland_is_deleted's): the
 * rows' md5s in id order, hashed again (a million rows' text would not fit
 * one string).
 */
async function checksum(schema: string): Promise<{ n: number; sum: string }> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n,
            md5(string_agg(md5((to_jsonb(t) - '_pgland_landed_at' - '_pgland_run_id' - '_pgland_deleted_at')::text), '' ORDER BY id)) AS sum
       FROM ${quoteIdent(schema)}.crm_contacts t`,
  );
  return rows[0];
}

/** The bench's records (bench/generate.ts) of one file, NDJSON in chunks of about 1 MB. */
async function* benchInput(variant: 'first' | 'incr' | 'full', size: number): AsyncGenerator<string> {
  let chunk = '';
  for (let n = 0; n < size; n++) {
    if (variant === 'full' && missingInFullRefresh(n)) continue;
    chunk += JSON.stringify(benchContact(n, variant !== 'first' && changedInIncrement(n) ? 2 : 1)) + '\n';
    if (chunk.length >= 1 << 20) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

function configFile(name: string, extra: Record<string, unknown>): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ url: pooledUrl, sslmode: 'disable', ...extra }));
  return path;
}

async function leftovers(schema: string): Promise<{ leases: number; advisory: number }> {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*)::int FROM ${quoteIdent(schema)}._pgland_leases) AS leases,
            (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS advisory`,
  );
  return rows[0];
}

describe.skipIf(!binary)('through PgBouncer in transaction mode (issue 21)', () => {
  beforeAll(async () => {
    db = await freshDatabase('pooler');
    bouncer = await startPgbouncer(binary!, db.url, { poolMode: 'transaction', poolSize: 5 });
    pooledUrl = bouncer.through(db.url);
    dir = mkdtempSync(join(tmpdir(), 'pgland-pooler-'));
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  });

  it('pgland check reports the pooler and its mode (human and --json)', async () => {
    const config = configFile('check', {});
    const json = await spawnCli(['check', '--config', config, '--json']).done;
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.pooler.mode).toBe('transaction');
    const step = report.steps.find((s: { step: string }) => s.step === 'pooler');
    expect(step).toMatchObject({ status: 'warn' });
    expect(step.detail).toMatch(/transaction mode.*direct connection string/);
    const human = await spawnCli(['check', '--config', config]).done;
    expect(human.stdout).toMatch(/WARN {2}connection pooler +\d+ ms {2}a pooler in transaction mode/);
  });

  it('a run through the pooler says so once in its log, with the direct connection as the fix', async () => {
    const input = ndjson(Array.from({ length: 300 }, (_, i) => contact(i)));
    const r = await spawnCli(
      [
        'load',
        '--config',
        configFile('logged', { schema: 'logged', batch_size: 50 }),
        '--provider',
        'p',
        '--customer',
        'c',
        '--object',
        'crm_contacts',
        '--input',
        '-',
      ],
      {
        input,
      },
    ).done;
    expect(r.code).toBe(0);
    const said = r.stderr.split('\n').filter((l) => l.includes('transaction-mode connection pooler'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('direct connection string');
    expect((await checksum('logged')).n).toBe(300);
  });

  it(`first load, increment and full refresh of ${ROWS} rows land exactly what the direct path lands`, async () => {
    const direct = await openDestination({ url: db.url, sslmode: 'disable', schema: 'direct' });
    const pooled = await openDestination({ url: pooledUrl, sslmode: 'disable', schema: 'pooled' });
    try {
      for (const variant of ['first', 'incr', 'full'] as const) {
        const mode = variant === 'full' ? 'full' : 'incremental';
        const times: Record<string, number> = {};
        for (const [name, d] of [
          ['direct', direct],
          ['pooled', pooled],
        ] as const) {
          const started = Date.now();
          const r = await d.load({ ...OBJECT, mode, input: benchInput(variant, ROWS) });
          times[name] = Date.now() - started;
          expect(r.status).toBe('succeeded');
        }
        console.log(`pooler test, ${ROWS} rows, ${variant}: direct ${times.direct} ms, through PgBouncer ${times.pooled} ms`);
        const [a, b] = [await checksum('direct'), await checksum('pooled')];
        expect(b).toEqual(a);
      }
      const deleted = await db.pool.query(`SELECT count(*)::int AS n FROM pooled.crm_contacts WHERE _pgland_is_deleted`);
      expect(deleted.rows[0].n).toBeGreaterThan(0);
      expect(await leftovers('pooled')).toEqual({ leases: 0, advisory: 0 });
    } finally {
      await direct.close();
      await pooled.close();
    }
  }, 900_000);

  it('ten concurrent runs of one object take turns; the result equals the serial one; nothing is left held', async () => {
    const versions = Array.from({ length: 10 }, (_, i) => i + 1);
    const input = (v: number): string => ndjson(Array.from({ length: 600 }, (_, i) => contact(i, v, { title: `v${v}` })));
    const serial = await openDestination({ url: db.url, sslmode: 'disable', schema: 'turns_serial', batch_size: 100 });
    for (const v of versions) expect((await serial.load({ ...OBJECT, input: Readable.from([input(v)]) })).status).toBe('succeeded');
    await serial.close();

    const dests: Destination[] = [];
    for (const _ of versions) {
      dests.push(await openDestination({ url: pooledUrl, sslmode: 'disable', schema: 'turns', batch_size: 100, lock_timeout_ms: 120_000 }, { poolSize: 2 }));
    }
    try {
      const results = await Promise.all(versions.map((v, i) => dests[i]!.load({ ...OBJECT, input: Readable.from([input(v)]) })));
      expect(results.map((r) => r.status)).toEqual(versions.map(() => 'succeeded'));
    } finally {
      await Promise.all(dests.map((d) => d.close()));
    }
    // They took turns: each run started after the one before it finished.
    const { rows } = await db.pool.query(`SELECT status, started_at, finished_at FROM turns._pgland_runs ORDER BY started_at`);
    expect(rows).toHaveLength(10);
    for (let i = 1; i < rows.length; i++) expect(rows[i].started_at.getTime()).toBeGreaterThanOrEqual(rows[i - 1].finished_at.getTime());
    expect(await checksum('turns')).toEqual(await checksum('turns_serial'));
    expect(await leftovers('turns')).toEqual({ leases: 0, advisory: 0 });
  }, 300_000);

  it('a loader killed mid-run through the pooler: the next run takes over once the lease lapses, and completes the data', async () => {
    const TOTAL = 20_000;
    const BATCH = 2_000;
    const lines = ndjson(Array.from({ length: TOTAL }, (_, i) => contact(i, 2)))
      .trimEnd()
      .split('\n');
    const expected = await openDestination({ url: db.url, sslmode: 'disable', schema: 'killed_expected', batch_size: BATCH });
    await expected.load({ ...OBJECT, input: Readable.from([lines.join('\n') + '\n']) });
    await expected.close();

    const config = configFile('killed', { schema: 'killed', batch_size: BATCH, lease_ttl_ms: 3000 });
    const args = ['load', '--config', config, '--provider', 'p', '--customer', 'c', '--object', 'crm_contacts', '--input', '-'];
    const first = spawnCli(args);
    first.child.stdin!.write(lines.slice(0, 2 * BATCH + 10).join('\n') + '\n');
    const committed = async (): Promise<number> => {
      const { rows } = await db.pool
        .query(`SELECT coalesce(max(batches), 0)::int AS n FROM killed._pgland_runs WHERE status = 'running'`)
        .catch(() => ({ rows: [{ n: 0 }] }));
      return rows[0].n;
    };
    await until('two committed batches', async () => (await committed()) >= 2);
    first.child.kill('SIGKILL');
    await first.done;
    // Through a pooler the killed loader's server connection lives on: its lease stays until it lapses.
    const held = await db.pool.query(`SELECT holder_pid, expires_at > now() AS live FROM killed._pgland_leases`);
    expect(held.rows).toEqual([{ holder_pid: null, live: true }]);

    const next = spawnCli(args, { input: lines.join('\n') + '\n' });
    const r = await next.done;
    expect(r.stderr).not.toMatch(/object_locked|another run/);
    expect(r.code).toBe(0);
    expect(await checksum('killed')).toEqual(await checksum('killed_expected'));
    const { rows } = await db.pool.query(`SELECT status FROM killed._pgland_runs ORDER BY started_at`);
    expect(rows.map((x) => x.status)).toEqual(['abandoned', 'succeeded']);
    expect(await leftovers('killed')).toEqual({ leases: 0, advisory: 0 });
  }, 180_000);

  it('a run that waits on its input longer than the lease lasts keeps it (the heartbeat), even with its only pool connection busy', async () => {
    const config = { url: pooledUrl, sslmode: 'disable' as const, schema: 'slow', batch_size: 100, lease_ttl_ms: 1000, lock_timeout_ms: 30_000 };
    const holder = await openDestination(config, { poolSize: 1 });
    const waiter = await openDestination(config, { poolSize: 1 });
    try {
      let started!: () => void;
      const begun = new Promise<void>((r) => (started = r));
      async function* slow(): AsyncGenerator<string> {
        yield JSON.stringify(contact(1, 1)) + '\n';
        started();
        // Three lease lifetimes with the run's connection in its batch's COPY.
        await new Promise((r) => setTimeout(r, 3000));
        yield JSON.stringify(contact(2, 1)) + '\n';
      }
      const first = holder.load({ ...OBJECT, input: slow() });
      await begun;
      const second = waiter.load({ ...OBJECT, input: Readable.from([ndjson([contact(1, 2)])]) });
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, a.error?.message, b.status]).toEqual(['succeeded', undefined, 'succeeded']);
      const { rows } = await db.pool.query(`SELECT started_at, finished_at FROM slow._pgland_runs ORDER BY started_at`);
      expect(rows[1].started_at.getTime()).toBeGreaterThanOrEqual(rows[0].finished_at.getTime());
    } finally {
      await holder.close();
      await waiter.close();
    }
  });

  it('a run whose lease was taken over commits no further batch (the fence)', async () => {
    const d = await openDestination({ url: pooledUrl, sslmode: 'disable', schema: 'fenced', batch_size: 100 });
    try {
      async function* input(): AsyncGenerator<string> {
        for (let i = 0; i < 1000; i++) {
          if (i === 450) {
            // Another run "takes over": the row carries someone else's token now.
            await db.pool.query(`UPDATE fenced._pgland_leases SET token = gen_random_uuid()`);
          }
          yield JSON.stringify(contact(i)) + '\n';
        }
      }
      const r = await d.load({ ...OBJECT, input: input() });
      expect(r.status).toBe('failed');
      expect((r.error as { code?: string }).code).toBe('lease_lost');
      // What landed is exactly the batches recorded as committed, all before the takeover.
      const landed = (await checksum('fenced')).n;
      const { rows } = await db.pool.query(`SELECT coalesce(sum(rows_read), 0)::int AS n FROM fenced._pgland_run_batches`);
      expect(landed).toBe(rows[0].n);
      expect(landed).toBeLessThanOrEqual(500);
    } finally {
      await d.close();
    }
  });

  it('session settings hold per transaction: a timestamp without an offset is read as UTC whatever the database default', async () => {
    await db.pool.query(`ALTER DATABASE ${quoteIdent(new URL(db.url).pathname.slice(1))} SET TimeZone = 'Pacific/Auckland'`);
    // PgBouncer's server connections were opened before: new ones take the new default.
    await bouncer.stop();
    bouncer = await startPgbouncer(binary!, db.url, { poolMode: 'transaction', poolSize: 5 });
    pooledUrl = bouncer.through(db.url);
    const d = await openDestination({ url: pooledUrl, sslmode: 'disable', schema: 'tz' });
    try {
      const r = await d.load({ ...OBJECT, input: Readable.from([ndjson([contact(1, 1, { created_at: '2026-01-01T00:00:00' })])]) });
      expect(r.status).toBe('succeeded');
    } finally {
      await d.close();
    }
    const { rows } = await db.pool.query(`SELECT created_at = '2026-01-01T00:00:00Z'::timestamptz AS utc FROM tz.crm_contacts`);
    expect(rows).toEqual([{ utc: true }]);
  });

  it("the service's HTTP runs (deferred: staged over several requests, merged at commit) land through the pooler as directly", async () => {
    const svc = await startTestService(db);
    try {
      const NDJSON = { 'content-type': 'application/x-ndjson' };
      const tenant = { provider: 'p', customer_id: 'c', object: 'crm_contacts' };
      const records = Array.from({ length: 3000 }, (_, i) => contact(i, 3));
      for (const [name, url] of [
        ['http_direct', db.url],
        ['http_pooled', pooledUrl],
      ] as const) {
        const dest = await call(svc, 'POST', '/destinations', { json: { name, config: { url, sslmode: 'disable', schema: name } } });
        expect(dest.status, JSON.stringify(dest.body)).toBe(201);
        const run = await call(svc, 'POST', '/runs', { json: { destination_id: dest.body.id, ...tenant, mode: 'full' } });
        expect(run.status, JSON.stringify(run.body)).toBe(201);
        for (const part of [records.slice(0, 1000), records.slice(1000, 2000), records.slice(2000)]) {
          const staged = await call(svc, 'POST', `/runs/${run.body.id}/batches`, { body: ndjson(part), headers: NDJSON });
          expect(staged.status, JSON.stringify(staged.body)).toBe(200);
        }
        const committed = await call(svc, 'POST', `/runs/${run.body.id}/commit`);
        expect(committed.body, JSON.stringify(committed.body)).toMatchObject({ status: 'succeeded', counts: { inserted: 3000 } });
        expect(await leftovers(name)).toEqual({ leases: 0, advisory: 0 });
      }
      expect(await checksum('http_pooled')).toEqual(await checksum('http_direct'));
    } finally {
      await svc.stop();
    }
  });

  it('a pooler in statement mode is refused before anything is written', async () => {
    const statement = await startPgbouncer(binary!, db.url, { poolMode: 'statement' });
    try {
      await expect(openDestination({ url: statement.through(db.url), sslmode: 'disable', schema: 'refused' })).rejects.toMatchObject({
        code: 'pooler_unsupported',
      });
    } finally {
      await statement.stop();
    }
    const { rowCount } = await db.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'refused'`);
    expect(rowCount).toBe(0);
  });
});
