import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { call, startTestService } from './support/service.js';

/*
 * Each feature's routes type their handlers from the JSON Schemas fastify
 * validates with (src/service/http/server.ts, HttpApp): what a schema refuses
 * never reaches a handler. One route per feature: an unknown key, a wrong
 * type and a missing required field are refused, 400 invalid_request, with a
 * sentence naming the key. (Misspelt keys and enums: service-write-through.)
 * A JSON body is validated as sent (no coercion: 42 is not "42"); a query
 * string's values are text, coerced to the schema's types.
 */

let db: TestDatabase;
let svc: Service;

beforeAll(async () => {
  db = await freshDatabase('service_validation');
  svc = await startTestService(db);
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

const someId = '0f6c1a52-3b7e-4c1d-9a8e-5d2f7b9c4e10';
const tenant = { provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts' };

interface Case {
  feature: string;
  method: 'POST' | 'GET';
  url: string;
  valid: Record<string, unknown>;
  wrongType: [string, unknown, string];
  required: string;
}

const cases: Case[] = [
  {
    feature: 'destinations',
    method: 'POST',
    url: '/destinations',
    valid: { name: 'd', config: { host: 'h' } },
    wrongType: ['name', { first: 'd' }, 'body.name must be string'],
    required: 'config',
  },
  {
    feature: 'runs',
    method: 'POST',
    url: '/runs',
    valid: { destination_id: someId, ...tenant },
    wrongType: ['ignore_deletes', 'yes', 'body.ignore_deletes must be boolean'],
    required: 'object',
  },
  {
    feature: 'webhooks',
    method: 'POST',
    url: '/webhooks/endpoints',
    valid: { url: 'https://example.com/hook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
    wrongType: ['enabled', 'maybe', 'body.enabled must be boolean'],
    required: 'secret',
  },
  {
    feature: 'schedules',
    method: 'POST',
    url: '/schedules',
    valid: { destination_id: someId, ...tenant, cron: '*/15 * * * *', source: { type: 'url', url: 'https://example.com/records' } },
    wrongType: ['timeout_seconds', 'soon', 'body.timeout_seconds must be integer'],
    required: 'cron',
  },
  {
    feature: 'reads',
    method: 'GET',
    url: '/schedules/next-runs',
    valid: { cron: '*/15 * * * *' },
    wrongType: ['count', 'five', 'querystring.count must be integer'],
    required: 'cron',
  },
];

async function send(c: Case, fields: Record<string, unknown>) {
  if (c.method === 'GET') return call(svc, 'GET', `${c.url}?${new URLSearchParams(fields as Record<string, string>)}`);
  return call(svc, c.method, c.url, { json: fields });
}

describe('request schemas refuse what a handler is not typed for', () => {
  for (const c of cases) {
    it(`${c.feature}: ${c.method} ${c.url}`, async () => {
      const where = c.method === 'GET' ? 'querystring' : 'body';
      const unknownKey = await send(c, { ...c.valid, colour: 'red' });
      expect(unknownKey.status, JSON.stringify(unknownKey.body)).toBe(400);
      expect(unknownKey.body.error.code).toBe('invalid_request');
      expect(unknownKey.body.error.message).toMatch(new RegExp(`^unknown key "colour" in ${where}; known keys: `));

      const [key, value, message] = c.wrongType;
      const wrongType = await send(c, { ...c.valid, [key]: value });
      expect(wrongType.status, JSON.stringify(wrongType.body)).toBe(400);
      expect(wrongType.body.error).toMatchObject({ code: 'invalid_request', message });

      const { [c.required]: _left, ...missing } = c.valid;
      const noField = await send(c, missing);
      expect(noField.status, JSON.stringify(noField.body)).toBe(400);
      expect(noField.body.error).toMatchObject({ code: 'invalid_request', message: `${where} must have required property '${c.required}'` });
    });
  }

  it('refuses a malformed id in a path', async () => {
    const r = await call(svc, 'GET', '/runs/not-a-uuid');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/^params\.id must match pattern/) });
  });

  it('takes a JSON body as sent: no number as a string, no string as a number or a boolean', async () => {
    const name = await call(svc, 'POST', '/destinations', { json: { name: 42, config: { host: 'h' } } });
    expect(name.status, JSON.stringify(name.body)).toBe(400);
    expect(name.body.error).toMatchObject({ code: 'invalid_request', message: 'body.name must be string' });

    const flag = await call(svc, 'POST', '/runs', { json: { destination_id: someId, ...tenant, ignore_deletes: 'true' } });
    expect(flag.status, JSON.stringify(flag.body)).toBe(400);
    expect(flag.body.error).toMatchObject({ code: 'invalid_request', message: 'body.ignore_deletes must be boolean' });

    const timeout = await call(svc, 'POST', '/schedules', {
      json: { destination_id: someId, ...tenant, cron: '*/15 * * * *', source: { type: 'url', url: 'https://example.com/records' }, timeout_seconds: '60' },
    });
    expect(timeout.status, JSON.stringify(timeout.body)).toBe(400);
    expect(timeout.body.error).toMatchObject({ code: 'invalid_request', message: 'body.timeout_seconds must be integer' });
  });

  it('still reads a query string as text coerced to its types', async () => {
    const r = await call(svc, 'GET', '/schedules/next-runs?cron=*/15%20*%20*%20*%20*&count=3');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(JSON.stringify(r.body)).toMatch(/\d{4}-\d{2}-\d{2}T/);
  });
});
