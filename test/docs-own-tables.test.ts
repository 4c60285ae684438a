import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { DocUnderTest, ROOT } from './support/doc-blocks.js';
import { docShell, requestBodyValidator, runShell, runSnippet, type DocShell } from './support/doc-shell.js';

// Issue 16: docs/own-tables.md as written: its tables, its five commands in
// order (each with the exit code the page gives it) and what they leave, the
// library snippet, the mapping file it shows, the synopsis against `pgland
// load --help`, and the HTTP body against the API's schema (docs/openapi.json).

const doc = new DocUnderTest('docs/own-tables.md');

let db: TestDatabase;
let shell: DocShell;
beforeAll(async () => {
  db = await freshDatabase('docs_own_tables');
  shell = docShell({ PGLAND_DATABASE_URL: db.url });
});
afterAll(async () => {
  await db?.drop();
  if (shell) rmSync(shell.cwd, { recursive: true, force: true });
});

describe('docs/own-tables.md runs as written (issue 16)', () => {
  it('creates its tables, and its commands land, enrich, upsert, delete and keep groups as it says', async () => {
    const [tables, ...sql] = doc.runnable('sql');
    expect(sql).toEqual([]);
    await db.pool.query(tables!.text);
    doc.ran(tables!);

    const [mapping] = doc.runnable('json');
    expect(JSON.parse(mapping!.text)).toEqual(JSON.parse(readFileSync(join(ROOT, 'examples', 'own-tables', 'leads-mapping.json'), 'utf8')));
    doc.ran(mapping!);

    const commands = doc.runnable('sh');
    // The insert ends with 3: the lead without an email is rejected.
    const codes = [3, 0, 0, 0, 0];
    expect(commands.map((b) => b.line)).toHaveLength(codes.length);
    for (const [i, b] of commands.entries()) {
      const r = await runShell(shell, b.text);
      expect(r.code, `docs/own-tables.md:${b.line}\n${b.text}\n${r.stdout}\n${r.stderr}`).toBe(codes[i]);
      doc.ran(b);
    }
    const leads = await db.pool.query(`SELECT email, first_name, company, source, employees FROM public.leads ORDER BY email`);
    expect(leads.rows).toEqual([
      { email: 'ada@example.com', first_name: 'Ada', company: 'Analytical Engines Ltd', source: 'web form', employees: 12 },
      { email: 'grace@example.com', first_name: 'Grace', company: 'Navy', source: 'web form', employees: 4000 },
    ]);
    const reject = await db.pool.query(`SELECT reason FROM pgland._pgland_rejects`);
    expect(reject.rows).toEqual([{ reason: expect.stringContaining('email') }]);
    // After the second run Ada's groups are exactly b, c; Grace has lost her row and her groups.
    const groups = await db.pool.query(`SELECT u.email, g.group_name FROM public.user_groups g JOIN public.users u ON u.id = g.user_id ORDER BY 1, 2`);
    expect(groups.rows).toEqual([
      { email: 'ada@example.com', group_name: 'b' },
      { email: 'ada@example.com', group_name: 'c' },
    ]);
    expect((await db.pool.query(`SELECT email FROM public.users`)).rows).toEqual([{ email: 'ada@example.com' }]);
  });

  it('the library snippet inserts its lead and prints the generated key', async () => {
    const [snippet] = doc.runnable('ts');
    const r = await runSnippet(shell, snippet!.text);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { rows } = await db.pool.query(`SELECT lead_id::int AS id, first_name FROM public.leads WHERE email = 'lin@example.com'`);
    expect(rows).toHaveLength(1);
    expect(r.stdout).toBe(`succeeded ${rows[0].id}\n`);
    doc.ran(snippet!);
  });

  it('the synopsis names options of pgland load, and the HTTP body is one the API takes', async () => {
    const [synopsis] = doc.runnable('text');
    const help = await runShell(shell, 'pgland load --help');
    for (const option of synopsis!.text.match(/--[a-z][\w-]*/g)!) expect(help.stdout, option).toContain(option);
    doc.ran(synopsis!);

    const [, body] = doc.runnable('json');
    const validate = requestBodyValidator('/destinations/{id}/into');
    expect(validate(JSON.parse(body!.text)), JSON.stringify(validate.errors)).toBe(true);
    doc.ran(body!);
  });

  it('runs every block of own-tables.md not marked as not run', () => {
    doc.expectEveryBlockRun();
  });
});
