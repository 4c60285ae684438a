import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from '../src/embedded/server.js';
import { Egress } from '../src/service/outbound/egress.js';
import { resolveServeOptions } from '../src/service/options.js';
import type { Service } from '../src/service/service.js';
import { parseWebhookSecret, signedHeaders } from '../src/service/webhooks/signing.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, localServer, logLines, startTestService, until } from './support/service.js';

/**
 * docs/security.md, "Outbound requests: webhooks, URL sources and SSRF": the
 * service's requests go to public addresses only, unless the operator allows
 * a network; what comes back is kept short and says nothing of the inside.
 * And webhook signatures cover the headers as sent.
 */

const OUT_SECRET = 'whsec_' + randomBytes(32).toString('base64');
const IN_SECRET = 'whsec_' + randomBytes(32).toString('base64');
/** What an internal service answers: it must never come back through the API. */
const INTERNAL = 'internal-answer-' + randomBytes(8).toString('hex');

let db: TestDatabase;
let svc: Service;
let destId: string;
let inside: Awaited<ReturnType<typeof localServer>>;

beforeAll(async () => {
  db = await freshDatabase('security_egress');
  // The operator allowed no network: loopback is as internal as it gets.
  svc = await startTestService(db, { inboundSecrets: [IN_SECRET] });
  destId = (await call(svc, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } })).body.id;
  inside = await localServer((_req, res) => res.end(INTERNAL));
});
afterAll(async () => {
  await inside?.close();
  await svc?.stop();
  await db?.drop();
});

async function landRun(object: string): Promise<void> {
  const open = await call(svc, 'POST', '/runs', { json: { destination_id: destId, provider: 'hubspot', customer_id: 'acme', object } });
  await call(svc, 'POST', `/runs/${open.body.id}/batches`, { body: ndjson([contact(1)]), headers: { 'content-type': 'application/x-ndjson' } });
  expect((await call(svc, 'POST', `/runs/${open.body.id}/commit`)).status).toBe(200);
}

type Attempt = { status_code: number | null; error: string | null; response_excerpt: string | null };

/** The first attempt of the endpoint's first delivery, once recorded. */
function firstAttempt(service: Service, endpointId: string): Promise<Attempt> {
  return until('a delivery attempt', async () => {
    const d = (await call(service, 'GET', `/webhooks/deliveries?endpoint_id=${endpointId}`)).body.deliveries[0];
    return d ? ((await call(service, 'GET', `/webhooks/deliveries/${d.id}/attempts`)).body.attempts[0] as Attempt | undefined) : undefined;
  });
}

describe('addresses pgland does not connect to', () => {
  const refused = [
    'http://127.0.0.1/',
    'http://127.9.9.9:5432/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://224.0.0.1/',
    'http://2130706433/', // 127.0.0.1 written as one number
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:a9fe:a9fe]/', // 169.254.169.254, IPv4-mapped
    'http://[64:ff9b::a00:1]/', // 10.0.0.1 through NAT64
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://[ff02::1]/',
  ];

  it('are refused as webhook endpoints and URL sources when saved', async () => {
    for (const url of refused) {
      const ep = await call(svc, 'POST', '/webhooks/endpoints', { json: { url, secret: OUT_SECRET } });
      expect(ep.status, url).toBe(400);
      expect(ep.body.error).toMatchObject({ code: 'egress_refused', hint: expect.stringMatching(/PGLAND_ALLOW_NETWORKS/) });
      const sched = await call(svc, 'POST', '/schedules', {
        json: { destination_id: destId, provider: 'tap', customer_id: 'acme', object: 'x', kind: 'custom', cron: '0 0 1 1 *', source: { type: 'url', url } },
      });
      expect(sched.status, url).toBe(400);
    }
    // Public addresses and names are saved (nothing is fetched yet).
    for (const url of ['http://93.184.215.14/hook', 'https://hooks.example.com/x']) {
      const ep = await call(svc, 'POST', '/webhooks/endpoints', { json: { url, secret: OUT_SECRET, enabled: false } });
      expect(ep.status, url).toBe(201);
    }
    // An endpoint's URL is shown with its credentials hidden.
    const token = randomBytes(8).toString('hex');
    const ep = await call(svc, 'POST', '/webhooks/endpoints', {
      json: { url: `https://hooks.example.com/x?team=7&token=${token}`, secret: OUT_SECRET, enabled: false },
    });
    expect(ep.body.url).toBe('https://hooks.example.com/x?team=7&token=[set]');
    expect(JSON.stringify((await call(svc, 'GET', '/webhooks/endpoints')).body)).not.toContain(token);
  });

  it('are checked on every address, embedded IPv4 included, and the operator allows named networks', () => {
    const none = new Egress();
    for (const a of ['127.0.0.1', '::1', '::ffff:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1', '198.18.0.1', '255.255.255.255', 'fec0::1'])
      expect(none.allows(a), a).toBe(false);
    for (const a of ['93.184.215.14', '2606:4700::1111', '64:ff9b::5db8:d70e']) expect(none.allows(a), a).toBe(true);
    const some = new Egress(['127.0.0.0/8', 'fd00:1::/64']);
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', 'fd00:1::5']) expect(some.allows(a), a).toBe(true);
    for (const a of ['::1', '10.0.0.1', 'fd00:2::5']) expect(some.allows(a), a).toBe(false);
    expect(resolveServeOptions({}, { PGLAND_ALLOW_NETWORKS: '10.0.0.0/8, ::1' }).options.allowNetworks).toEqual(['10.0.0.0/8', '::1/128']);
    expect(() => resolveServeOptions({}, { PGLAND_ALLOW_NETWORKS: '10.0.0.0/33' })).toThrow(
      /PGLAND_ALLOW_NETWORKS: "10.0.0.0\/33" is not an address or a CIDR network/,
    );
  });

  it('are refused at delivery when a host name resolves to one: nothing of the inside comes back', async () => {
    const closed = await freePort();
    const controlPort = new URL(db.url).port || '5432';
    const ids: string[] = [];
    for (const port of [inside.port, closed, Number(controlPort)]) {
      const ep = await call(svc, 'POST', '/webhooks/endpoints', { json: { url: `http://localhost:${port}/hook`, secret: OUT_SECRET } });
      expect(ep.status).toBe(201);
      ids.push(ep.body.id);
    }
    await landRun('crm_contacts');
    const attempts = await Promise.all(ids.map((id) => firstAttempt(svc, id)));
    // An open port, a closed one and the control database's: the same answer.
    for (const a of attempts) {
      expect(a).toMatchObject({ status_code: null, response_excerpt: null });
      expect(a.error).toBe(attempts[0]!.error);
    }
    expect(attempts[0]!.error).toMatch(/^localhost is not a public address/);
    expect(inside.got).toEqual([]);
    expect(logLines.join('\n')).not.toContain(INTERNAL);
    for (const id of ids) await call(svc, 'DELETE', `/webhooks/endpoints/${id}`);
  });

  it("are refused as a URL source's host at run time", async () => {
    const sched = await call(svc, 'POST', '/schedules', {
      json: {
        destination_id: destId,
        provider: 'tap',
        customer_id: 'acme',
        object: 'inside',
        kind: 'custom',
        cron: '0 0 1 1 *',
        source: { type: 'url', url: `http://localhost:${inside.port}/x` },
      },
    });
    expect(sched.status).toBe(201);
    await call(svc, 'POST', `/schedules/${sched.body.id}/run`);
    const run = await until('the run', async () => {
      const { rows } = await db.pool.query(`SELECT status, error FROM pgland_control.runs WHERE schedule_id = $1 AND status <> 'running'`, [sched.body.id]);
      return rows[0] as { status: string; error: string } | undefined;
    });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(new RegExp(`http://localhost:${inside.port}/x: localhost is not a public address`));
    expect(inside.got).toEqual([]);
  });
});

describe('a network the operator allowed', () => {
  let allowedDb: TestDatabase;
  let allowed: Service;
  beforeAll(async () => {
    allowedDb = await freshDatabase('security_egress_allowed');
    allowed = await startTestService(allowedDb, { allowNetworks: ['127.0.0.0/8'] });
  });
  afterAll(async () => {
    await allowed?.stop();
    await allowedDb?.drop();
  });

  it('is reached; the answer kept is 256 bytes, and a network error is a few words without the address', async () => {
    const big = await localServer((_req, res) => res.writeHead(500).end(INTERNAL + 'x'.repeat(10_000)));
    onTestFinished(() => big.close());
    const closed = await freePort();
    const dest = (await call(allowed, 'POST', '/destinations', { json: { name: 'main', config: allowedDb.config({ schema: 'landing' }) } })).body.id;
    const eps = [];
    for (const url of [`${big.url}/hook`, `http://127.0.0.1:${closed}/hook`])
      eps.push((await call(allowed, 'POST', '/webhooks/endpoints', { json: { url, secret: OUT_SECRET } })).body.id as string);
    const open = await call(allowed, 'POST', '/runs', { json: { destination_id: dest, provider: 'hubspot', customer_id: 'acme', object: 'crm_contacts' } });
    await call(allowed, 'POST', `/runs/${open.body.id}/batches`, { body: ndjson([contact(1)]), headers: { 'content-type': 'application/x-ndjson' } });
    await call(allowed, 'POST', `/runs/${open.body.id}/commit`);
    const [answered, refused] = [await firstAttempt(allowed, eps[0]!), await firstAttempt(allowed, eps[1]!)];
    expect(answered.status_code).toBe(500);
    expect(Buffer.byteLength(answered.response_excerpt!)).toBe(256);
    expect(refused).toMatchObject({ status_code: null, error: 'connection refused', response_excerpt: null });
  });
});

describe('webhook signatures', () => {
  const key = parseWebhookSecret(IN_SECRET);
  const sign = (id: string, ts: string, body: string): string => 'v1,' + createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  const send = (id: string, ts: string, sig: string, body: string) =>
    call(svc, 'POST', '/webhooks/inbound', {
      body,
      token: null,
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig },
    });

  it('are verified over the webhook-timestamp header exactly as sent', async () => {
    const body = JSON.stringify({ type: 'sync.complete' });
    const now = String(Math.floor(Date.now() / 1000));
    // Signed over the header as sent, a leading zero and all: accepted.
    expect((await send('msg_exact', '0' + now, sign('msg_exact', '0' + now, body), body)).status).toBe(200);
    // Signed over another spelling of the same time: refused.
    const r = await send('msg_parsed', '0' + now, sign('msg_parsed', now, body), body);
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/signature does not match/);
  });

  it('are sent over the header as sent', () => {
    const headers = signedHeaders(key, 'msg_out', '{"a":1}');
    expect(headers['webhook-signature']).toBe(sign('msg_out', headers['webhook-timestamp']!, '{"a":1}'));
  });
});
