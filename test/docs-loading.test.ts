import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { DocUnderTest, ROOT, type DocBlock } from './support/doc-blocks.js';
import { docShell, envFor, inRolledBackTransaction, runShell, runSnippet, shapeOf, type DocShell } from './support/doc-shell.js';

// Issue 16: the blocks of the loading docs, run in one folder against one
// database, in the order a reader meets them: getting-started.md writes the
// dest.json the others use (its db.example.com replaced by the test's
// database through PGLAND_HOST and friends, which win over the file), the
// loads land the docs' own records, the summaries printed are compared with
// the docs' examples (numbers and ids aside), and landed-tables.md's queries
// run against what landed.

const started = new DocUnderTest('docs/getting-started.md');
const cli = new DocUnderTest('docs/cli.md');
const input = new DocUnderTest('docs/input.md');
const landed = new DocUnderTest('docs/landed-tables.md');
const evolution = new DocUnderTest('docs/schema-evolution.md');

let db: TestDatabase;
let shell: DocShell;
beforeAll(async () => {
  db = await freshDatabase('docs_loading');
  shell = docShell(envFor(db.url));
});
afterAll(async () => {
  await db?.drop();
  if (shell) rmSync(shell.cwd, { recursive: true, force: true });
});

/** Runs a block; fails naming it unless it exits with this code. */
async function run(doc: DocUnderTest, block: DocBlock, code = 0, stdin?: string): Promise<string> {
  const r = await runShell(shell, block.text, stdin === undefined ? {} : { input: stdin });
  expect(r.code, `${doc.path}:${block.line} exited ${r.code}\n${block.text}\n${r.stdout}\n${r.stderr}`).toBe(code);
  doc.ran(block);
  return r.stdout;
}

/** The blocks of a language, checked to be as many as the test expects. */
function blocks(doc: DocUnderTest, lang: string, count: number): DocBlock[] {
  const found = doc.runnable(lang);
  expect(
    found.map((b) => b.line),
    `${doc.path}: the test expects ${count} \`\`\`${lang} blocks to run`,
  ).toHaveLength(count);
  return found;
}

/** A record wrapped over several lines for the page, as one input line. */
const oneLine = (b: DocBlock) =>
  b.text
    .split('\n')
    .map((l) => JSON.stringify(JSON.parse(l)) + '\n')
    .join('');

describe('docs/getting-started.md runs as written (issue 16)', () => {
  it("the Permissions statements give the role its schema (in a transaction rolled back: the role is the doc's)", async () => {
    const [grants] = blocks(started, 'sql', 1);
    const ok = await inRolledBackTransaction(db.pool, async (client) => {
      await client.query('CREATE ROLE pgland');
      await client.query(grants!.text);
      return (await client.query(`SELECT has_schema_privilege('pgland', 'pgland', 'CREATE') AS ok`)).rows[0].ok as boolean;
    });
    expect(ok).toBe(true);
    started.ran(grants!);
  });

  it('dest.json, runs, the first load and its summary, and the library call', async () => {
    const [config, record] = blocks(started, 'json', 2);
    const [runs, load] = blocks(started, 'sh', 2);
    const [summary] = blocks(started, 'text', 1);
    shell.write('dest.json', config!.text);
    started.ran(config!);
    expect(await run(started, runs!)).toBe('no runs yet\n');

    shell.write('contacts.ndjson', oneLine(record!));
    started.ran(record!);
    const printed = await run(started, load!);
    expect(shapeOf(printed)).toBe(shapeOf(summary!.text));
    started.ran(summary!);
    expect(printed).toMatch(/^ {2}inserted {3}1$/m);

    const [code] = blocks(started, 'ts', 1);
    const r = await runSnippet(shell, code!.text, { DATABASE_URL: db.url });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^succeeded \{/);
    started.ran(code!);
  });

  it('runs every block of getting-started.md not marked as not run', () => {
    started.expectEveryBlockRun();
  });
});

describe('docs/cli.md (issue 16)', () => {
  it("the synopsis names commands and options that pgland's --help lists", async () => {
    const [synopsis, summary] = blocks(cli, 'text', 2);
    // Each command's options, then each command's --help.
    const named = new Map<string, Set<string>>();
    for (const line of synopsis!.text.split('\n').filter((l) => l.startsWith('pgland '))) {
      // `pgland airbyte spec | check --config F | write …`: each alternative, under its command.
      const [first, ...alternatives] = line.split(/ \| /);
      const command = first!
        .split(/\s+/)
        .slice(0, 2)
        .filter((w) => /^[a-z]+$/.test(w))
        .join(' ');
      for (const alt of [first!, ...alternatives.map((a) => (a.startsWith('<') ? '' : `${command} ${a}`))].filter((a) => a !== '')) {
        const words = alt.trim().split(/\s+/);
        const end = words.findIndex((w) => /^[-[(<]/.test(w));
        const name = words
          .slice(0, end === -1 ? Math.min(words.length, 3) : end)
          .filter((w) => /^[a-z]+$/.test(w))
          .join(' ');
        named.set(name, new Set([...(named.get(name) ?? []), ...(alt.match(/--[a-z][\w-]*/g) ?? [])]));
      }
    }
    expect(named.size).toBeGreaterThanOrEqual(14);
    // One after the other: fifteen CLIs starting at once would starve a loaded machine.
    for (const [name, options] of named) {
      const help = await runShell(shell, `${name} --help`, { timeoutMs: 120_000 });
      expect(help.code, `${name} --help\n${help.stderr}`).toBe(0);
      for (const option of options) expect(help.stdout, `docs/cli.md: ${name} ${option}`).toContain(option);
    }
    cli.ran(synopsis!);

    // The summary of a partial run: what it prints, line by line.
    const contacts = readFileSync(join(ROOT, 'examples', 'crm_contacts.ndjson'), 'utf8');
    const r = await runShell(shell, 'pgland load --config dest.json --provider salesforce --customer cli-doc --object crm_contacts', {
      input: contacts + '{"id": "a1", \n',
    });
    expect(r.code, r.stderr).toBe(3);
    expect(shapeOf(r.stdout)).toBe(shapeOf(summary!.text));
    cli.ran(summary!);
  }, 300_000);

  it('runs every block of cli.md not marked as not run', () => {
    cli.expectEveryBlockRun();
  });
});

describe('docs/input.md (issue 16)', () => {
  it("lands each kind's example as the doc says, without a reject or a problem", async () => {
    const [envelope, hubspot, oppSchema, opp, invSchema, inv] = blocks(input, 'json', 6);
    const [common, standard, custom] = blocks(input, 'sh', 3);
    // The envelope at the top: one line, landed as it is.
    const top = await runShell(shell, 'pgland load --config dest.json --provider salesforce --customer input-doc --object crm_contacts --json', {
      input: envelope!.text,
    });
    expect(top.code, top.stderr).toBe(0);
    expect(JSON.parse(top.stdout).counts).toMatchObject({ inserted: 1, rejected: 0, problems: 0 });
    input.ran(envelope!);

    for (const [file, block] of [
      ['contacts.ndjson', hubspot],
      ['opportunity.schema.json', oppSchema],
      ['opportunities.ndjson', opp],
      ['invoice.schema.json', invSchema],
      ['invoices.ndjson', inv],
    ] as const) {
      shell.write(file, file.endsWith('.ndjson') ? oneLine(block!) : block!.text);
      input.ran(block!);
    }
    for (const sh of [common!, standard!, custom!]) {
      const out = await run(input, sh);
      expect(out).toMatch(/^ {2}rejected {3}0$/m);
      expect(out).toMatch(/^ {2}problems {3}0$/m);
    }
    const columns = async (table: string) =>
      (
        await db.pool.query(
          `SELECT column_name || ' ' || data_type AS c FROM information_schema.columns
            WHERE table_schema = 'pgland' AND table_name = $1 AND column_name NOT LIKE '\\_pgland\\_%' AND column_name <> 'id' ORDER BY ordinal_position`,
          [table],
        )
      ).rows.map((r) => r.c);
    expect(await columns('salesforce_opportunity')).toEqual([
      'amount numeric',
      'close_date date',
      'is_won boolean',
      'last_modified_date timestamp with time zone',
      'name text',
    ]);
    expect(await columns('custom_invoice_c')).toEqual(['amount_c numeric', 'due_date_c date', 'status_c text']);
    const { rows } = await db.pool.query(`SELECT first_name, last_name, created_at FROM pgland.crm_contacts WHERE _pgland_provider = 'hubspot' AND id = '901'`);
    expect(rows).toEqual([{ first_name: 'Ada', last_name: 'Lovelace', created_at: new Date('2025-07-01T00:00:00Z') }]);
  });

  it('runs every block of input.md not marked as not run', () => {
    input.expectEveryBlockRun();
  });
});

describe('docs/landed-tables.md (issue 16)', () => {
  it('the declared schema lands an Account, and each query pattern runs against the landed tables', async () => {
    const [declared] = blocks(landed, 'json', 1);
    shell.write('account.schema.json', declared!.text);
    const account = {
      id: '0015e00000Acc',
      last_modified_at: '2026-01-15T10:30:00Z',
      raw_data: { Name: 'Acme', AnnualRevenue: 1e6, NumberOfEmployees: 'about 40', CreatedDate: '2025-01-01T00:00:00Z', Rating: 'Hot', ParentId: null },
    };
    const load = await runShell(
      shell,
      'pgland load --config dest.json --provider salesforce --customer acme --kind standard --object Account --schema-file account.schema.json',
      { input: JSON.stringify(account) + '\n' },
    );
    expect(load.code, load.stderr).toBe(3); // the problem: "about 40" is not an integer
    landed.ran(declared!);
    const more = await runShell(shell, 'pgland load --config dest.json --provider salesforce --customer acme --object crm_opportunities', {
      input: JSON.stringify({ id: 'O1', last_modified_at: '2026-01-15T10:30:00Z', data: { stage: 'Proposal', status: 'OPEN', amount: 1200.5 } }) + '\n',
    });
    expect(more.code, more.stderr).toBe(0);
    // A contact whose created_at is not a time: the problem the first query of "What did not land" finds.
    const contact = await runShell(shell, 'pgland load --config dest.json --provider salesforce --customer acme --object crm_contacts', {
      input: JSON.stringify({ id: 'C-late', last_modified_at: '2026-01-15T10:30:00Z', data: { first_name: 'Late', created_at: 'soon' } }) + '\n',
    });
    expect(contact.code, contact.stderr).toBe(3);
    const accounts = await runShell(
      shell,
      'pgland load --config dest.json --provider salesforce --customer acme --object crm_accounts --input examples/crm_accounts.ndjson',
    );
    expect(accounts.code, accounts.stderr).toBe(0);

    const results: unknown[] = [];
    for (const b of blocks(landed, 'sql', 5)) {
      try {
        const r = await db.pool.query(b.text);
        results.push(r);
      } catch (e) {
        throw new Error(`docs/landed-tables.md:${b.line}: ${(e as Error).message}\n${b.text}`);
      }
      landed.ran(b);
    }
    type Result = { rows: Record<string, unknown>[] };
    const [direct, , , pipeline, notLanded] = results as [Result[], Result, Result, Result[], Result[]];
    expect(direct[2]!.rows).toEqual([{ id: '0015e00000Acc', rating: 'Hot' }]);
    expect(pipeline.length).toBe(2);
    expect(notLanded[0]!.rows).toMatchObject([{ record_id: 'C-late', field: 'created_at', value_excerpt: 'soon' }]);
    expect(notLanded[1]!.rows).toMatchObject([{ id: '0015e00000Acc', sent: 'about 40' }]);
  });

  it('runs every block of landed-tables.md not marked as not run', () => {
    landed.expectEveryBlockRun();
  });
});

describe('docs/schema-evolution.md (issue 16)', () => {
  it("pgland plan's three forms print the plans and change nothing", async () => {
    const [plan] = blocks(evolution, 'sh', 1);
    shell.write('deal.json', JSON.stringify({ type: 'object', properties: { dealname: { type: 'string' }, amount: { type: 'number' } } }));
    const before = await db.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'pgland'`);
    const out = await run(evolution, plan!);
    expect(out).toContain('-- pgland.crm_contacts: up to date');
    expect(out).toMatch(/^-- pgland\.custom_deal: create$/m);
    expect(out).toContain('CREATE TABLE IF NOT EXISTS "pgland"."custom_deal" (');
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'pgland'`)).rows).toEqual(before.rows);
  });

  it('runs every block of schema-evolution.md not marked as not run', () => {
    evolution.expectEveryBlockRun();
  });
});
