import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { DocUnderTest } from './support/doc-blocks.js';

// Issue 22: the commands of docs/protocols.md run. Each fenced `sh` block is
// run as written, in order, from the repository's root, by bash with -e and
// pipefail; `pgland` and `target-pgland` are the checkout's CLI (as after
// `npm install -g .`), and the database is the test's, through
// PGLAND_DATABASE_URL (which wins over a config file, as the doc says).
// A block that cannot run here is marked `<!-- not run: why -->`; they are
// counted. The synopsis is checked against the commands' --help, the Airbyte
// destination.json against `pgland airbyte spec` (issue 16).

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const doc = new DocUnderTest('docs/protocols.md');

let db: TestDatabase;
let bin: string;
beforeAll(async () => {
  db = await freshDatabase('docs_protocols');
  bin = mkdtempSync(join(tmpdir(), 'pgland-docs-bin-'));
  // The CLI from source, as test/support/cli.ts starts it: no build needed.
  for (const [name, main] of [
    ['pgland', 'src/cli/main.ts'],
    ['target-pgland', 'src/cli/target-pgland.ts'],
  ] as const) {
    const shim = join(bin, name);
    writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(join(ROOT, main))} "$@"\n`);
    chmodSync(shim, 0o755);
  }
});
afterAll(async () => {
  await db?.drop();
  if (bin) rmSync(bin, { recursive: true, force: true });
});

function runBlock(body: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', body], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, PGLAND_DATABASE_URL: db.url, PGLAND_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('docs/protocols.md runs (issue 22)', () => {
  it('every sh block exits 0, and the examples land where the doc says', async () => {
    // The shell blocks not run are kept few, each with its reason.
    expect(doc.blocks.filter((b) => b.lang === 'sh' && b.notRun !== undefined).map((b) => b.notRun)).toEqual([
      'installs globally',
      'needs Meltano and a GitHub token',
      'needs Docker and a source image',
    ]);

    const outputs: string[] = [];
    for (const b of doc.ran(doc.runnable('sh'))) {
      const r = await runBlock(b.text);
      expect(r.code, `docs/protocols.md:${b.line}\n${b.text}\n${r.stderr}`).toBe(0);
      outputs.push(r.stdout);
    }
    expect(outputs.length).toBe(4);
    const [singer, airbyte, about, spec] = outputs as [string, string, string, string];

    // Singer: the two STATEs, then the query's rows.
    const singerLines = singer.trim().split('\n');
    expect(JSON.parse(singerLines[0]!)).toEqual({ bookmarks: { users: { updated_at: '2026-01-01T12:00:00Z' } } });
    expect(JSON.parse(singerLines[2]!).rows).toEqual([
      { id: '1', name: 'Ada Lovelace', plan: { code: 'pro', seats: 3 }, deleted: false },
      { id: '2', name: 'Grace Hopper', plan: { code: 'pro', seats: 5 }, deleted: false },
      { id: '3', name: 'Alan Turing', plan: null, deleted: true },
    ]);
    // Airbyte: SUCCEEDED, three echoed states, then the query's rows.
    const abLines = airbyte
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(abLines[0]).toMatchObject({ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } });
    expect(abLines.slice(1, 4).map((m) => [m.type, m.state.destinationStats.recordCount])).toEqual([
      ['STATE', 3],
      ['STATE', 2],
      ['STATE', 2],
    ]);
    expect(abLines[4].rows.map((r: { id: string; _airbyte_meta: { changes: unknown[] } }) => [r.id, r._airbyte_meta.changes.length])).toEqual([
      ['1', 0],
      ['2', 0],
      ['3', 1],
    ]);
    // target-pgland --about, without a config: text, then JSON, then markdown.
    const json = about.slice(about.indexOf('\n{\n') + 1, about.indexOf('\n}\n') + 2);
    expect(about.startsWith('Name: target-pgland\n')).toBe(true);
    expect(JSON.parse(json)).toMatchObject({ name: 'target-pgland', capabilities: expect.arrayContaining(['about', 'activate-version']) });
    const settings = Object.entries((JSON.parse(json) as { settings: { properties: Record<string, { description: string }> } }).settings.properties);
    expect(settings.filter(([, v]) => !v.description).map(([k]) => k)).toEqual([]); // Meltano shows each setting's description
    expect(about.slice(about.indexOf('\n}\n'))).toMatch(/^# `target-pgland`$/m);
    expect(JSON.parse(spec)).toMatchObject({ type: 'SPEC' });

    const count = async (table: string): Promise<number> => Number((await db.pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    expect({
      'tap.users': await count('tap.users'),
      'tap.orders': await count('tap.orders'),
      'crm.users': await count('crm.users'),
      'airbyte.purchases': await count('airbyte.purchases'),
      'airbyte.products': await count('airbyte.products'),
    }).toEqual({ 'tap.users': 3, 'tap.orders': 3, 'crm.users': 3, 'airbyte.purchases': 2, 'airbyte.products': 2 });
    const orders = await db.pool.query(`SELECT id, total::text, _pgland_provider, _pgland_customer_id FROM tap.orders ORDER BY id`);
    expect(orders.rows).toEqual([
      { id: '[1,1]', total: '120.5', _pgland_provider: 'singer', _pgland_customer_id: 'acme' },
      { id: '[1,2]', total: '19.99', _pgland_provider: 'singer', _pgland_customer_id: 'acme' },
      { id: '[2,1]', total: '5', _pgland_provider: 'singer', _pgland_customer_id: 'acme' },
    ]);
  });

  it('the synopsis names commands and options that exist, and destination.json is a config the spec accepts', async () => {
    const [synopsis, ...others] = doc.runnable('text');
    expect(others).toEqual([]);
    // pgland singer --config F: the help of `pgland singer` names each option. Every --help at once.
    await Promise.all(
      synopsis!.text.split('\n').map(async (line) => {
        const words = line.replace(/#.*/, '').trim().split(/\s+/);
        const end = words.findIndex((w) => /^[-[]/.test(w));
        const help = await runBlock(`${words.slice(0, end === -1 ? words.length : end).join(' ')} --help`);
        expect(help.code, `${line}\n${help.stderr}`).toBe(0);
        for (const option of line.replace(/#.*/, '').match(/--[a-z][\w-]*/g) ?? []) expect(help.stdout, `${line}: ${option}`).toContain(option);
      }),
    );
    doc.ran(synopsis!);

    const [destination, ...more] = doc.runnable('json');
    expect(more).toEqual([]);
    const spec = JSON.parse((await runBlock('pgland airbyte spec')).stdout) as { spec: { connectionSpecification: object } };
    const validate = new Ajv({ strict: false }).compile(spec.spec.connectionSpecification);
    expect(validate(JSON.parse(destination!.text)), JSON.stringify(validate.errors)).toBe(true);
    doc.ran(destination!);
  });

  it('runs every block of docs/protocols.md not marked as not run', () => {
    doc.expectEveryBlockRun();
  });
});
