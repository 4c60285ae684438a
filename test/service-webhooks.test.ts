import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SENDER, WebhookSender } from '../src/service/webhooks/sender.js';
import { freePort } from '../src/embedded/server.js';
import type { Service } from '../src/service/service.js';
import { parseWebhookSecret, signature, signedHeaders, verifySignature } from '../src/service/webhooks/signing.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, LOOPBACK_NETWORKS, startTestService, until } from './support/service.js';

let db: TestDatabase;
let svc: Service;
let destId: string;

const OUT_SECRET = 'whsec_' + randomBytes(32).toString('base64');
const IN_SECRET = 'whsec_' + randomBytes(32).toString('base64');
const IN_SECRET_NEXT = 'whsec_' + randomBytes(24).toString('base64');

interface Received {
  headers: Record<string, string>;
  body: string;
  answered: number;
}

/** A local HTTP receiver that answers each request with the next status of `plan` (then 200). */
async function receiver(plan: number[] = []): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const answered = plan.shift() ?? 200;
      got.push({ headers: req.headers as Record<string, string>, body, answered });
      res.writeHead(answered).end(answered === 200 ? 'ok' : 'down');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, got, server };
}

// The receivers listen on loopback, which pgland refuses unless allowed.
const start = (): Promise<Service> => startTestService(db, { inboundSecrets: [IN_SECRET, IN_SECRET_NEXT], allowNetworks: LOOPBACK_NETWORKS });

beforeAll(async () => {
  db = await freshDatabase('service_webhooks');
  svc = await start();
  const created = await call(svc, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  destId = created.body.id;
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

async function landRun(object = 'crm_contacts'): Promise<string> {
  const open = await call(svc, 'POST', '/runs', { json: { destination_id: destId, provider: 'hubspot', customer_id: 'acme', object } });
  const id = open.body.id as string;
  await call(svc, 'POST', `/runs/${id}/batches`, { body: ndjson([contact(1), contact(2)]), headers: { 'content-type': 'application/x-ndjson' } });
  const c = await call(svc, 'POST', `/runs/${id}/commit`);
  expect(c.status).toBe(200);
  return id;
}

describe('outbound sync webhooks (issue 7)', () => {
  it('signs them per Standard Webhooks', () => {
    // The spec's own example (standardwebhooks.com, "Signature scheme").
    const key = parseWebhookSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    const body = '{"test": 2432232314}';
    expect(signature(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    expect(() => parseWebhookSecret('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toThrow(/whsec_/);
    expect(() => parseWebhookSecret('whsec_c2hvcnQ=')).toThrow(/at least 16 bytes/);
  });

  it('delivers a webhook exactly once per id after the receiver failed 3 times, across a restart', async () => {
    const flaky = await receiver([503, 503, 503]);
    const all = await receiver();
    const ep = await call(svc, 'POST', '/webhooks/endpoints', { json: { url: flaky.url, secret: OUT_SECRET, events: ['sync.complete'] } });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    expect(ep.body.secret).toBe('[set]');
    const epAll = await call(svc, 'POST', '/webhooks/endpoints', { json: { url: all.url, secret: OUT_SECRET, destination_id: destId } });

    const runId = await landRun();
    await until('the first failed attempt', () => flaky.got.length >= 1);
    // pgland restarts while the delivery is still pending.
    await svc.stop();
    const pending = await db.pool.query(`SELECT status FROM pgland_control.webhook_deliveries WHERE endpoint_id = $1`, [ep.body.id]);
    expect(pending.rows).toEqual([{ status: 'pending' }]);
    svc = await start();
    await until('the delivery', () => flaky.got.some((g) => g.answered === 200));
    await new Promise((r) => setTimeout(r, 1000)); // nothing more may arrive

    const ids = new Set(flaky.got.map((g) => g.headers['webhook-id']));
    expect(ids.size).toBe(1);
    expect(flaky.got.map((g) => g.answered)).toEqual([503, 503, 503, 200]);
    const key = parseWebhookSecret(OUT_SECRET);
    for (const g of flaky.got) {
      expect(() => verifySignature([key], g.headers, Buffer.from(g.body), { toleranceSeconds: 60 })).not.toThrow();
      expect(g.body).toBe(flaky.got[0]!.body); // a retry sends the same body
    }
    const event = JSON.parse(flaky.got[0]!.body);
    expect(event).toMatchObject({
      type: 'sync.complete',
      data: {
        run_id: runId,
        destination_id: destId,
        tenant: { provider: 'hubspot', customer_id: 'acme' },
        object: 'crm_contacts',
        mode: 'incremental',
        status: 'succeeded',
        counts: { inserted: 2, rows_read: 2 },
        error: null,
      },
    });
    expect(event.data.watermark).toMatch(/^2026-/);

    // The other endpoint had everything for this destination: the table was created too.
    await until('both events on the second endpoint', () => all.got.length >= 2);
    expect(all.got.map((g) => JSON.parse(g.body).type).sort()).toEqual(['schema.evolved', 'sync.complete']);
    const evolved = JSON.parse(all.got.find((g) => JSON.parse(g.body).type === 'schema.evolved')!.body);
    expect(evolved.data).toMatchObject({ run_id: runId, object: 'crm_contacts', table: 'crm_contacts', change: 'table_created' });

    // Attempts are recorded and listable.
    const deliveries = await call(svc, 'GET', `/webhooks/deliveries?endpoint_id=${ep.body.id}`);
    expect(deliveries.body.deliveries).toHaveLength(1);
    const d = deliveries.body.deliveries[0];
    expect(d).toMatchObject({ status: 'delivered', attempts: 4, message_id: [...ids][0] });
    const attempts = await call(svc, 'GET', `/webhooks/deliveries/${d.id}/attempts`);
    expect(attempts.body.attempts.map((a: { status_code: number }) => a.status_code)).toEqual([503, 503, 503, 200]);
    flaky.server.close();
    all.server.close();
    expect((await call(svc, 'DELETE', `/webhooks/endpoints/${ep.body.id}`)).status).toBe(204);
    expect((await call(svc, 'DELETE', `/webhooks/endpoints/${epAll.body.id}`)).status).toBe(204);
  });

  it('gives up on an endpoint that never answers, and can send it again', async () => {
    const port = await freePort(); // nothing listens there
    const ep = await call(svc, 'POST', '/webhooks/endpoints', { json: { url: `http://127.0.0.1:${port}/x`, secret: OUT_SECRET, events: ['sync.complete'] } });
    await landRun('crm_accounts');
    const dead = await until('the delivery to give up', async () => {
      const r = await call(svc, 'GET', `/webhooks/deliveries?endpoint_id=${ep.body.id}&status=failed`);
      return r.body.deliveries[0] as { id: string; attempts: number; last_error: string } | undefined;
    });
    expect(dead.attempts).toBe(10);
    expect(dead.last_error).toBe('connection refused');
    const attempts = await call(svc, 'GET', `/webhooks/deliveries/${dead.id}/attempts`);
    expect(attempts.body.attempts).toHaveLength(10);
    expect(attempts.body.attempts.every((a: { status_code: number | null }) => a.status_code === null)).toBe(true);
    // Redelivery once the endpoint is back: same webhook-id, a fresh budget.
    const back = await receiver();
    await db.pool.query(`UPDATE pgland_control.webhook_endpoints SET url = $2 WHERE id = $1`, [ep.body.id, back.url]);
    expect((await call(svc, 'POST', `/webhooks/deliveries/${dead.id}/redeliver`)).status).toBe(202);
    await until('the redelivery', () => back.got.length === 1);
    const after = await call(svc, 'GET', `/webhooks/deliveries?endpoint_id=${ep.body.id}`);
    expect(after.body.deliveries[0]).toMatchObject({ status: 'delivered', attempts: 11 });
    expect((await call(svc, 'POST', `/webhooks/deliveries/${dead.id}/redeliver`)).status).toBe(409);
    back.server.close();
    const metrics = await call(svc, 'GET', '/metrics', { token: null });
    expect(metrics.body).toMatch(/pgland_webhook_deliveries_total\{result="dead"\} 1/);
    expect(metrics.body).toMatch(/pgland_webhook_failures_total\{reason="network"\} \d+/);
  });

  it('reports a failing outbox as error events, never as a crash', async () => {
    const ctx = svc.context;
    const broken = { ...ctx.ctl, pool: new pg.Pool({ connectionString: 'postgres://nobody:wrong@127.0.0.1:1/none', connectionTimeoutMillis: 500 }) };
    const sender = new WebhookSender(broken, ctx.box, ctx.metrics, ctx.log, { ...DEFAULT_SENDER, pollMs: 50 });
    const errors: Error[] = [];
    sender.on('error', (err: Error) => errors.push(err));
    sender.start();
    await until('two failed rounds', () => errors.length >= 2);
    await sender.stop();
    await broken.pool.end();
    expect(errors[0]!.message).toMatch(/ECONNREFUSED|connect/);
  });

  it('refuses endpoints with a bad URL or secret', async () => {
    for (const json of [
      { url: 'ftp://x', secret: OUT_SECRET },
      { url: 'http://x', secret: 'plain' },
      { url: 'http://x', secret: 'whsec_c2hvcnQ=' },
      { url: 'http://x', secret: OUT_SECRET, events: ['sync.nope'] },
    ]) {
      expect((await call(svc, 'POST', '/webhooks/endpoints', { json })).status, JSON.stringify(json)).toBe(400);
    }
  });
});

describe('inbound sync webhooks (issue 7)', () => {
  const key = parseWebhookSecret(IN_SECRET);
  const post = (body: string, headers: Record<string, string>) =>
    call(svc, 'POST', '/webhooks/inbound', { token: null, body, headers: { 'content-type': 'application/json', ...headers } });
  const stored = async (): Promise<number> => (await db.pool.query(`SELECT count(*)::int AS n FROM pgland_control.inbound_webhooks`)).rows[0].n;

  it('accepts a signed webhook and refuses unsigned, wrongly signed, stale and replayed ones', async () => {
    const body = JSON.stringify({ type: 'sync.complete', data: { sync_id: 's1', object: 'crm_contacts' } });
    const id = 'msg_' + randomBytes(8).toString('hex');
    const headers = signedHeaders(key, id, body);
    const ok = await post(body, headers);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ accepted: true, webhook_id: id, action: 'ignored' });
    expect(await stored()).toBe(1);

    const refusals: [string, Record<string, string>, string][] = [
      ['replayed', headers, body],
      ['unsigned', {}, body],
      ['bad signature', { ...signedHeaders(key, 'msg_other', body), 'webhook-signature': 'v1,' + Buffer.alloc(32).toString('base64') }, body],
      ['body changed', signedHeaders(key, 'msg_changed', body), body.replace('s1', 's2')],
      ['other secret', signedHeaders(parseWebhookSecret('whsec_' + randomBytes(32).toString('base64')), 'msg_x', body), body],
      ['stale', signedHeaders(key, 'msg_stale', body, Date.now() - 6 * 60_000), body],
      ['from the future', signedHeaders(key, 'msg_future', body, Date.now() + 6 * 60_000), body],
      ['timestamp not a number', { ...signedHeaders(key, 'msg_ts', body), 'webhook-timestamp': 'yesterday' }, body],
    ];
    for (const [what, h, b] of refusals) {
      const r = await post(b, h);
      expect(r.status, what).toBe(401);
      expect(r.body.error.code).toBe('webhook_refused');
    }
    expect(await stored()).toBe(1);

    // Signed with the next secret (a rotation), within the tolerance: accepted.
    const next = await post(body, signedHeaders(parseWebhookSecret(IN_SECRET_NEXT), 'msg_rotated', body, Date.now() - 4 * 60_000));
    expect(next.status).toBe(200);
    const list = await call(svc, 'GET', '/webhooks/inbound');
    expect(list.body.webhooks.map((w: { webhook_id: string }) => w.webhook_id).sort()).toEqual([id, 'msg_rotated'].sort());
    expect(list.body.webhooks[0].event_type).toBe('sync.complete');
    const metrics = await call(svc, 'GET', '/metrics', { token: null });
    expect(metrics.body).toMatch(/pgland_inbound_webhooks_total\{result="replayed"\} 1/);
  });

  it('refuses a replay after a restart too', async () => {
    const body = JSON.stringify({ type: 'sync.started' });
    const headers = signedHeaders(key, 'msg_restart', body);
    expect((await post(body, headers)).status).toBe(200);
    await svc.stop();
    svc = await start();
    expect((await post(body, headers)).status).toBe(401);
  });
});
