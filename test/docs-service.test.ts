import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { docBlocks, DocUnderTest, runBlocks } from './support/doc-blocks.js';
import { requestBodyValidator } from './support/doc-shell.js';
import { SERVE_ENV } from '../src/service/options.js';
import { WRITE_THROUGH_CEILING, WRITE_THROUGH_DEFAULTS } from '../src/service/runs/write-through-limits.js';
import { until } from './support/service.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const doc = new DocUnderTest('docs/service.md');
const TOKEN = 'docs-token-' + randomBytes(8).toString('hex');

let db: TestDatabase;
let server: ReturnType<typeof spawnCli>;
let url: string;
let cwd: string;

beforeAll(async () => {
  db = await freshDatabase('docs_service');
  // The customer's own tables of docs/own-tables.md, which "Into your own tables" writes into.
  const ownTables = docBlocks(readFileSync(join(ROOT, 'docs', 'own-tables.md'), 'utf8')).find((b) => b.lang === 'sql');
  await db.pool.query(ownTables!.text);
  cwd = mkdtempSync(join(tmpdir(), 'pgland-docs-'));
  symlinkSync(join(ROOT, 'examples'), join(cwd, 'examples'));
  server = spawnCli(['serve', '--port', '0', '--control-url', db.url], {
    env: { PGLAND_SECRET_KEY: randomBytes(32).toString('base64'), PGLAND_API_TOKEN: TOKEN, PGLAND_LOG_LEVEL: 'info' },
  });
  let stderr = '';
  server.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = await until('pgland serve to listen', () => /pgland serve: listening on (http:\/\/\S+)/.exec(stderr)?.[1], 60_000);
});
afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.done;
  if (cwd) rmSync(cwd, { recursive: true, force: true });
  await db?.drop();
});

describe('docs/service.md runs as written (issue 15)', () => {
  it('runs every curl example against a real pgland serve, and they leave the expected rows', async () => {
    const blocks = doc.runnable('sh');
    expect(doc.blocks.filter((b) => b.text.includes('curl')).length).toBeGreaterThanOrEqual(3);

    const port = new URL(url).port;
    const result = await runBlocks(blocks, {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, PGLAND_API_TOKEN: TOKEN, PGLAND_DATABASE_URL: db.url },
      timeoutMs: 120_000,
      rewrite: (text) => text.replaceAll('localhost:8080', `localhost:${port}`),
    });
    expect(result.failed, `docs/service.md line ${result.failed?.block.line} failed:\n${result.failed?.stdout}\n${result.stderr}`).toBeUndefined();
    expect(result.code, result.stderr).toBe(0);
    expect(result.done).toHaveLength(blocks.length);
    doc.ran(blocks);

    // The destination answered its test, the commit and the write-through succeeded.
    const out = result.done.map((d) => d.stdout).join('');
    expect(out).toMatch(/^true$/m);
    expect(out).toMatch(/"status":"succeeded"/);

    // What they leave: the example's 40 contacts by the full refresh, and the write-through's one.
    const ids = new Set(
      readFileSync(join(ROOT, 'examples', 'crm_contacts.ndjson'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    );
    const { rows } = await db.pool.query(`SELECT id, first_name FROM landing.crm_contacts WHERE _pgland_customer_id = 'acme' ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual([...ids, '003C000099'].sort());
    expect(rows.find((r) => r.id === '003C000099')).toMatchObject({ first_name: 'Ada' });
    // The load into the customer's own table: the lead, normalised by its mapping, with its generated key.
    const lead = await db.pool.query(`SELECT lead_id::int AS id, email, first_name FROM public.leads`);
    expect(lead.rows).toEqual([{ id: 1, email: 'lin@example.com', first_name: 'Lin' }]);
    expect(out).toContain('{"status":"succeeded","inserted_id":1,"counts":{"inserted":1}}');
    const runs = await db.pool.query(`SELECT origin, status FROM pgland_control.runs ORDER BY created_at`);
    expect(runs.rows).toEqual([{ origin: 'http', status: 'succeeded' }]);
  });

  it('the schedule body is one the API takes (issue 16)', () => {
    const [schedule, ...others] = doc.runnable('json').filter((b) => !b.text.includes('body_too_large'));
    expect(others).toEqual([]);
    const body = JSON.parse(schedule!.text);
    body.destination_id = '00000000-0000-4000-8000-000000000000'; // "…" on the page
    const validate = requestBodyValidator('/schedules');
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    doc.ran(schedule!);
  });

  it('a write-through past its limit answers what the page shows: the limit, and a run instead', async () => {
    const block = doc.runnable('json').find((b) => b.text.includes('body_too_large'))!;
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${url}/destinations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'limits', config: db.config({ schema: 'limits' }) }),
    });
    const { id } = (await created.json()) as { id: string };
    const records = Array.from({ length: WRITE_THROUGH_DEFAULTS.maxRecords + 1 }, (_, i) => ({
      id: `r${i}`,
      last_modified_at: '2026-03-01T10:00:00Z',
      data: {},
    }));
    const r = await fetch(`${url}/destinations/${id}/records`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ provider: 'salesforce', customer_id: 'limits', object: 'crm_contacts', records }),
    });
    expect(r.status).toBe(413);
    expect(await r.json()).toEqual(JSON.parse(block.text));
    const landed = await db.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'limits' AND tablename = 'crm_contacts'`);
    expect(landed.rows[0].n).toBe(0);
    doc.ran(block);
  });

  it('lists every setting of pgland serve, the write-through limits with their default and ceiling as in the code', () => {
    const rows = new Map(
      readFileSync(join(ROOT, 'docs', 'service.md'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('| '))
        .map((l) => l.split('|').map((c) => c.trim()))
        .map((cells) => [cells[2]!.replace(/`/g, ''), cells] as const),
    );
    expect(Object.values(SERVE_ENV).filter((name) => !rows.has(name))).toEqual([]);
    const [, , , recordsDefault, recordsMeaning] = rows.get('PGLAND_WRITE_THROUGH_MAX_RECORDS')!;
    const [, , , bytesDefault, bytesMeaning] = rows.get('PGLAND_WRITE_THROUGH_MAX_BYTES')!;
    expect(recordsDefault).toBe(String(WRITE_THROUGH_DEFAULTS.maxRecords));
    expect(recordsMeaning).toContain(`at most ${WRITE_THROUGH_CEILING.maxRecords}`);
    expect(bytesDefault).toMatch(new RegExp(`^${WRITE_THROUGH_DEFAULTS.maxBytes} `));
    expect(bytesMeaning).toContain(`at most ${WRITE_THROUGH_CEILING.maxBytes}`);
  });

  it('runs every block of service.md not marked as not run (issue 16)', () => {
    doc.expectEveryBlockRun();
  });
});
