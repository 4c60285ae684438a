import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { DocUnderTest } from './support/doc-blocks.js';
import { docShell, runShell, runSnippet, type DocShell } from './support/doc-shell.js';
import { contact, ndjson } from './support/records.js';

// Issue 16: the README's blocks, run as a reader would: the load command on
// the README's own record, and the library snippet (it lacked `import fs`).

const doc = new DocUnderTest('README.md');

let db: TestDatabase;
let shell: DocShell;
beforeAll(async () => {
  db = await freshDatabase('readme');
  shell = docShell();
});
afterAll(async () => {
  await db?.drop();
  if (shell) rmSync(shell.cwd, { recursive: true, force: true });
});

describe('README (issue 16)', () => {
  it('the library snippet runs as written and lands the file', async () => {
    const [snippet, ...others] = doc.runnable('ts');
    expect(others).toEqual([]);
    shell.write('contacts.ndjson', ndjson(Array.from({ length: 7 }, (_, i) => contact(i))));
    const run = await runSnippet(shell, snippet!.text, { DATABASE_URL: db.url });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    doc.ran(snippet!);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pgland.crm_contacts WHERE _pgland_customer_id = 'acme'`);
    expect(rows[0].n).toBe(7);
  });

  it("the load command lands the README's record, from a dest.json of libpq keys", async () => {
    const [load, ...others] = doc.runnable('sh');
    expect(others).toEqual([]);
    const [record] = doc.runnable('json');
    // The record is wrapped for the page: one line of the input file.
    shell.write('contacts.ndjson', JSON.stringify(JSON.parse(record!.text)) + '\n');
    const u = new URL(db.url);
    shell.write(
      'dest.json',
      JSON.stringify({
        host: u.hostname,
        port: Number(u.port),
        database: u.pathname.slice(1),
        user: u.username,
        ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
        schema: 'pgland',
        sslmode: 'disable',
      }),
    );
    const r = await runShell(shell, load!.text);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}inserted {3}1$/m);
    doc.ran([load!, record!]);
    const { rows } = await db.pool.query(`SELECT first_name, email_addresses FROM pgland.crm_contacts WHERE id = '0035e00000Abc'`);
    expect(rows).toEqual([{ first_name: 'Ada', email_addresses: [{ email_address: 'ada@example.com', email_address_type: 'primary' }] }]);
  });

  it('runs every block of README.md not marked as not run', () => {
    doc.expectEveryBlockRun();
  });
});
