import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { runCli } from './support/cli.js';
import { contact, ndjson } from './support/records.js';

let db: TestDatabase;
let dir: string;
let configFile: string;

beforeAll(async () => {
  db = await freshDatabase('cli_load');
  dir = mkdtempSync(join(tmpdir(), 'pgland-cli-'));
  // The demo's embedded server may run as another user (when the tests run as root): it must be able to enter this folder.
  chmodSync(dir, 0o755);
  configFile = join(dir, 'dest.json');
  writeFileSync(configFile, JSON.stringify(db.config({ schema: 'cli' })));
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tenantArgs = ['--provider', 'salesforce', '--customer', 'acme', '--object', 'crm_contacts'];
const runIds: string[] = [];

describe('pgland load and runs (issue 2)', () => {
  it('loads a file, exits 0 and prints the summary', async () => {
    const input = join(dir, 'contacts.ndjson');
    writeFileSync(input, ndjson(Array.from({ length: 25 }, (_, i) => contact(i))));
    const r = await runCli(['load', '--config', configFile, ...tenantArgs, '--input', input]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /^run ([0-9a-f-]{36}): succeeded in /m.exec(r.stdout);
    expect(m).not.toBeNull();
    runIds.push(m![1]!);
    expect(r.stdout).toMatch(/table +cli\.crm_contacts/);
    expect(r.stdout).toMatch(/read +25 lines in 1 batches/);
    expect(r.stdout).toMatch(/inserted +25\n/);
    expect(r.stdout).toMatch(/rejected +0\n/);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM cli.crm_contacts`);
    expect(rows[0].n).toBe(25);
  });

  it('exits 3 when a line is rejected, and keeps the reject with its line number', async () => {
    const lines = [JSON.stringify(contact(100)), '', '{"id": "no timestamp"}', JSON.stringify(contact(101))];
    const r = await runCli(['load', '--config', configFile, ...tenantArgs, '--input', '-'], { input: ndjson(lines) });
    expect(r.code).toBe(3);
    const runId = /^run ([0-9a-f-]{36}): partial /m.exec(r.stdout)?.[1];
    expect(runId).toBeDefined();
    runIds.push(runId!);
    expect(r.stdout).toMatch(/rejected +1 +\(see cli\._pgland_rejects\)/);
    const { rows } = await db.pool.query(`SELECT line_number::int, record_id, reason, raw_text FROM cli._pgland_rejects WHERE run_id = $1`, [runId]);
    expect(rows).toEqual([
      { line_number: 3, record_id: 'no timestamp', reason: expect.stringMatching(/last_modified_at/), raw_text: '{"id": "no timestamp"}' },
    ]);
    const landed = await db.pool.query(`SELECT id FROM cli.crm_contacts WHERE id = ANY($1) ORDER BY id`, [[contact(100).id, contact(101).id]]);
    expect(landed.rowCount).toBe(2);
  });

  it('exits 2 on an invalid config, names the field, and never prints the password', async () => {
    const secret = 'Hunter2-pw-7f3a9c';
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ host: '127.0.0.1', port: 'abc', user: 'pgland', password: secret, url: `postgres://u:${secret}@h/db` }));
    const r = await runCli(['load', '--config', bad, ...tenantArgs, '--input', '-'], { input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"port"/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('lists the runs as JSON', async () => {
    const r = await runCli(['runs', '--config', configFile, '--json']);
    expect(r.code).toBe(0);
    const runs = JSON.parse(r.stdout) as { run_id: string; status: string; object: string; rows_read: string }[];
    expect(runs.map((x) => x.run_id).sort()).toEqual([...runIds].sort());
    // Newest first.
    expect(runs.map((x) => x.run_id)).toEqual([...runIds].reverse());
    expect(runs.map((x) => x.status)).toEqual(['partial', 'succeeded']);
    expect(runs.map((x) => x.rows_read)).toEqual(['3', '25']);
  });

  it('treats an empty PGLAND_LOG_LEVEL as the default level (regression, issue 2)', async () => {
    const r = await runCli(['runs', '--config', configFile], { env: { PGLAND_LOG_LEVEL: '' } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/partial +salesforce\/acme\/crm_contacts/);
  });
});

describe('pgland demo (issue 2)', () => {
  it('starts its own embedded server, lands the sample sync and prints what landed', async () => {
    // As the README's user runs it: no PGLAND_LOG_LEVEL.
    const r = await runCli(['demo', '--no-wait', '--data-dir', join(dir, 'demo')], { env: { PGLAND_LOG_LEVEL: undefined } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Landed');
    expect(r.stdout).toMatch(/pgland\.crm_accounts: [1-9]\d* rows/);
    expect(r.stdout).toMatch(/pgland\.crm_contacts: [1-9]\d* rows/);
    // --no-wait: the server is stopped, so no connection string to it (issue 16).
    expect(r.stdout).not.toMatch(/postgres:\/\//);
    expect(r.stdout).toMatch(/The embedded PostgreSQL is stopped; its data stays in /);
  });
});
