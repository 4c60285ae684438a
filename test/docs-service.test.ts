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
    const [schedule, ...others] = doc.runnable('json');
    expect(others).toEqual([]);
    const body = JSON.parse(schedule!.text);
    body.destination_id = '00000000-0000-4000-8000-000000000000'; // "…" on the page
    const validate = requestBodyValidator('/schedules');
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    doc.ran(schedule!);
  });

  it('runs every block of service.md not marked as not run (issue 16)', () => {
    doc.expectEveryBlockRun();
  });
});
