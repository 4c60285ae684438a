import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination } from '../src/index.js';
import type { Service } from '../src/service/service.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson, streamOf } from './support/records.js';
import { call, LOOPBACK_NETWORKS, startTestService, until } from './support/service.js';

// Issue 22: a value that a table's evolution can no longer land in its column
// is a problem of the run, counted and warned about; its raw payload keeps it.

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await freshDatabase('rebuild_problems');
  dir = mkdtempSync(join(tmpdir(), 'pgland-rebuild-'));
  chmodSync(dir, 0o755);
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const N = 1000;
/** Every 100th record's Code is not an integer: 10 of 1,000. */
const notInteger = (i: number): boolean => i % 100 === 7;
const codeOf = (i: number): string => (notInteger(i) ? `abc-${i}` : String(i * 3));

function deals(): unknown[] {
  return Array.from({ length: N }, (_, i) => ({
    id: `d${i}`,
    last_modified_at: '2026-04-01T00:00:00Z',
    raw_data: { Name: `deal ${i}`, Code: codeOf(i) },
  }));
}

const asString = { type: 'object', properties: { Name: { type: 'string' }, Code: { type: 'string' } } };
const asInteger = { type: 'object', properties: { Name: { type: 'string' }, Code: { type: 'integer' } } };
const tenant = { kind: 'custom' as const, object: 'deal', provider: 'x', customerId: 'c1' };

/** The run's problems, the values of the column and the stored payloads, checked as the issue asks. */
async function checkLanded(schema: string, runId: string): Promise<void> {
  const problems = await db.pool.query(
    `SELECT line_number, record_id, field, column_name, reason, value_excerpt FROM ${schema}._pgland_problems WHERE run_id = $1 ORDER BY record_id`,
    [runId],
  );
  const lost = Array.from({ length: N }, (_, i) => i).filter(notInteger);
  expect(problems.rows.map((p) => p.record_id)).toEqual(lost.map((i) => `d${i}`).sort());
  for (const p of problems.rows) {
    expect(p).toMatchObject({ field: 'Code', column_name: 'code', value_excerpt: `abc-${p.record_id.slice(1)}` });
    expect(Number(p.line_number)).toBeLessThan(0);
    expect(p.reason).toBe(`the table was rebuilt: the value does not fit the column's type bigint; the raw payload keeps it (provider x, customer c1)`);
  }
  const run = await db.pool.query(`SELECT status, problems FROM ${schema}._pgland_runs WHERE run_id = $1`, [runId]);
  expect(run.rows[0]).toEqual({ status: 'partial', problems: '10' });
  const rows = await db.pool.query(`SELECT id, code, _pgland_raw_data ->> 'Code' AS raw FROM ${schema}.custom_deal`);
  expect(rows.rows).toHaveLength(N);
  for (const r of rows.rows) {
    const i = Number(r.id.slice(1));
    expect(r.raw).toBe(codeOf(i)); // every raw payload intact
    expect(r.code).toBe(notInteger(i) ? null : String(i * 3));
  }
}

describe('values a rebuild cannot re-land (issue 22)', () => {
  it('CLI: 10 of 1,000 values no longer fit after string -> integer: 10 problem rows, the summary and a warning say 10', async () => {
    const config = join(dir, 'dest.json');
    writeFileSync(config, JSON.stringify(db.config({ schema: 'rb_cli' })));
    writeFileSync(join(dir, 'string.json'), JSON.stringify(asString));
    writeFileSync(join(dir, 'integer.json'), JSON.stringify(asInteger));
    const args = ['load', '--config', config, '--kind', 'custom', '--provider', 'x', '--customer', 'c1', '--object', 'deal'];
    const first = await runCli([...args, '--schema-file', join(dir, 'string.json')], { input: ndjson(deals()) });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);

    const r = await runCli([...args, '--schema-file', join(dir, 'integer.json')], { input: '' });
    expect(r.code, r.stderr).toBe(3); // partial: the run has problems
    const runId = /^run ([0-9a-f-]{36}): partial in /m.exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(/^ {2}problems +10 {2}\(see rb_cli\._pgland_problems\)$/m);
    expect(r.stdout).toMatch(/schema +rebuild of rb_cli\.custom_deal: column code text -> bigint/);
    expect(r.stdout).toMatch(/warning: 10 landed values no longer fit their column and are NULL now/);
    const warned = r.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.problems === 10);
    expect(warned).toMatchObject({ level: 40, runId });
    expect(warned.msg).toMatch(/10 landed values no longer fit their column after the table's rebuild/);
    await checkLanded('rb_cli', runId);
  });

  it('a backfilled new column notes the values it cannot take; earlier NULLs are not noted twice', async () => {
    const d = await openDestination(db.config({ schema: 'rb_add' }));
    try {
      const first = await d.load({ ...tenant, declared: { type: 'object', properties: { Name: { type: 'string' } } }, input: streamOf(deals()) });
      expect(first.status).toBe('succeeded');
      const added = await d.load({ ...tenant, declared: asInteger, input: streamOf([]) });
      expect(added.evolution).toMatchObject({ action: 'alter', problems: 10 });
      expect(added.counts.problems).toBe(10);
      expect(added.status).toBe('partial');
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n, min(reason) AS reason FROM rb_add._pgland_problems WHERE run_id = $1`, [added.runId]);
      expect(rows[0]).toEqual({
        n: 10,
        reason: `new column code was backfilled: the value does not fit the column's type bigint; the raw payload keeps it (provider x, customer c1)`,
      });

      // A rebuild for another reason (Name dropped) re-lands code from the payloads:
      // the 10 values were NULL before, noted by the run above, and are not noted again.
      const rebuilt = await d.load({ ...tenant, declared: { type: 'object', properties: { Code: { type: 'integer' } } }, input: streamOf([]) });
      expect(rebuilt.evolution).toMatchObject({ action: 'rebuild', problems: 0 });
      expect(rebuilt.status).toBe('succeeded');
    } finally {
      await d.close();
    }
  });

  it("a common object's column cast from the old column: the value it only had there is noted, with that said", async () => {
    const d = await openDestination(db.config({ schema: 'rb_common' }));
    try {
      const common = { kind: 'common' as const, object: 'crm_contacts', provider: 'hubspot', customerId: 'acme' };
      const first = await d.load({ ...common, input: streamOf([contact(1), contact(2), contact(3)]) });
      expect(first.status).toBe('succeeded');
      // Retyped by hand, with a value no timestamp column can take.
      await db.pool.query(`ALTER TABLE rb_common.crm_contacts ALTER COLUMN created_at TYPE text`);
      await db.pool.query(`UPDATE rb_common.crm_contacts SET created_at = CASE id WHEN '003C00000001' THEN 'soon' ELSE '2026-01-02T03:04:05Z' END`);
      const r = await d.load({ ...common, input: streamOf([]) });
      expect(r.evolution).toMatchObject({ action: 'rebuild', problems: 1 });
      const { rows } = await db.pool.query(`SELECT record_id, column_name, value_excerpt, reason FROM rb_common._pgland_problems WHERE run_id = $1`, [r.runId]);
      expect(rows).toEqual([
        {
          record_id: '003C00000001',
          column_name: 'created_at',
          value_excerpt: 'soon',
          reason: `the table was rebuilt: the value does not fit the column's type timestamptz; it was in the old column only: a full refresh sends it again (provider hubspot, customer acme)`,
        },
      ]);
      const landed = await db.pool.query(`SELECT count(created_at)::int AS n FROM rb_common.crm_contacts`);
      expect(landed.rows[0].n).toBe(2);
    } finally {
      await d.close();
    }
  });
});

describe('the schema.evolved webhook counts them (issue 22)', () => {
  let svc: Service | undefined;
  let hook: Server | undefined;
  afterAll(async () => {
    await svc?.stop();
    hook?.close();
  });

  it('HTTP runs: the rebuild at commit notes 10 problems and schema.evolved says 10', async () => {
    const got: { type: string; data: Record<string, unknown> }[] = [];
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
    svc = await startTestService(db, { allowNetworks: LOOPBACK_NETWORKS });
    const dest = await call(svc, 'POST', '/destinations', { json: { name: 'rb', config: db.config({ schema: 'rb_http' }) } });
    expect(dest.status, JSON.stringify(dest.body)).toBe(201);
    const ep = await call(svc, 'POST', '/webhooks/endpoints', {
      json: { url, secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64'), events: ['schema.evolved'] },
    });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);

    const land = async (declared: unknown, records: unknown[]): Promise<string> => {
      const open = await call(svc!, 'POST', '/runs', {
        json: { destination_id: dest.body.id, kind: 'custom', provider: 'x', customer_id: 'c1', object: 'deal', declared },
      });
      expect(open.status, JSON.stringify(open.body)).toBe(201);
      const id = open.body.id as string;
      if (records.length > 0) {
        const b = await call(svc!, 'POST', `/runs/${id}/batches`, { body: ndjson(records), headers: { 'content-type': 'application/x-ndjson' } });
        expect(b.status, JSON.stringify(b.body)).toBe(200);
      }
      const c = await call(svc!, 'POST', `/runs/${id}/commit`);
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      return id;
    };
    await land(asString, deals());
    await until('the table_created event', () => got.length >= 1);
    expect(got[0]).toMatchObject({ type: 'schema.evolved', data: { change: 'table_created', problems: 0 } });

    const id = await land(asInteger, []);
    await until('the table_rebuilt event', () => got.length >= 2);
    const evolved = got[1]!;
    expect(evolved).toMatchObject({ type: 'schema.evolved', data: { run_id: id, change: 'table_rebuilt', problems: 10, table: 'custom_deal' } });
    const run = await call(svc, 'GET', `/runs/${id}`);
    expect(run.body).toMatchObject({ status: 'partial', counts: { problems: 10 } });
    await checkLanded('rb_http', run.body.destination_run_id as string);
  });
});
