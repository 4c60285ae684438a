import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OBJECT_LABELS } from '../src/service/ops/metrics.js';
import type { Service } from '../src/service/service.js';
import { parseWebhookSecret, signedHeaders } from '../src/service/webhooks/signing.js';
import { zeroCounts } from '../src/load/runs.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, logLines, startTestService, TEST_TOKEN, until, type Answer } from './support/service.js';

/*
 * The threat model's checklist (docs/security.md, "Limits: memory,
 * connections and bad input"), items 10-13, against a real `pgland serve`
 * on loopback and real PostgreSQL.
 */

const MiB = 1024 * 1024;
const NDJSON = { 'content-type': 'application/x-ndjson' };
const IN_SECRET = 'whsec_' + randomBytes(32).toString('base64');
let db: TestDatabase;
let svc: Service;

beforeAll(async () => {
  db = await freshDatabase('security_limits');
  svc = await startTestService(db, {
    maxRecordBytes: MiB,
    bodyIdleTimeoutMs: 1500,
    uploadTimeoutMs: 4000,
    maxUploadsPerDestination: 2,
    maxOpenRunsPerDestination: 3,
    inboundSecrets: [IN_SECRET],
  });
});
afterAll(async () => {
  await svc?.stop({ timeoutMs: 2000 });
  await db?.drop();
});

/** A destination of its own per test, so that one test's open runs and uploads do not count against another's. */
async function destination(schema: string): Promise<string> {
  const r = await call(svc, 'POST', '/destinations', { json: { name: schema, config: db.config({ schema }) } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

async function openRun(destinationId: string): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destinationId, provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

/** Batches a run has staged, as the destination records them. */
async function stagedBatches(schema: string, runId: string): Promise<number> {
  const table = `_pgland_stage_${runId.replace(/-/g, '')}_batches`;
  const { rows } = await db.pool.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${schema}.${table}`]);
  if (!rows[0].ok) return 0;
  return (await db.pool.query(`SELECT count(*)::int AS n FROM ${schema}.${table}`)).rows[0].n;
}

/**
 * An upload whose body arrives slowly: `first` at once, then (when `drip`)
 * a blank line every 300 ms (blank lines are read and skipped), like the
 * client that once held every pool connection by sending a byte every 2 s.
 */
function slowUpload(path: string, first: string, drip: boolean, type: Record<string, string> = NDJSON): { answer: Promise<Answer>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const req = request(svc.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, ...type, 'transfer-encoding': 'chunked' },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        clearInterval(timer);
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: new Headers(res.headers as Record<string, string>) });
      });
    });
    req.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
  });
  // Awaited by the test; a request it destroys early must not be an unhandled rejection meanwhile.
  answer.catch(() => undefined);
  req.write(first);
  if (drip) timer = setInterval(() => req.write('\n'), 300);
  return {
    answer,
    stop: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}

/** Backends of the test database running a COPY: uploads holding a pool connection. */
async function copiesRunning(): Promise<number> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %' AND state <> 'idle'`,
  );
  return rows[0].n;
}

describe('memory (item 10)', () => {
  it('a gzip body with a line past max_record_bytes: the line is a reject with its line number, length and excerpt; the rest lands', async () => {
    const destId = await destination('sec_long');
    const id = await openRun(destId);
    const huge = JSON.stringify({ id: 'huge', last_modified_at: '2026-01-01T00:00:00Z', data: { first_name: 'x'.repeat(30 * MiB) } });
    const body = gzipSync(Buffer.from(`${ndjson([contact(1)])}${huge}\n${ndjson([contact(2)])}`));
    expect(body.length).toBeLessThan(MiB);
    const staged = await call(svc, 'POST', `/runs/${id}/batches`, { body, headers: { ...NDJSON, 'content-encoding': 'gzip' } });
    expect(staged.status, JSON.stringify(staged.body)).toBe(200);
    expect(staged.body).toMatchObject({ rows_read: 3, records: 2, rejected: 1 });
    const committed = await call(svc, 'POST', `/runs/${id}/commit`);
    expect(committed.body).toMatchObject({ status: 'partial', counts: { inserted: 2, rejected: 1 } });
    const rejects = await db.pool.query(`SELECT line_number, record_id, reason, raw_text FROM sec_long._pgland_rejects WHERE run_id = $1`, [id]);
    expect(rejects.rows).toEqual([
      {
        line_number: '2',
        record_id: 'huge',
        reason: expect.stringContaining(`the line is ${Buffer.byteLength(huge)} bytes, more than max_record_bytes (${MiB})`),
        raw_text: expect.stringMatching(/^\{"id":"huge","last_modified_at"/),
      },
    ]);
    expect(rejects.rows[0].raw_text.length).toBeLessThanOrEqual(200);
  });
});

describe('connections (item 11)', () => {
  it('slow uploads take at most max_uploads_per_destination connections; one more gets 429 with Retry-After; each is cut at upload_timeout_ms and nothing of it is staged', async () => {
    const destId = await destination('sec_slots');
    const runs = [await openRun(destId), await openRun(destId), await openRun(destId)];
    const slow = runs.slice(0, 2).map((id) => slowUpload(`/runs/${id}/batches`, ndjson([contact(1)]), true));
    try {
      await until('two uploads holding a connection each', async () => (await copiesRunning()) >= 2, 10_000);
      const third = await call(svc, 'POST', `/runs/${runs[2]}/batches`, { body: ndjson([contact(3)]), headers: NDJSON });
      expect(third.status).toBe(429);
      expect(third.body.error.code).toBe('too_many_uploads');
      expect(third.headers.get('retry-after')).toBe('5');
      expect(await stagedBatches('sec_slots', runs[2]!)).toBe(0);

      // A client that keeps sending a little is still cut off after upload_timeout_ms.
      const answers = await Promise.all(slow.map((s) => s.answer));
      for (const a of answers) {
        expect(a.status).toBe(408);
        expect(a.body.error).toMatchObject({ code: 'body_timeout', message: expect.stringContaining('upload_timeout_ms') });
        expect(a.headers.get('connection')).toBe('close');
      }
      for (const id of runs.slice(0, 2)) expect(await stagedBatches('sec_slots', id)).toBe(0);
    } finally {
      for (const s of slow) s.stop();
    }
    // The slots are free again.
    const again = await call(svc, 'POST', `/runs/${runs[2]}/batches`, { body: ndjson([contact(3)]), headers: NDJSON });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });

  it('write-throughs in flight are bounded too: one more gets 429 before its body is read, and lands once a slot is free', async () => {
    const destId = await destination('sec_wt_slots');
    const path = `/destinations/${destId}/records`;
    const JSON_TYPE = { 'content-type': 'application/json' };
    const tenant = { provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' };
    // Three bodies that never end, with max_uploads_per_destination 2: whichever reaches the server
    // last is refused as soon as its headers arrive (its body is never complete), the other two hold.
    const held = [1, 2, 3].map(() => slowUpload(path, '{"provider":"salesforce","records":[', true, JSON_TYPE));
    try {
      const refused = await Promise.race(held.map((h) => h.answer));
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: 'too_many_uploads', message: expect.stringContaining('2 write-throughs in flight') });
      expect(refused.headers.get('retry-after')).toBe('5');
      // A fourth, complete one is refused too while the two are held.
      const fourth = await call(svc, 'POST', path, { json: { ...tenant, records: [contact(3)] } });
      expect(fourth.status, JSON.stringify(fourth.body)).toBe(429);
      // Batch uploads are counted apart: a run's batch still goes in (another tenant's: a run holds its object).
      const opened = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...tenant, customer_id: 'other' } });
      expect(opened.status, JSON.stringify(opened.body)).toBe(201);
      const batch = await call(svc, 'POST', `/runs/${opened.body.id}/batches`, { body: ndjson([contact(4)]), headers: NDJSON });
      expect(batch.status, JSON.stringify(batch.body)).toBe(200);
      expect((await call(svc, 'POST', `/runs/${opened.body.id}/abort`)).status).toBe(200);
    } finally {
      for (const h of held) h.stop();
    }
    await until(
      'a write-through lands once the held ones are gone',
      async () => (await call(svc, 'POST', path, { json: { ...tenant, records: [contact(5)] } })).status === 200,
      10_000,
    );
    // Only the write-through sent once the slots were free landed (the aborted run's contact 4 never does).
    const { rows } = await db.pool.query(`SELECT id FROM sec_wt_slots.crm_contacts ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual([contact(5).id]);
  });

  it('an upload whose body stalls gets 408 after body_idle_timeout_ms; its batch is rolled back', async () => {
    const destId = await destination('sec_idle');
    const id = await openRun(destId);
    const started = Date.now();
    const stalled = slowUpload(`/runs/${id}/batches`, ndjson([contact(1)]), false);
    try {
      const answer = await stalled.answer;
      expect(answer.status).toBe(408);
      expect(answer.body.error).toMatchObject({ code: 'body_timeout', message: expect.stringContaining('body_idle_timeout_ms') });
      expect(Date.now() - started).toBeLessThan(4000); // the idle timer, not the upload's total one, ended it
    } finally {
      stalled.stop();
    }
    expect(await stagedBatches('sec_idle', id)).toBe(0);
    const next = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(1)]), headers: NDJSON });
    expect(next.body).toMatchObject({ batch_no: 1, records: 1 });
  });

  it('opening more than max_open_runs_per_destination runs gets 429 until one is committed or aborted', async () => {
    const destId = await destination('sec_runs');
    const ids = [await openRun(destId), await openRun(destId), await openRun(destId)];
    const refused = await call(svc, 'POST', '/runs', { json: { destination_id: destId, provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' } });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'too_many_open_runs', message: expect.stringContaining('max_open_runs_per_destination is 3') });
    expect(refused.headers.get('retry-after')).toBe('60');
    const stages = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'sec_runs' AND tablename LIKE '\\_pgland\\_stage\\_%\\_batches'`,
    );
    expect(stages.rows[0].n).toBe(3);
    expect((await call(svc, 'POST', `/runs/${ids[0]}/abort`)).status).toBe(200);
    await openRun(destId);
  });
});

describe('bad input answered 4xx, never 500 after work was done (item 12)', () => {
  it('a batch with a JSON or text body gets 415 before anything is read or staged', async () => {
    const destId = await destination('sec_types');
    const id = await openRun(destId);
    for (const [type, body] of [
      ['application/json', JSON.stringify(contact(1))],
      ['text/plain', ndjson([contact(1)])],
    ] as const) {
      const r = await call(svc, 'POST', `/runs/${id}/batches`, { body, headers: { 'content-type': type } });
      expect(r.status, type).toBe(415);
      expect(r.body.error).toMatchObject({ code: 'unsupported_media_type', hint: expect.stringContaining('application/x-ndjson') });
    }
    expect(await stagedBatches('sec_types', id)).toBe(0);
    const ok = await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(1)]), headers: NDJSON });
    expect(ok.body).toMatchObject({ batch_no: 1, records: 1 });
  });

  it('a NUL in a declared field name, or 20,000 nested anyOf, gets 400 naming the problem', async () => {
    const destId = await destination('sec_declared');
    // The declaration as JSON text: 20,000 levels are past what JSON.stringify can nest.
    const open = (declared: unknown, declaredText = JSON.stringify(declared)) =>
      call(svc, 'POST', '/runs', {
        body: JSON.stringify({ destination_id: destId, provider: 'hubspot', customer_id: 'acme', object: 'deals', kind: 'standard', declared: 0 }).replace(
          '"declared":0',
          `"declared":${declaredText}`,
        ),
        headers: { 'content-type': 'application/json' },
      });
    const nul = await open({ type: 'object', properties: { 'amo\u0000unt': { type: 'number' } } });
    expect(nul.status).toBe(400);
    expect(nul.body.error.message).toContain('NUL character (\\u0000) in the field name "properties.amo\\u0000unt"');
    const deep = '{"anyOf":['.repeat(20_000) + '{"type":"string"}' + ',{"type":"null"}]}'.repeat(20_000);
    const nested = await open(undefined, `{"type":"object","properties":{"amount":${deep}}}`);
    expect(nested.status).toBe(400);
    expect(nested.body.error.message).toMatch(/nests deeper than 32 levels/);
  });

  it('an inbound webhook whose JSON has a NUL in a key gets 400 naming it; nothing is stored', async () => {
    const key = parseWebhookSecret(IN_SECRET, 'test');
    const body = '{"type":"sync.complete","data":{"ro\\u0000ws":1}}';
    const r = await call(svc, 'POST', '/webhooks/inbound', {
      token: null,
      body,
      headers: { 'content-type': 'application/json', ...signedHeaders(key, 'msg_nul', body) },
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_payload', message: expect.stringContaining('NUL character (\\u0000) in the key "ro\\u0000ws"') });
    const stored = await db.pool.query(`SELECT count(*)::int AS n FROM pgland_control.inbound_webhooks WHERE webhook_id = 'msg_nul'`);
    expect(stored.rows[0].n).toBe(0);
  });

  it('one destination whose sealed secrets were altered is listed as secrets_unreadable; the others are listed as usual', async () => {
    const good = await destination('sec_good');
    const bad = await call(svc, 'POST', '/destinations', {
      json: { name: 'tampered', config: { host: '127.0.0.1', password: 'tampered-pw-' + randomBytes(4).toString('hex') } },
    });
    expect(bad.status).toBe(201);
    // Flip one character of the ciphertext, as someone with write access to the control database could.
    await db.pool.query(
      `UPDATE pgland_control.destinations SET secrets = left(secrets, -2) || CASE WHEN right(secrets, 2) = 'AA' THEN 'AB' ELSE 'AA' END WHERE id = $1`,
      [bad.body.id],
    );
    const list = await call(svc, 'GET', '/destinations');
    expect(list.status).toBe(200);
    const byId = new Map((list.body.destinations as { id: string }[]).map((d) => [d.id, d]));
    expect(byId.get(good)).toMatchObject({ status: 'ok' });
    expect(byId.get(bad.body.id)).toMatchObject({
      status: 'secrets_unreadable',
      problem: expect.stringContaining('failed its integrity check'),
      config: { host: '127.0.0.1' },
    });
    expect(byId.get(bad.body.id)).not.toHaveProperty('config.password');
    expect((await call(svc, 'GET', `/destinations/${bad.body.id}`)).body.status).toBe('secrets_unreadable');
    // Sending the secrets again repairs it.
    const repaired = await call(svc, 'PUT', `/destinations/${bad.body.id}`, {
      json: { config: { host: '127.0.0.1', password: 'new-pw-' + randomBytes(4).toString('hex') } },
    });
    expect(repaired.status, JSON.stringify(repaired.body)).toBe(200);
    expect(repaired.body).toMatchObject({ status: 'ok', config: { password: '[set]' } });
  });
});

describe('operations endpoints (item 13)', () => {
  it('/metrics labels at most MAX_OBJECT_LABELS objects; the rest count as "other"', async () => {
    const counts = { ...zeroCounts(), inserted: 1 };
    for (let i = 0; i < MAX_OBJECT_LABELS + 50; i++) svc.context.metrics.landed(`caller_object_${i}`, counts);
    const text = (await call(svc, 'GET', '/metrics', { token: null })).body as string;
    const objects = new Set([...text.matchAll(/pgland_rows_landed_total\{object="([^"]*)",outcome="inserted"\}/g)].map((m) => m[1]));
    expect(objects.size).toBeLessThanOrEqual(MAX_OBJECT_LABELS + 1);
    expect(objects.has('other')).toBe(true);
    expect(text).not.toContain(`caller_object_${MAX_OBJECT_LABELS + 49}"`);
    expect(text).toMatch(/pgland_rows_landed_total\{object="other",outcome="inserted"\} (\d+)/);
  });

  it("/readyz says which check failed, not the control database's error text", async () => {
    const ctlDb = await freshDatabase('security_readyz');
    const name = new URL(ctlDb.url).pathname.slice(1);
    const other = await startTestService(ctlDb);
    try {
      expect((await call(other, 'GET', '/readyz', { token: null })).status).toBe(200);
      await db.pool.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [name]);
      const r = await until(
        'readyz to fail its control_db check',
        async () => {
          const a = await call(other, 'GET', '/readyz', { token: null });
          return a.body?.checks?.control_db !== 'ok' ? a : undefined;
        },
        10_000,
      );
      expect(r.status).toBe(503);
      expect(r.body.checks.control_db).toBe('failed');
      expect(JSON.stringify(r.body)).not.toContain(name);
      expect(JSON.stringify(r.body)).not.toMatch(/terminat|connection|database "/i);
      // The operator still finds the cause in the log (the database's words: a lost connection, or the database refusing connections).
      expect(logLines.some((l) => l.includes('readiness: the control database does not answer'))).toBe(true);
    } finally {
      await db.pool.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await other.stop({ timeoutMs: 2000 });
      await ctlDb.drop();
    }
  });
});
