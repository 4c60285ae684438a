import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, type Destination } from '../src/index.js';
import { silentLogger, type Logger } from '../src/log.js';
import { singerConfig, type ProtocolOptions } from '../src/protocols/config.js';
import { runSinger } from '../src/protocols/singer.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 22: pgland as the Singer SDK's target tests expect it. Recorded
// message streams (test/fixtures/protocols/sdk-*.singer, in the shape of the
// SDK's and MeltanoLabs' target-postgres test streams) land in a real PostgreSQL.

const SCHEMA = 'singer_sdk';
let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('singer_sdk');
  dest = await openDestination(db.config({ schema: SCHEMA }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/protocols/${name}`, import.meta.url), 'utf8');

/** A logger whose lines the test can read. */
function capturingLogger(): { log: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

async function run(text: string, extra: Partial<ProtocolOptions> = {}, log: Logger = silentLogger()) {
  const out: string[] = [];
  const options = { ...singerConfig({}).options, customerId: 'acme', ...extra };
  const result = await runSinger(dest, { input: Readable.from([text]), emit: (l) => void out.push(l), log }, options);
  return { out, result };
}

async function rows(table: string, where = 'true'): Promise<Record<string, unknown>[]> {
  const { rows: r } = await db.pool.query(`SELECT * FROM ${SCHEMA}.${table} WHERE ${where} ORDER BY id`);
  return r;
}

async function columnTypes(table: string): Promise<Record<string, string>> {
  const { rows: r } = await db.pool.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name NOT LIKE '\\_%'`,
    [SCHEMA, table],
  );
  return Object.fromEntries(r.map((c) => [c.column_name, c.data_type]));
}

describe('pgland singer as the Singer SDK expects (issue 22)', () => {
  it('names each table after its stream; provider_prefix names it <provider>_<stream>', async () => {
    const text = fixture('sdk-anyof.singer');
    const plain = await run(text, { customerId: 'names' });
    expect(plain.result.streams.map((s) => [s.stream, s.schema, s.table])).toEqual([['commits', SCHEMA, 'commits']]);
    const prefixed = await run(text, { customerId: 'names', provider: 'gitlab', providerPrefix: true });
    expect(prefixed.result.streams.map((s) => s.table)).toEqual(['gitlab_commits']);
    expect((await rows('commits', `_pgland_customer_id = 'names'`)).map((r) => [r.id, r._pgland_provider])).toEqual([['a1', 'singer']]);
    expect((await rows('gitlab_commits')).map((r) => [r.id, r._pgland_provider])).toEqual([['a1', 'gitlab']]);
    // A stream named like another kind's table is moved out of its way.
    const custom = await run(
      '{"type":"SCHEMA","stream":"custom_things","schema":{"properties":{}},"key_properties":[]}\n{"type":"RECORD","stream":"custom_things","record":{"a":1}}\n',
    );
    expect(custom.result.streams[0]!.table).toMatch(/^custom_things_[0-9a-f]{8}$/);
  });

  it('lands anyOf with a date-time member as timestamptz', async () => {
    await run(fixture('sdk-anyof.singer'), { customerId: 'anyof' });
    expect(await columnTypes('commits')).toEqual({
      id: 'text',
      id_a5614527: 'text',
      authored_date: 'timestamp with time zone',
      committed_date: 'timestamp with time zone',
      parent_ids: 'jsonb',
      commit_message: 'text',
      legacy_id: 'jsonb',
    });
    const [row] = await rows('commits', `_pgland_customer_id = 'anyof'`);
    expect((row!.committed_date as Date).toISOString()).toBe('2024-01-02T01:04:06.000Z');
  });

  it('stops at a SCHEMA with an unknown type or properties that are not an object, naming the line, stream and property', async () => {
    const err = await run(fixture('sdk-invalid-schema.singer'), { customerId: 'invalid' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'protocol_error',
      message: expect.stringMatching(/^line 3: SCHEMA of stream "test_invalid_schema": property "name" has the unknown type "text"/),
    });
    // What came before the bad line is landed; nothing of the bad stream is.
    expect((await rows('good', `_pgland_customer_id = 'invalid'`)).map((r) => r.id)).toEqual(['1']);
    expect((await db.pool.query(`SELECT to_regclass('${SCHEMA}.test_invalid_schema') AS t`)).rows[0].t).toBeNull();
    const err2 = await run(fixture('sdk-invalid-properties.singer'), { customerId: 'invalid' }).catch((e: unknown) => e);
    expect(err2).toMatchObject({
      code: 'protocol_error',
      message: 'line 1: SCHEMA of stream "test_bad_properties": "properties" must be a JSON object of property schemas',
    });
  });

  it("stops at a record missing its key property by default; missing_key reject keeps it in the rejects in the stream's terms", async () => {
    const text = fixture('sdk-missing-key.singer');
    const err = await run(text, { customerId: 'missing-fail' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'protocol_error', message: 'line 3: key property "id" of stream "test_record_missing_key_property" is missing' });
    expect((await rows('test_record_missing_key_property', `_pgland_customer_id = 'missing-fail'`)).map((r) => r.id)).toEqual(['1']);

    await run(text, { customerId: 'missing-reject', missingKey: 'reject' });
    expect((await rows('test_record_missing_key_property', `_pgland_customer_id = 'missing-reject'`)).map((r) => r.id)).toEqual(['1', '3']);
    const rejects = await db.pool.query(
      `SELECT j.reason FROM ${SCHEMA}._pgland_rejects j JOIN ${SCHEMA}._pgland_runs r USING (run_id) WHERE r.customer_id = 'missing-reject'`,
    );
    expect(rejects.rows).toEqual([{ reason: 'line 3: key property "id" of stream "test_record_missing_key_property" is missing' }]);
  });

  it('refuses key properties that changed since the rows were landed, instead of landing every record twice; re-keys once the rows are gone', async () => {
    await run(fixture('sdk-key-change-1.singer'), { customerId: 'rekey' });
    const err = await run(fixture('sdk-key-change-2.singer'), { customerId: 'rekey' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'key_changed',
      message: expect.stringMatching(/stream "members" is now keyed by "email", but its rows in singer_sdk.members were landed keyed by "id"/),
    });
    expect((await rows('members', `_pgland_customer_id = 'rekey'`)).map((r) => r.id)).toEqual(['1', '2']);
    // Another tenant is not affected; after deleting this tenant's rows, the new key lands.
    await run(fixture('sdk-key-change-2.singer'), { customerId: 'other' });
    await db.pool.query(`DELETE FROM ${SCHEMA}.members WHERE _pgland_customer_id = 'rekey'`);
    const { out } = await run(fixture('sdk-key-change-2.singer'), { customerId: 'rekey' });
    expect(out).toEqual(['{"members":3}']);
    expect((await rows('members', `_pgland_customer_id = 'rekey'`)).map((r) => r.id)).toEqual(['ada@example.com']);
  });

  it('an ACTIVATE_VERSION of a higher version with no record after it retires every row of older versions', async () => {
    await run(fixture('sdk-activate-version-1.singer'), { customerId: 'av' });
    await db.pool.query(
      `INSERT INTO ${SCHEMA}.test_activate_version (id, _pgland_provider, _pgland_customer_id, _pgland_last_modified_at, _pgland_run_id, _pgland_raw_data)
       VALUES ('XX', 'singer', 'av', now(), gen_random_uuid(), '{}')`,
    );
    const live = async () => (await rows('test_activate_version', `_pgland_customer_id = 'av' AND NOT _pgland_is_deleted`)).map((r) => r.id);
    expect(await live()).toEqual(['AF', 'EU', 'OC', 'XX']);
    const ignoring = capturingLogger();
    await run(fixture('sdk-activate-version-2.singer'), { customerId: 'av', activateVersion: false }, ignoring.log);
    expect(await live()).toEqual(['AF', 'EU', 'OC', 'XX']);
    expect(ignoring.lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      expect.stringMatching(/ACTIVATE_VERSION ignored \(activate_version is false\)/),
    ]);
    const { result } = await run(fixture('sdk-activate-version-2.singer'), { customerId: 'av' });
    expect(result.streams[0]!.retired).toBe(4);
    expect(await live()).toEqual([]);
  });

  it('warns, with the count, when NUL characters are stripped from values', async () => {
    const logged = capturingLogger();
    const text =
      '{"type":"SCHEMA","stream":"nuls","schema":{"properties":{"k":{"type":"string"},"t":{"type":"string"}}},"key_properties":["k"]}\n' +
      '{"type":"RECORD","stream":"nuls","record":{"k":"a","t":"x\\u0000y\\u0000z"}}\n';
    await run(text, { customerId: 'nul' }, logged.log);
    // Two in the column t, two in the raw payload.
    expect(logged.lines.filter((l) => l.level === 40)).toEqual([
      expect.objectContaining({ nulStripped: 4, msg: '4 NUL characters were stripped from values: PostgreSQL cannot store them' }),
    ]);
    expect((await rows('nuls', `_pgland_customer_id = 'nul'`)).map((r) => r.t)).toEqual(['xyz']);
  });

  it('--about answers in text, json and markdown without a config, as target-pgland too', async () => {
    const json = await runCli(['singer', '--about', '--format', 'json']);
    expect(json.code).toBe(0);
    const about = JSON.parse(json.stdout) as {
      name: string;
      version: string;
      capabilities: string[];
      settings: { properties: Record<string, { type: string[]; default?: unknown; secret?: boolean }> };
    };
    expect(about).toMatchObject({
      name: 'target-pgland',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      capabilities: expect.arrayContaining(['about', 'activate-version', 'hard-delete']),
    });
    const p = about.settings.properties;
    expect(p.password).toMatchObject({ type: ['string', 'null'], secret: true });
    expect(p.sqlalchemy_url!.secret).toBe(true);
    expect(p.host!.secret).toBeUndefined();
    expect(p.provider!.default).toBe('singer');
    expect(p.missing_key!.default).toBe('fail');
    expect(p.provider_prefix!.default).toBe(false);
    expect(p.batch_size!.default).toBe(50000);

    const md = await runCli(['singer', '--about', '--format', 'markdown']);
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^# `target-pgland`/);
    expect(md.stdout).toContain('| password | string |  | yes |');
    expect(md.stdout).toContain('| provider_prefix | boolean | false |  |');

    const entry = fileURLToPath(new URL('../src/cli/target-pgland.ts', import.meta.url));
    const text = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', entry, '--about'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Name: target-pgland\nDescription: .+\nVersion: /);
    expect(text.stdout).toMatch(/\n {2}password \(string, secret\): /);

    const bad = await runCli(['singer', '--about', '--format', 'yaml']);
    expect(bad.code).toBe(2);
    const none = await runCli(['singer']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--config/);
  });
});
