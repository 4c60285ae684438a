import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSecretKey, secretBox } from '../src/service/control/secrets.js';
import type { Service } from '../src/service/service.js';
import { freshDatabase, trustsEveryPassword, type TestDatabase } from './support/db.js';
import { call, logLines, startTestService, TEST_SECRET_KEY } from './support/service.js';

let db: TestDatabase;
let svc: Service;

const PASSWORD = 'pw-' + randomBytes(12).toString('hex');
const SSH_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-' + randomBytes(8).toString('hex') + '\n-----END OPENSSH PRIVATE KEY-----';

beforeAll(async () => {
  db = await freshDatabase('service_api');
  svc = await startTestService(db);
});
afterAll(async () => {
  await svc?.stop();
  await db?.drop();
});

describe('destinations over the API (issue 7)', () => {
  let id: string;

  it('creates a destination and never shows its secrets', async () => {
    const config = {
      host: '127.0.0.1',
      port: 5,
      user: 'loader',
      password: PASSWORD,
      schema: 'landing',
      sslmode: 'disable',
      ssh_tunnel: { host: 'bastion.invalid', user: 'pgland', private_key: SSH_KEY, host_key_fingerprint: 'SHA256:' + 'A'.repeat(43) },
    };
    const r = await call(svc, 'POST', '/destinations', { json: { name: 'crm', config } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    id = r.body.id;
    expect(r.body.config).toMatchObject({ host: '127.0.0.1', user: 'loader', password: '[set]', ssh_tunnel: { private_key: '[set]', user: 'pgland' } });
    const got = await call(svc, 'GET', `/destinations/${id}`);
    expect(JSON.stringify(got.body)).not.toContain(PASSWORD);
    expect(JSON.stringify(got.body)).not.toContain('not-a-real-key');
    const list = await call(svc, 'GET', '/destinations');
    expect(list.body.destinations.map((d: { id: string }) => d.id)).toContain(id);
    expect(JSON.stringify(list.body)).not.toContain(PASSWORD);
  });

  it('keeps secrets encrypted at rest, bound to their row', async () => {
    const { rows } = await db.pool.query(`SELECT t::text AS whole, secrets FROM pgland_control.destinations t WHERE id = $1`, [id]);
    expect(rows[0].whole).not.toContain(PASSWORD);
    expect(rows[0].whole).not.toContain('not-a-real-key');
    expect(rows[0].secrets).toMatch(/^v1\.[0-9a-f]{8}\./);
    const box = secretBox(parseSecretKey(TEST_SECRET_KEY));
    expect(JSON.parse(box.open(rows[0].secrets, `destination:${id}`))).toMatchObject({ password: PASSWORD });
    // Copied to another row, or opened with another key, it does not open.
    expect(() => box.open(rows[0].secrets, 'destination:00000000-0000-4000-8000-000000000000')).toThrow(/integrity/);
    const other = secretBox(randomBytes(32));
    expect(() => other.open(rows[0].secrets, `destination:${id}`)).toThrow(/another key/);
    const tampered = rows[0].secrets.slice(0, -4) + (rows[0].secrets.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect(() => box.open(tampered, `destination:${id}`)).toThrow(/integrity/);
  });

  it('keeps a secret sent back as "[set]", removes one left out', async () => {
    const got = await call(svc, 'GET', `/destinations/${id}`);
    // A change that does not move the secrets (test/security-credentials.test.ts: one that does is refused).
    const config = { ...got.body.config, batch_size: 1000 };
    const put = await call(svc, 'PUT', `/destinations/${id}`, { json: { config } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.config).toMatchObject({ batch_size: 1000, password: '[set]' });
    const { rows } = await db.pool.query(`SELECT secrets FROM pgland_control.destinations WHERE id = $1`, [id]);
    const box = secretBox(parseSecretKey(TEST_SECRET_KEY));
    expect(JSON.parse(box.open(rows[0].secrets, `destination:${id}`))).toMatchObject({ password: PASSWORD, ssh_tunnel: { private_key: SSH_KEY } });
    const { password: _p, ...withoutPassword } = config;
    const put2 = await call(svc, 'PUT', `/destinations/${id}`, { json: { config: withoutPassword } });
    expect(put2.body.config.password).toBeUndefined();
  });

  it('refuses invalid configs, naming the key and never a secret', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ host: 'h', password_file: '/etc/shadow' }, /password_file|additional/],
      [{ host: 'h', sslrootcert: '/etc/ssl/private/key.pem' }, /sslrootcert: over the API, give the PEM text/],
      [{ host: 'h', ssh_tunnel: { host: 'b', user: 'u', private_key: '/home/someone/.ssh/id_ed25519' } }, /ssh_tunnel.private_key/],
      [{ host: 'h', ssh_tunnel: { host: 'b', user: 'u', private_key_file: '/home/someone/.ssh/id_ed25519' } }, /private_key_file|additional/],
      [{ host: 'h', sslmode: 'sometimes' }, /sslmode/],
      [{ host: 'h', surprise: true }, /additional|surprise/],
      [{ url: `postgres://u:${PASSWORD}@h/db?ssl=true` }, /unknown query parameter/],
      [{ host: 'h', password: '[set]' }, /stands for a stored secret/],
    ];
    for (const [config, message] of cases) {
      const r = await call(svc, 'POST', '/destinations', { json: { name: 'bad-' + randomBytes(3).toString('hex'), config } });
      expect(r.status, JSON.stringify(config)).toBe(400);
      expect(r.body.error.message).toMatch(message);
      expect(JSON.stringify(r.body)).not.toContain(PASSWORD);
    }
    const dup = await call(svc, 'POST', '/destinations', { json: { name: 'crm', config: { host: 'h' } } });
    expect(dup.status).toBe(409);
    expect((await call(svc, 'GET', '/destinations/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call(svc, 'GET', '/destinations/not-a-uuid')).status).toBe(400);
  });

  it("tests a destination's connection step by step", async () => {
    const good = await call(svc, 'POST', '/destinations', { json: { name: 'reachable', config: db.config({ schema: 'probe' }) } });
    const ok = await call(svc, 'POST', `/destinations/${good.body.id}/test`);
    expect(ok.status).toBe(200);
    expect(ok.body.ok).toBe(true);
    expect(ok.body.steps.map((s: { step: string }) => s.step)).toContain('write');
    // A server that trusts every password (a local PostgreSQL in PGLAND_TEST_DATABASE_URL) has no wrong one.
    if (await trustsEveryPassword(db.url)) return;
    const wrongPassword = { ...db.config(), url: undefined, ...urlParts(db.url), password: PASSWORD };
    const bad = await call(svc, 'POST', '/destinations', { json: { name: 'wrong-password', config: wrongPassword } });
    const failed = await call(svc, 'POST', `/destinations/${bad.body.id}/test`);
    expect(failed.body.ok).toBe(false);
    expect(JSON.stringify(failed.body)).not.toContain(PASSWORD);
    const run = await call(svc, 'POST', '/runs', { json: { destination_id: bad.body.id, provider: 'p', customer_id: 'c', object: 'crm_users' } });
    expect(run.status).toBe(502);
    expect(run.body.error.code).toBe('auth_failed');
    expect(JSON.stringify(run.body)).not.toContain(PASSWORD);
  });

  it('deletes a destination', async () => {
    expect((await call(svc, 'DELETE', `/destinations/${id}`)).status).toBe(204);
    expect((await call(svc, 'GET', `/destinations/${id}`)).status).toBe(404);
    expect((await call(svc, 'DELETE', `/destinations/${id}`)).status).toBe(404);
  });

  it('never wrote a secret to the log', () => {
    const all = logLines.join('\n');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('not-a-real-key');
  });
});

describe('auth, health and the OpenAPI document (issue 7)', () => {
  it('needs the bearer token on the API, not on health and metrics', async () => {
    expect((await call(svc, 'GET', '/destinations', { token: null })).status).toBe(401);
    expect((await call(svc, 'GET', '/destinations', { token: 'wrong' })).status).toBe(401);
    expect((await call(svc, 'POST', '/runs', { token: null, json: {} })).status).toBe(401);
    expect((await call(svc, 'GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
    const ready = await call(svc, 'GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ control_db: 'ok', jobs: 'ok' });
  });

  it('serves Prometheus metrics', async () => {
    const r = await call(svc, 'GET', '/metrics', { token: null });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    for (const name of [
      'pgland_rows_landed_total',
      'pgland_runs',
      'pgland_batch_duration_seconds',
      'pgland_webhook_deliveries_total',
      'pgland_webhook_failures_total',
    ]) {
      expect(r.body).toContain(`# TYPE ${name}`);
    }
  });

  it('serves the OpenAPI document, and docs/openapi.json is that document', async () => {
    const r = await call(svc, 'GET', '/openapi.json', { token: null });
    expect(r.body.openapi).toBe('3.1.0');
    for (const path of [
      '/destinations',
      '/runs',
      '/runs/{id}/batches',
      '/runs/{id}/commit',
      '/runs/{id}/abort',
      '/webhooks/inbound',
      '/schedules',
      '/metrics',
    ]) {
      expect(Object.keys(r.body.paths)).toContain(path);
    }
    expect(r.body.paths['/runs/{id}/batches'].post.requestBody.content).toHaveProperty('application/x-ndjson');
    expect(r.body.paths['/healthz'].get.security).toEqual([]);
    // The config's JSON Schema over the API has no *_file keys.
    expect(JSON.stringify(r.body.paths['/destinations'].post.requestBody)).not.toContain('password_file');
    const file = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));
    const text = JSON.stringify(r.body, null, 2) + '\n';
    if (process.env.PGLAND_UPDATE_OPENAPI === '1') writeFileSync(file, text);
    expect(readFileSync(file, 'utf8'), 'docs/openapi.json is out of date: run this test with PGLAND_UPDATE_OPENAPI=1').toBe(text);
  });

  it('answers unknown routes and bad JSON with an error body', async () => {
    const nowhere = await call(svc, 'GET', '/nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body.error.code).toBe('not_found');
    const bad = await call(svc, 'POST', '/destinations', { body: '{"name": ', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    // Fastify's own client errors answer a code of docs/errors.md, not an FST_ERR_* one.
    expect(bad.body.error.code).toBe('bad_request');
  });
});

function urlParts(url: string): Record<string, unknown> {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), database: u.pathname.slice(1), sslmode: 'disable' };
}
