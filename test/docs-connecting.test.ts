import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUrl } from '../src/config/resolve.js';
import { destinationSchema, sshTunnelSchema } from '../src/config/schema.js';
import { quoteIdent } from '../src/sql/ident.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { DocUnderTest, type DocBlock } from './support/doc-blocks.js';
import { docShell, inRolledBackTransaction, runShell, type DocShell } from './support/doc-shell.js';

// Issue 16: docs/configuration.md and docs/connecting.md. Their configs are
// validated by the config schema (src/config/schema.ts), the encoded URL is
// decoded by pgland's URL parser, the grants (the script and the statements
// by hand) are run against the test's database with a role of the test's
// (the page's "app" and "pgland" renamed), and `pgland check` is run as a
// role that may not create the schema: its report is the page's, line by line.

const config = new DocUnderTest('docs/configuration.md');
const connecting = new DocUnderTest('docs/connecting.md');

let db: TestDatabase;
let shell: DocShell;
let database: string;
const role = `docs_role_${randomBytes(4).toString('hex')}`;
beforeAll(async () => {
  db = await freshDatabase('docs_connecting');
  database = new URL(db.url).pathname.slice(1);
  shell = docShell({ DOCS_DB_URL: db.url });
});
afterAll(async () => {
  await dropRole();
  await db?.drop();
  if (shell) rmSync(shell.cwd, { recursive: true, force: true });
});

async function dropRole(): Promise<void> {
  await db?.pool.query(`DROP SCHEMA IF EXISTS landing CASCADE; DROP OWNED BY ${quoteIdent(role)}; DROP ROLE ${quoteIdent(role)}`).catch(() => undefined);
}

/** A statement of the page, for the test's database and role. */
const ours = (text: string) => text.replace(/\bapp\b/g, quoteIdent(database)).replace(/\bpgland\b/g, role);

function one(doc: DocUnderTest, lang: string, count: number): DocBlock[] {
  const found = doc.runnable(lang);
  expect(
    found.map((b) => b.line),
    `${doc.path}: the test expects ${count} \`\`\`${lang} blocks`,
  ).toHaveLength(count);
  return found;
}

describe('docs/configuration.md (issue 16)', () => {
  it('the example config is valid', () => {
    const [example] = one(config, 'json', 1);
    const parsed = destinationSchema.safeParse(JSON.parse(example!.text));
    expect(parsed.error?.issues ?? []).toEqual([]);
    config.ran(example!);
  });

  it('runs every block of configuration.md not marked as not run', () => {
    config.expectEveryBlockRun();
  });
});

describe('docs/connecting.md (issue 16)', () => {
  it('the encoded URL decodes to the user and password it names, and the tunnel is a valid ssh_tunnel', () => {
    const [url, synopsis, report] = one(connecting, 'text', 3);
    void synopsis;
    void report;
    expect(parseUrl(url!.text.trim())).toMatchObject({ user: 'ops@acme', password: 'p@ss:w/rd #1', host: 'db.example.com', port: 5432, database: 'app' });
    connecting.ran(url!);
    const [tunnel] = one(connecting, 'json', 1);
    const parsed = sshTunnelSchema.safeParse((JSON.parse(`{${tunnel!.text}}`) as { ssh_tunnel: unknown }).ssh_tunnel);
    expect(parsed.error?.issues ?? []).toEqual([]);
    connecting.ran(tunnel!);
  });

  it('sql/setup/least-privilege.sql gives option A and option B', async () => {
    const [script] = one(connecting, 'sh', 1);
    const [a, b] = script!.text.split('\n');
    const run = async (line: string) => {
      // psql -d app: the test's database; the role is the test's.
      const r = await runShell(shell, line.replace('-d app', '-d "$DOCS_DB_URL"').replace('role=pgland', `role=${role}`));
      expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    };
    const can = async (sql: string) => (await db.pool.query(sql)).rows[0].ok as boolean;
    await run(a!);
    expect(await can(`SELECT has_database_privilege('${role}', current_database(), 'CREATE, TEMPORARY') AS ok`)).toBe(true);
    await dropRole();
    await run(b!);
    expect(
      await can(`SELECT has_schema_privilege('${role}', 'landing', 'CREATE') AND NOT has_database_privilege('${role}', current_database(), 'CREATE') AS ok`),
    ).toBe(true);
    await dropRole();
    connecting.ran(script!);
  });

  it('the grants by hand, options A and B (rolled back)', async () => {
    for (const block of one(connecting, 'sql', 2)) {
      await inRolledBackTransaction(db.pool, (client) => client.query(ours(block.text)));
      connecting.ran(block);
    }
  });

  it("pgland check's synopsis, and its report for a role that may not create the schema", async () => {
    const [, synopsis, report] = one(connecting, 'text', 3);
    const help = await runShell(shell, 'pgland check --help');
    for (const option of synopsis!.text.match(/--[a-z][\w-]*/g)!) expect(help.stdout).toContain(option);
    connecting.ran(synopsis!);

    const password = randomBytes(12).toString('hex');
    await db.pool.query(`CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD '${password}'`);
    try {
      const u = new URL(db.url);
      shell.write(
        'dest.json',
        JSON.stringify({ host: u.hostname, port: Number(u.port), database, user: role, password, schema: 'pgland', sslmode: 'disable' }),
      );
      const r = await runShell(shell, 'pgland check --config dest.json');
      expect(r.code, r.stderr).toBe(1);
      const steps = (text: string) =>
        text
          .split('\n')
          .map((l) => /^ {2}(PASS|WARN|FAIL|SKIP) {2}(.+?) {2,}/.exec(l))
          .filter((m) => m !== null)
          .map((m) => `${m[2]}: ${m[2] === 'TLS' ? '(as sslmode asks)' : m[1]}`);
      expect(steps(r.stdout)).toEqual(steps(report!.text));
      const explained = (text: string) => text.split('\n').filter((l) => /^ +(cause|fix):/.test(l));
      // The page's database "app" and role "pgland": here, the test's (the schema stays pgland).
      const page = report!.text.replace(/"app"/g, quoteIdent(database)).replace(/TO "pgland"/g, `TO ${quoteIdent(role)}`);
      expect(explained(r.stdout)).toEqual(explained(page));
      expect(r.stdout.trim().split('\n').at(-1)).toBe(report!.text.trim().split('\n').at(-1));
      connecting.ran(report!);
    } finally {
      await dropRole();
    }
  });

  it('runs every block of connecting.md not marked as not run', () => {
    connecting.expectEveryBlockRun();
  });
});
