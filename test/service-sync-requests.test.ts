import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { parseWebhookSecret, signedHeaders } from '../src/service/webhooks/signing.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, localServer, LOOPBACK_NETWORKS, startTestService, until } from './support/service.js';

let db: TestDatabase;
let svc: Service;
let destId: string;
let source: Awaited<ReturnType<typeof localServer>>;
let hooks: Awaited<ReturnType<typeof localServer>>;
/** Answers to /slow held until the test lets them go. */
const held: ServerResponse[] = [];

const IN_SECRET = 'whsec_' + randomBytes(32).toString('base64');
const key = parseWebhookSecret(IN_SECRET);
const tenant = { provider: 'hubspot', customer_id: 'acme' };

beforeAll(async () => {
  db = await freshDatabase('service_sync_requests');
  source = await localServer((req, res) => {
    if (req.url?.startsWith('/slow')) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(ndjson([contact(500)]));
      held.push(res);
      return;
    }
    const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? 3);
    res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(ndjson(Array.from({ length: n }, (_, i) => contact(i))));
  });
  hooks = await localServer((_req, res) => res.writeHead(200).end('ok'));
  svc = await startTestService(db, { inboundSecrets: [IN_SECRET], allowNetworks: LOOPBACK_NETWORKS });
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  destId = created.body.id;
  const endpoint = await call(svc, 'POST', '/webhooks/endpoints', {
    json: { url: `${hooks.url}/hook`, secret: 'whsec_' + randomBytes(24).toString('base64') },
  });
  expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
});
afterAll(async () => {
  for (const r of held) r.end();
  await svc?.stop();
  await source?.close();
  await hooks?.close();
  await db?.drop();
});

function requested(object: string, data: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: 'sync.requested',
    timestamp: new Date().toISOString(),
    data: {
      destination_id: destId,
      tenant,
      object,
      mode: 'incremental',
      source: { type: 'url', url: `${source.url}/export?n=3`, headers: { authorization: 'Bearer src-token-123' } },
      ...data,
    },
  });
}

const post = (body: string, headers: Record<string, string>) =>
  call(svc, 'POST', '/webhooks/inbound', { token: null, body, headers: { 'content-type': 'application/json', ...headers } });
const signed = (body: string, id = 'msg_' + randomBytes(8).toString('hex'), now = Date.now()) => post(body, signedHeaders(key, id, body, now));

async function runsOf(object: string): Promise<{ id: string; status: string; origin: string; inbound_id: string | null }[]> {
  const { rows } = await db.pool.query(`SELECT id, status, origin, inbound_id FROM pgland_control.runs WHERE object = $1 ORDER BY created_at`, [object]);
  return rows;
}
const jobs = async (): Promise<number> => (await db.pool.query(`SELECT count(*)::int AS n FROM pgland_jobs.job WHERE name = 'pgland-sync'`)).rows[0].n;

describe('sync webhooks drive runs (issue 15)', () => {
  it('lands the records of a signed sync.requested; its id again starts nothing; sync.complete carries the id', async () => {
    const id = 'msg_' + randomBytes(8).toString('hex');
    const body = requested('crm_contacts');
    const headers = signedHeaders(key, id, body);
    const r = await post(body, headers);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ accepted: true, webhook_id: id, action: 'queued' });
    const [run] = await until('the run to finish', async () => {
      const runs = await runsOf('crm_contacts');
      return runs.length === 1 && runs[0]!.status === 'succeeded' ? runs : undefined;
    });
    expect(run).toMatchObject({ origin: 'webhook', inbound_id: id });
    const { rows } = await db.pool.query(`SELECT id FROM landing.crm_contacts ORDER BY id`);
    expect(rows.map((x) => x.id)).toEqual([contact(0).id, contact(1).id, contact(2).id]);
    // The source was fetched with its header; the header never shows in what is stored and listed.
    expect(source.got.find((g) => g.path.startsWith('/export'))?.headers.authorization).toBe('Bearer src-token-123');
    const listed = await call(svc, 'GET', '/webhooks/inbound?action=queued');
    expect(listed.body.webhooks[0]).toMatchObject({ webhook_id: id, action: 'queued' });
    expect(JSON.stringify(listed.body)).not.toContain('src-token-123');
    const stored = await db.pool.query(`SELECT payload::text AS p FROM pgland_control.inbound_webhooks`);
    expect(stored.rows.map((x) => x.p).join()).not.toContain('src-token-123');

    // The outbound sync.complete carries the inbound id.
    const complete = await until('sync.complete', () => hooks.got.find((g) => JSON.parse(g.body).type === 'sync.complete'));
    expect(JSON.parse(complete.body).data).toMatchObject({ run_id: run!.id, origin: 'webhook', inbound_id: id, status: 'succeeded' });

    // The same webhook id again: refused, nothing starts.
    const again = await post(body, headers);
    expect(again.status).toBe(401);
    await new Promise((res) => setTimeout(res, 1500));
    expect(await runsOf('crm_contacts')).toHaveLength(1);
  });

  it('gives one run for two requests while a run of the object is queued', async () => {
    const object = 'crm_accounts';
    const slow = requested(object, { source: { type: 'url', url: `${source.url}/slow` } });
    expect((await signed(slow)).body.action).toBe('queued');
    await until('the slow run to start', async () => (await runsOf(object)).length === 1);
    // While that run holds the object, the next request is queued and the one after coalesces into it.
    const second = await signed(requested(object));
    const third = await signed(requested(object));
    expect(second.body.action).toBe('queued');
    expect(third.body).toMatchObject({ action: 'coalesced', job_id: second.body.job_id });
    // A request for the same object from another source is another run.
    const other = await signed(requested(object, { source: { type: 'url', url: `${source.url}/export?n=2` } }));
    expect(other.body.action).toBe('queued');
    for (const r of held.splice(0)) r.end();
    await until('three runs to finish', async () => {
      const runs = await runsOf(object);
      return runs.length === 3 && runs.every((x) => x.status === 'succeeded');
    });
    await new Promise((res) => setTimeout(res, 1500));
    expect(await runsOf(object)).toHaveLength(3);
  });

  it('changes nothing for an unsigned or stale request', async () => {
    const before = await jobs();
    const body = requested('crm_leads');
    expect((await post(body, {})).status).toBe(401);
    expect((await signed(body, undefined, Date.now() - 6 * 60_000)).status).toBe(401);
    expect(await jobs()).toBe(before);
    expect(await runsOf('crm_leads')).toHaveLength(0);
  });

  it('stores and lists as ignored, with why, what it does not act on', async () => {
    const cases: [string, string | RegExp][] = [
      [JSON.stringify({ type: 'sync.complete', data: {} }), /acts on sync.requested only; sync.complete is kept/],
      [requested('crm_leads', { destination_id: '00000000-0000-4000-8000-000000000000' }), /no destination/],
      [requested('crm_leads', { mode: 'sometimes' }), 'not acted on: data.mode must be one of: incremental, full'],
      [requested('crm_leads', { source: { type: 'command', command: ['sh', '-c', 'id'] } }), /an event cannot run a command/],
      [requested('crm_leads', { source: { type: 'url', url: 'http://10.1.2.3/export' } }), /10\.1\.2\.3/],
      [requested('crm_leads', { source: undefined }), /schedule_id \(its source\) or source/],
    ];
    const before = await jobs();
    for (const [body, detail] of cases) {
      const r = await signed(body);
      expect(r.status, body).toBe(200);
      expect(r.body.action, body).toBe('ignored');
      expect(r.body.detail, body).toMatch(detail);
    }
    expect(await jobs()).toBe(before);
    const listed = await call(svc, 'GET', '/webhooks/inbound?action=ignored');
    expect(listed.body.webhooks.length).toBeGreaterThanOrEqual(cases.length);
  });
});
