import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Service } from '../src/service/service.js';
import { parseWebhookSecret, signedHeaders } from '../src/service/webhooks/signing.js';
import { browserMissing, launchChromium, screenshot } from './support/browser.js';
import { freshDatabase, trustsEveryPassword, type TestDatabase } from './support/db.js';
import { contact, ndjson } from './support/records.js';
import { call, localServer, LOOPBACK_NETWORKS, startTestService, TEST_TOKEN } from './support/service.js';

/**
 * The web console (issue 19), end to end: Debian's Chromium signs in to a
 * real `pgland serve`, configures a destination against the test
 * PostgreSQL, tests it, and reads runs, rejects, tables and schedules, all
 * through the console's pages. Every wait is on a condition, bounded.
 */
const missing = browserMissing();
if (missing && process.env.CI) throw new Error(missing);

const NDJSON = { 'content-type': 'application/x-ndjson' };
const INBOUND_SECRET = 'whsec_' + Buffer.alloc(32, 9).toString('base64');

describe.skipIf(missing)('web console in a real browser (issue 19)', () => {
  let db: TestDatabase;
  let svc: Service;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let destId: string;
  let runId: string;
  let password: string;
  let receiver: Awaited<ReturnType<typeof localServer>>;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    db = await freshDatabase('console');
    // A webhook receiver that always fails, so that deliveries give up and can be redelivered.
    receiver = await localServer((_req, res) => {
      res.statusCode = 500;
      res.end('receiver down');
    });
    svc = await startTestService(db, { allowNetworks: LOOPBACK_NETWORKS, inboundSecrets: [INBOUND_SECRET] });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    // A script error or a Content-Security-Policy violation shows here.
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/the server responded with a status of 4\d\d/.test(msg.text())) pageErrors.push(msg.text());
    });
    const u = new URL(db.url);
    // A trusting server (trust authentication) takes any password: the console still has one to keep secret.
    password = decodeURIComponent(u.password) || 'console-test-password';
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    await receiver?.close();
    await db?.drop();
  });

  const heading = (text: string | RegExp) => page.getByRole('heading', { level: 1, name: text });

  it('serves the console with a strict Content-Security-Policy and no inline script', async () => {
    const res = await fetch(svc.url + '/');
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const js = await fetch(svc.url + '/console/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await fetch(svc.url + '/console/..%2Fpackage.json')).status).toBe(404);
  });

  it('signs in with the API token, kept out of the URL and of cookies', async () => {
    await page.goto(svc.url + '/');
    await heading('Sign in').waitFor();
    await screenshot(page, 'signin', { docs: true });
    await page.getByLabel('API token').fill('wrong-token-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'a valid bearer token is required' }).waitFor();
    // By keyboard: Enter in the field submits.
    await page.getByLabel('API token').fill(TEST_TOKEN);
    await page.getByLabel('API token').press('Enter');
    await heading('Destinations').waitFor();
    expect(page.url()).not.toContain(TEST_TOKEN);
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('creates a destination against the test PostgreSQL, and Test connection passes', async () => {
    const u = new URL(db.url);
    await page.getByRole('link', { name: 'Add a destination' }).click();
    await heading('Add a destination').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('warehouse');
    await page.getByLabel('Host', { exact: true }).fill(u.hostname);
    await page.getByLabel('Port', { exact: true }).fill(u.port || '5432');
    await page.getByLabel('Database', { exact: true }).fill(u.pathname.slice(1));
    await page.getByLabel('Schema', { exact: true }).fill('landing');
    await page.getByLabel('User', { exact: true }).fill(decodeURIComponent(u.username));
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('SSL mode').selectOption('disable');
    await page.getByLabel('Records per batch').fill('1000');
    // Every control of the form has a label.
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('main input, main select, main textarea'))
        .filter((el) => (el as HTMLInputElement).labels?.length === 0)
        .map((el) => (el as HTMLInputElement).name),
    );
    expect(unlabelled).toEqual([]);
    await screenshot(page, 'destination-form', { docs: true });
    await page.getByRole('button', { name: 'Save and test connection' }).click();
    await heading(/^Test connection: warehouse/).waitFor();
    // sslmode disable: TLS warns (not encrypted), every other step passes.
    await page.getByText('The connection works; read the warning: TLS.').waitFor({ timeout: 60_000 });
    for (const step of ['reach', 'auth', 'database', 'version', 'schema', 'temporary', 'write']) {
      await expect.poll(() => page.locator(`li[data-step="${step}"] .badge`).first().innerText()).toContain('pass');
    }
    await page.getByText('Option A: pgland creates schema landing').waitFor();
    expect(await page.locator('pre.sql').first().innerText()).toContain('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE');
    await screenshot(page, 'test-connection', { docs: true });
    const list = await call(svc, 'GET', '/destinations');
    destId = list.body.destinations.find((d: { name: string }) => d.name === 'warehouse').id;
    expect(list.body.destinations[0].config).toMatchObject({ password: '[set]', batch_size: 1000, sslmode: 'disable' });
  });

  it('shows a stored secret as "set", never its value', async () => {
    await page.goto(`${svc.url}/#/destinations/${destId}/edit`);
    await heading('Destination warehouse').waitFor();
    await expect.poll(() => page.locator('[data-secret="password"]').innerText()).toMatch(/Password: set/);
    expect(await page.locator('[data-secret="ssh_tunnel.password"]').innerText()).toMatch(/not set/);
    expect(await page.content()).not.toContain(password);
    expect(await page.getByLabel('Replace password').inputValue()).toBe('');
    await screenshot(page, 'destination-edit');
    // Saving without touching the password keeps it: the connection still works.
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    const check = await call(svc, 'POST', `/destinations/${destId}/test`);
    expect(check.body.ok, JSON.stringify(check.body.steps)).toBe(true);
  });

  it('shows a wrong password failing at the login step, with its fix', async (ctx) => {
    if (await trustsEveryPassword(db.url)) ctx.skip(true, 'the test PostgreSQL trusts every password (trust authentication): a wrong one cannot fail');
    const u = new URL(db.url);
    const created = await call(svc, 'POST', '/destinations', {
      json: {
        name: 'wrong-password',
        config: {
          host: u.hostname,
          port: Number(u.port),
          database: u.pathname.slice(1),
          user: decodeURIComponent(u.username),
          password: 'certainly-not-it',
          sslmode: 'disable',
        },
      },
    });
    expect(created.status).toBe(201);
    await page.goto(`${svc.url}/#/destinations/${created.body.id}/test`);
    await page.getByRole('alert').filter({ hasText: 'Failed at: authentication' }).waitFor({ timeout: 60_000 });
    const auth = page.locator('li[data-step="auth"]');
    expect(await auth.locator('.badge').innerText()).toContain('fail');
    expect(await auth.locator('.cause-fix').innerText()).toMatch(/auth_failed[\s\S]*Fix[\s\S]*password/i);
    await screenshot(page, 'test-connection-failed', { docs: true });
  });

  it("shows a run's evolution report with no webhook endpoint: it is kept with the run", async () => {
    expect((await call(svc, 'GET', '/webhooks/endpoints')).body.endpoints).toEqual([]);
    const open = await call(svc, 'POST', '/runs', { json: { destination_id: destId, provider: 'close', customer_id: 'evo', object: 'crm_leads' } });
    expect(open.status, JSON.stringify(open.body)).toBe(201);
    const lead = { id: 'L1', last_modified_at: '2026-02-01T00:00:00Z', data: { first_name: 'Lead' } };
    expect((await call(svc, 'POST', `/runs/${open.body.id}/batches`, { body: ndjson([lead]), headers: NDJSON })).status).toBe(200);
    expect((await call(svc, 'POST', `/runs/${open.body.id}/commit`, { json: {} })).body.status).toBe('succeeded');

    await page.goto(`${svc.url}/#/runs/${open.body.id}`);
    await heading(/Run of crm_leads/).waitFor();
    const report = page.locator('h2:text-is("Schema evolution") + div');
    await report.getByText('table_created').waitFor();
    expect(await report.locator('code').first().innerText()).toBe('landing.crm_leads');
    expect(await report.locator('li').count()).toBeGreaterThan(0);
    // Nothing was sent: the report did not come from a webhook.
    expect(await page.locator('section table').last().locator('tbody').innerText()).toBe('None yet.');
  });

  it('lists a run pushed through the API with its counts, and opens it with its rejects and webhooks', async () => {
    await page.goto(`${svc.url}/#/webhooks`);
    await heading('Webhooks').waitFor();
    await page.getByText('Add an endpoint').click();
    await page.getByLabel('URL', { exact: true }).fill(`${receiver.url}/hooks`);
    expect(await page.getByLabel('Signing secret').inputValue()).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await page
      .locator('tbody tr')
      .filter({ hasText: `${receiver.url}/hooks` })
      .filter({ hasText: 'set' })
      .waitFor();

    const open = await call(svc, 'POST', '/runs', {
      json: { destination_id: destId, provider: 'salesforce', customer_id: 'acme', object: 'crm_contacts', mode: 'full' },
    });
    expect(open.status, JSON.stringify(open.body)).toBe(201);
    runId = open.body.id;
    const batch = await call(svc, 'POST', `/runs/${runId}/batches`, {
      body: ndjson([contact(1), contact(2), '{"this is": not json', contact(3)]),
      headers: NDJSON,
    });
    expect(batch.status, JSON.stringify(batch.body)).toBe(200);
    const committed = await call(svc, 'POST', `/runs/${runId}/commit`, { json: {} });
    expect(committed.body.status, JSON.stringify(committed.body)).toBe('partial');

    await page.goto(`${svc.url}/#/runs?customer_id=acme`);
    await heading('Runs').waitFor();
    const row = page.locator('tbody tr').filter({ hasText: 'crm_contacts' });
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    // Started, Status, Destination, Tenant, Object, Mode, Read, Inserted, Updated, Unchanged, Deleted, Rejected, Problems, Duration
    expect(cells.slice(1, 8)).toEqual([expect.stringContaining('partial'), 'warehouse', 'salesforce / acme', 'crm_contacts', 'full', '4', '3']);
    expect(cells[11]).toBe('1');
    await screenshot(page, 'runs', { docs: true });
    // A filter that matches nothing shows nothing.
    await page.getByLabel('Customer').fill('nobody');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('0 runs.').waitFor();

    await page.goto(`${svc.url}/#/runs/${runId}`);
    await heading(/Run of crm_contacts/).waitFor();
    await page.getByText('Rejects 1–1 of 1.').waitFor();
    const reject = page.locator('.paged').first().locator('tbody tr');
    expect(await reject.locator('td').first().innerText()).toBe('3');
    expect(await reject.innerText()).toContain('not json');
    // The table was created by this run: its evolution report and the webhooks it sent.
    await page.getByText('table_created').waitFor();
    const sent = await page.locator('section table').last().innerText();
    expect(sent).toContain('sync.complete');
    expect(sent).toContain('schema.evolved');
    await screenshot(page, 'run', { docs: true });
  });

  it("shows the landed tables with row counts and the next run's plan", async () => {
    await page.goto(`${svc.url}/#/destinations/${destId}/tables`);
    await heading('Tables: warehouse').waitFor();
    const row = page.locator('tbody tr').filter({ hasText: 'crm_contacts' }).first();
    await row.waitFor();
    expect((await row.locator('td').allInnerTexts())[3]).toBe('3');
    await page.getByRole('heading', { name: /crm_contacts/, level: 3 }).waitFor();
    await screenshot(page, 'tables', { docs: true });
  });

  it('creates a schedule and shows its next run times', async () => {
    await page.goto(`${svc.url}/#/schedules`);
    await heading('Schedules').waitFor();
    await page.getByLabel('Provider').fill('hubspot');
    await page.getByLabel('Customer').fill('globex');
    await page.getByLabel('Object').fill('crm_contacts');
    await page.getByLabel('Cron').fill('0 6 * * 1');
    await page.getByLabel('Timezone').fill('Europe/Paris');
    await page.getByLabel('Timezone').press('Tab');
    await page.locator('.preview .next-runs li').nth(4).waitFor();
    await page.getByLabel('URL serving NDJSON').fill('https://platform.example/export?since={watermark}');
    await page.getByLabel(/^Headers/).fill('Authorization: Bearer very-secret-header');
    await page.getByRole('button', { name: 'Add schedule' }).click();
    const row = page.locator('tbody tr').filter({ hasText: 'globex' });
    await row.waitFor();
    const times = await row.locator('.next-runs li').allInnerTexts();
    expect(times).toHaveLength(3);
    // Mondays, 06:00 in Paris, shown in Paris time; 04:00 or 05:00 UTC.
    for (const t of times) expect(t).toMatch(/^\d{4}-\d\d-\d\d 06:00 Europe\/Paris$/);
    for (const iso of await row.locator('.next-runs time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')!))) {
      expect(new Date(iso).getUTCDay()).toBe(1);
      expect([4, 5]).toContain(new Date(iso).getUTCHours());
    }
    expect(await page.content()).not.toContain('very-secret-header');
    await screenshot(page, 'schedules', { docs: true });
    await row.getByRole('button', { name: /^Pause/ }).click();
    await page.locator('tbody tr').filter({ hasText: 'globex' }).filter({ hasText: 'paused' }).waitFor();
  });

  it('shows an API error with its message and hint, never a stack trace', async () => {
    await page.goto(`${svc.url}/#/runs/00000000-0000-4000-8000-000000000000`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = await alert.innerText();
    expect(text).toContain('no run 00000000-0000-4000-8000-000000000000');
    expect(text).toContain('not_found');
    expect(text).not.toMatch(/\n\s+at /);
    // A refused save names the field and its fix.
    await page.goto(`${svc.url}/#/schedules`);
    await heading('Schedules').waitFor();
    await page.getByLabel('Provider').fill('hubspot');
    await page.getByLabel('Customer').fill('initech');
    await page.getByLabel('Object').fill('crm_contacts');
    await page.getByLabel('Cron').fill('every day');
    await page.getByLabel('URL serving NDJSON').fill('https://platform.example/export');
    await page.getByRole('button', { name: 'Add schedule' }).click();
    // The form's answer (the cron preview may show the same error beside it).
    const refused = page.locator('form [role=alert]').filter({ hasText: 'cron "every day"' }).last();
    await refused.waitFor();
    expect(await refused.innerText()).toMatch(/Fix: five fields/);
  });

  it('shows deliveries with their attempts, redelivers a failed one, and inbound webhooks', async () => {
    // The receiver answers 500: every delivery gives up after its attempts (fast in tests).
    await expect
      .poll(async () => (await call(svc, 'GET', '/webhooks/deliveries?status=failed')).body.deliveries.length, { timeout: 60_000 })
      .toBeGreaterThan(0);
    await page.goto(`${svc.url}/#/webhooks?status=failed`);
    await heading('Webhooks').waitFor();
    const failed = page.locator('tbody tr').filter({ hasText: 'failed' }).first();
    await failed.getByRole('button', { name: /^Attempts/ }).click();
    const attempts = page.locator('#attempts table tbody tr');
    await attempts.first().waitFor();
    expect(await attempts.count()).toBeGreaterThan(1);
    expect(await attempts.first().innerText()).toMatch(/500[\s\S]*receiver down/);
    const before = receiver.got.length;
    await failed.getByRole('button', { name: /^Redeliver/ }).click();
    await expect.poll(() => receiver.got.length, { timeout: 30_000 }).toBeGreaterThan(before);

    // A signed inbound webhook from the platform is listed, its payload shown as text.
    const body = JSON.stringify({ type: 'sync.started', data: { customer_id: 'acme', note: '<img src=x onerror=alert(1)>' } });
    const inbound = await call(svc, 'POST', '/webhooks/inbound', {
      token: null,
      body,
      headers: { 'content-type': 'application/json', ...signedHeaders(parseWebhookSecret(INBOUND_SECRET), 'msg_console_1', body) },
    });
    expect(inbound.status, JSON.stringify(inbound.body)).toBe(200);
    // The redelivered one gives up again: wait until nothing is pending, so that the page lists failed ones.
    await expect.poll(async () => (await call(svc, 'GET', '/webhooks/deliveries?status=pending')).body.deliveries.length, { timeout: 60_000 }).toBe(0);
    await page.goto(`${svc.url}/#/webhooks?status=failed`);
    const received = page.locator('tbody tr').filter({ hasText: 'msg_console_1' });
    await received.waitFor();
    expect(await received.innerText()).toContain('sync.started');
    await received.getByText('Show').click();
    expect(await received.locator('pre').innerText()).toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('main img').count()).toBe(0);
    await page
      .locator('tbody tr')
      .filter({ hasText: 'failed' })
      .first()
      .getByRole('button', { name: /^Attempts/ })
      .click();
    await page.locator('#attempts table tbody tr').first().waitFor();
    await screenshot(page, 'webhooks', { docs: true });
  });

  it('lists a scheduled run that kept failing as a dead letter, linked to its failed runs', async () => {
    // Its source answers 500: the run fails, is retried (fast in tests), then dead-lettered.
    const created = await call(svc, 'POST', '/schedules', {
      json: {
        destination_id: destId,
        provider: 'hubspot',
        customer_id: 'deadco',
        object: 'crm_contacts',
        cron: '0 0 1 1 *',
        source: { type: 'url', url: `${receiver.url}/export` },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await call(svc, 'POST', `/schedules/${created.body.id}/run`)).body.queued).toBe(true);
    await expect.poll(async () => (await call(svc, 'GET', '/jobs/dead-letters')).body.jobs.length, { timeout: 120_000, interval: 500 }).toBeGreaterThan(0);
    await page.goto(`${svc.url}/#/dead-letters`);
    await heading('Dead letters').waitFor();
    const row = page.locator('tbody tr').filter({ hasText: 'hubspot / deadco / crm_contacts' });
    await row.waitFor();
    expect(await row.innerText()).toContain('Run now');
    await screenshot(page, 'dead-letters');
    await row.getByRole('link', { name: 'Failed runs' }).click();
    await heading('Runs').waitFor();
    const failedRun = page.locator('tbody tr').filter({ hasText: 'deadco' }).first();
    await failedRun.waitFor();
    expect(await failedRun.innerText()).toContain('failed');
    expect(await page.getByLabel('Status').inputValue()).toBe('failed');

    // Retry and Discard, where this pgland's API has them; otherwise the page says it cannot.
    const paths = (await call(svc, 'GET', '/openapi.json')).body.paths as Record<string, Record<string, unknown>>;
    await page.goto(`${svc.url}/#/dead-letters`);
    await row.waitFor();
    if (!paths['/jobs/dead-letters/{id}/retry']?.post) {
      await page.getByText('cannot retry or discard dead letters over its API yet').waitFor();
      expect(await row.getByRole('button').count()).toBe(0);
      return;
    }
    const letters = async () => (await call(svc, 'GET', '/jobs/dead-letters')).body.jobs.length as number;
    const runsOf = async () => (await call(svc, 'GET', '/runs?customer_id=deadco')).body.runs.length as number;
    const runsBefore = await runsOf();
    await row.getByRole('button', { name: /^Retry/ }).click();
    // Retried: its run is queued again and runs (the letter went with the retry)…
    await expect.poll(runsOf, { timeout: 60_000, interval: 500 }).toBeGreaterThan(runsBefore);
    // …fails its attempts again (the source still answers 500) into a new letter, which is discarded.
    await expect.poll(letters, { timeout: 120_000, interval: 500 }).toBeGreaterThan(0);
    // The page is already at #/dead-letters (a goto to the same address would not load it again).
    await page.reload();
    page.once('dialog', (d) => void d.accept());
    await row
      .getByRole('button', { name: /^Discard/ })
      .first()
      .click();
    await expect.poll(letters, { timeout: 30_000 }).toBe(0);
    await page.getByText('None yet.').waitFor();
  });

  it("shows every destination's health, with no script error or CSP violation on any page", async () => {
    await page.goto(`${svc.url}/#/destinations`);
    await heading('Destinations').waitFor();
    // warehouse's scheduled runs failed (the dead letter above).
    await page
      .locator('tbody tr')
      .filter({ hasText: 'warehouse' })
      .filter({ hasText: /failed \d+ failed in 24 h/ })
      .waitFor();
    await screenshot(page, 'destinations', { docs: true });
    expect(pageErrors).toEqual([]);
  });

  it('opens directly, without sign-in, when no token is configured (loopback only)', async () => {
    const open = await startTestService(db, { apiToken: undefined, jobs: false });
    try {
      const fresh = await context.browser()!.newContext();
      const p = await fresh.newPage();
      await p.goto(open.url + '/');
      await p.getByRole('heading', { level: 1, name: 'Destinations' }).waitFor({ timeout: 20_000 });
      await fresh.close();
    } finally {
      await open.stop();
    }
  });
});
