import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredColumns, openDestination, type Destination } from '../src/index.js';
import { silentLogger } from '../src/log.js';
import { singerConfig, type ProtocolOptions } from '../src/protocols/config.js';
import { runSinger } from '../src/protocols/singer.js';
import { spawnCli, runCli } from './support/cli.js';
import { until } from './support/until.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 9: pgland as a Singer target. Recorded message streams are fed to the
// library function and to `pgland singer`; everything lands in a real PostgreSQL.

const SCHEMA = 'singer_t';
let db: TestDatabase;
let dest: Destination;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase('singer');
  dest = await openDestination(db.config({ schema: SCHEMA }));
  dir = mkdtempSync(join(tmpdir(), 'pgland-singer-'));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/protocols/${name}`, import.meta.url), 'utf8');
const messages = (...msgs: unknown[]): string => msgs.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n') + '\n';
const options = (extra: Partial<ProtocolOptions> = {}): ProtocolOptions => ({ ...singerConfig({}).options, customerId: 'acme', ...extra });

async function run(text: string, extra: Partial<ProtocolOptions> = {}, onEmit?: (line: string) => Promise<void>) {
  const out: string[] = [];
  const result = await runSinger(
    dest,
    {
      input: Readable.from([text]),
      emit: async (line) => {
        await onEmit?.(line);
        out.push(line);
      },
      log: silentLogger(),
    },
    options(extra),
  );
  return { out, result };
}

async function rows(table: string, where = 'true'): Promise<Record<string, unknown>[]> {
  const { rows: r } = await db.pool.query(`SELECT * FROM ${SCHEMA}.${table} WHERE ${where} ORDER BY id`);
  return r;
}

/** Input lines committed for a tenant so far: what its runs' committed batches read. */
async function committedLines(customer: string): Promise<number> {
  const { rows: r } = await db.pool.query(`SELECT coalesce(sum(rows_read), 0)::int AS n FROM ${SCHEMA}._pgland_runs WHERE customer_id = $1`, [customer]);
  return r[0].n;
}

/** Log lines at error level or above (pino writes JSON lines on a non-TTY stderr). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !(l.startsWith('{') && (JSON.parse(l) as { level: number }).level < 50));
}

function meltanoConfig(extra: Record<string, unknown>): string {
  const u = new URL(db.url);
  const path = join(dir, `meltano-${Math.random().toString(36).slice(2)}.json`);
  // As Meltano writes it for MeltanoLabs' target-postgres, defaults included:
  // ssl_mode verify-full must be ignored while ssl_enable is false.
  writeFileSync(
    path,
    JSON.stringify({
      host: u.hostname,
      port: Number(u.port),
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: u.pathname.slice(1),
      default_target_schema: SCHEMA,
      ssl_enable: false,
      ssl_mode: 'verify-full',
      add_record_metadata: true,
      activate_version: true,
      hard_delete: false,
      load_method: 'upsert',
      validate_records: true,
      ...extra,
    }),
  );
  return path;
}

describe('pgland singer: a Singer target (issue 9)', () => {
  it('lands several interleaved streams, each STATE written only once the records before it are committed', async () => {
    const text = fixture('singer-interleaved.singer');
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; value?: unknown });
    // For each STATE: how many RECORDs came before it.
    const expected: { value: unknown; before: number }[] = [];
    let seen = 0;
    for (const m of lines) {
      if (m.type === 'RECORD') seen++;
      if (m.type === 'STATE') expected.push({ value: m.value, before: seen });
    }
    const atEmit: number[] = [];
    const { out, result } = await run(text, {}, async () => {
      atEmit.push(await committedLines('acme'));
    });
    // Every STATE is written, in order, as its value; each after its records were committed.
    expect(out.map((l) => JSON.parse(l))).toEqual(expected.map((e) => e.value));
    expect(atEmit).toEqual(expected.map((e) => e.before));
    expect(result.records).toBe(seen);

    // Keyed by id; the bookmark orders versions: the stale copy of Grace does not win.
    const users = await rows('users');
    expect(users.map((u) => [u.id, u.name, (u._pgland_last_modified_at as Date).toISOString()])).toEqual([
      ['1', 'Ada Lovelace', '2026-01-01T12:00:00.000Z'],
      ['2', 'Grace', '2026-01-01T11:00:00.000Z'],
      ['3', 'Edsger', '2026-01-01T13:00:00.000Z'],
    ]);
    expect(users[0]!._pgland_raw_data).toEqual({ id: 1, name: 'Ada Lovelace', updated_at: '2026-01-01T12:00:00Z' });
    // No key: appended under generated ids, in message order.
    const views = await db.pool.query(`SELECT path, user_id::int FROM ${SCHEMA}.page_views ORDER BY _pgland_last_modified_at`);
    expect(views.rows).toEqual([
      { path: '/home', user_id: 1 },
      { path: '/pricing', user_id: 2 },
      { path: '/docs', user_id: 1 },
    ]);
    // A composite key: a JSON array of the values.
    expect((await rows('orders')).map((o) => [o.id, o.total])).toEqual([
      ['["A-1","eu"]', '12.5'],
      ['["A-1","us"]', '7'],
    ]);
  });

  it('with flush_interval_ms, holds STATEs and commits less often, still writing each one after its records', async () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } } };
    const msgs: unknown[] = [{ type: 'SCHEMA', stream: 'chatty', schema, key_properties: ['n'] }];
    for (let n = 1; n <= 30; n++) msgs.push({ type: 'RECORD', stream: 'chatty', record: { n } }, { type: 'STATE', value: n });
    const atEmit: number[] = [];
    const { out } = await run(messages(...msgs), { customerId: 'chatty', flushIntervalMs: 60_000 }, async () => {
      atEmit.push(await committedLines('chatty'));
    });
    // Every STATE, in order; within the interval (counted from the start) they wait for the end of the input: one commit.
    expect(out).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    expect(atEmit).toEqual(Array.from({ length: 30 }, () => 30));
    const runs = await db.pool.query(`SELECT count(*)::int AS n FROM ${SCHEMA}._pgland_runs WHERE customer_id = 'chatty'`);
    expect(runs.rows[0].n).toBe(1);
  });

  it('evolves the table when a SCHEMA changes mid-stream: new properties become columns, a widened type is altered', async () => {
    const v1 = { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, age: { type: 'integer' } } };
    const v2 = {
      type: 'object',
      properties: { ...v1.properties, age: { type: 'string' }, email: { type: 'string' }, address: { type: 'object' }, tags: { type: 'array' } },
    };
    const { out } = await run(
      messages(
        { type: 'SCHEMA', stream: 'people', schema: v1, key_properties: ['id'] },
        { type: 'RECORD', stream: 'people', record: { id: 1, name: 'a', age: 30 } },
        { type: 'STATE', value: 1 },
        { type: 'SCHEMA', stream: 'people', schema: v2, key_properties: ['id'] },
        { type: 'RECORD', stream: 'people', record: { id: 2, name: 'b', age: 'forty', email: 'b@example.com', address: { city: 'Oslo' }, tags: ['x'] } },
        { type: 'RECORD', stream: 'people', record: { id: 1, name: 'a2', age: 31, email: 'a@example.com' } },
        { type: 'STATE', value: 2 },
      ),
    );
    expect(out).toEqual(['1', '2']);
    const cols = await db.pool.query(
      `SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'people' AND column_name NOT LIKE '\\_pgland\\_%' ORDER BY column_name`,
      [SCHEMA],
    );
    expect(cols.rows.map((c) => [c.column_name, c.data_type])).toEqual([
      ['_sdc_table_version', 'bigint'],
      ['address', 'jsonb'],
      ['age', 'text'],
      ['email', 'text'],
      ['id', 'text'],
      // The key column is id: the property named id gets a hash of its spelling.
      [declaredColumns(v2).find((c) => c.source.key === 'id')!.name, 'bigint'],
      ['name', 'text'],
      ['tags', 'jsonb'],
    ]);
    const people = await rows('people');
    expect(people.map((p) => [p.id, p.name, p.age, p.email, p.address, p.tags])).toEqual([
      ['1', 'a2', '31', 'a@example.com', null, null],
      ['2', 'b', 'forty', 'b@example.com', { city: 'Oslo' }, ['x']],
    ]);
    const evolved = await db.pool.query(
      `SELECT count(*)::int AS n FROM ${SCHEMA}._pgland_problems p JOIN ${SCHEMA}._pgland_runs r USING (run_id) WHERE r.object = 'people'`,
    );
    expect(evolved.rows[0].n).toBe(0);
  });

  it('lands camelCase, spaced, special-character and reserved-word property names as columns', async () => {
    const record = {
      userId: 7,
      firstName: 'Ada',
      'Last Name': 'Lovelace',
      'e-mail@work': 'ada@example.com',
      'rate (%)': 12.5,
      select: 'kw select',
      from: 'kw from',
      order: 'kw order',
      user: 'kw user',
      'group by': 'kw group by',
      xmin: 'system column',
      id: 'not the key',
      Ünïcødé: 'ü',
      'a"quote': 'q',
    };
    const schema = {
      type: 'object',
      properties: Object.fromEntries(Object.entries(record).map(([k, v]) => [k, { type: typeof v === 'number' ? 'number' : 'string' }])),
    };
    await run(messages({ type: 'SCHEMA', stream: 'Odd Names', schema, key_properties: ['userId'] }, { type: 'RECORD', stream: 'Odd Names', record }));
    const { rows: r } = await db.pool.query(`SELECT to_jsonb(t) AS row FROM ${SCHEMA}.odd_names t`);
    const landed = r[0].row as Record<string, unknown>;
    expect(landed.id).toBe('7');
    const columns = declaredColumns(schema);
    expect(columns.map((c) => c.name)).toEqual(
      expect.arrayContaining(['first_name', 'last_name', 'e_mail_work', 'select', 'from', 'order', 'user', 'group_by']),
    );
    for (const c of columns) {
      const v = record[c.source.key as keyof typeof record];
      expect([c.source.key, landed[c.name]]).toEqual([c.source.key, v]);
    }
  });

  it('appends records of a stream without key properties; duplicates of a keyed record supersede or leave it unchanged', async () => {
    const { out } = await run(
      messages(
        { type: 'SCHEMA', stream: 'audit', schema: { type: 'object', properties: { msg: { type: 'string' } } }, key_properties: [] },
        { type: 'RECORD', stream: 'audit', record: { msg: 'same' } },
        { type: 'RECORD', stream: 'audit', record: { msg: 'same' } },
        {
          type: 'SCHEMA',
          stream: 'items',
          schema: { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer' }, at: { type: 'string' } } },
          key_properties: ['sku'],
          bookmark_properties: ['at'],
        },
        { type: 'RECORD', stream: 'items', record: { sku: 'A', qty: 1, at: '2026-03-01T00:00:00Z' } },
        { type: 'RECORD', stream: 'items', record: { sku: 'A', qty: 2, at: '2026-03-01T00:00:00Z' } },
        { type: 'STATE', value: 'first' },
        { type: 'RECORD', stream: 'items', record: { sku: 'A', qty: 2, at: '2026-03-01T00:00:00Z' } },
        { type: 'STATE', value: 'second' },
      ),
    );
    expect(out).toEqual(['"first"', '"second"']);
    const audit = await rows('audit');
    expect(audit).toHaveLength(2);
    expect(new Set(audit.map((a) => a.id)).size).toBe(2);
    expect(audit.map((a) => a.msg)).toEqual(['same', 'same']);
    expect((await rows('items')).map((i) => [i.id, i.qty])).toEqual([['A', '2']]);
    // Same key and cursor in one batch: the later line wins; sent again later: unchanged.
    const runs = await db.pool.query(
      `SELECT rows_read::int, rows_inserted::int, rows_updated::int, rows_superseded::int, rows_unchanged::int FROM ${SCHEMA}._pgland_runs
        WHERE object = 'items' ORDER BY started_at`,
    );
    expect(runs.rows).toEqual([
      { rows_read: 2, rows_inserted: 1, rows_updated: 0, rows_superseded: 1, rows_unchanged: 0 },
      { rows_read: 1, rows_inserted: 0, rows_updated: 0, rows_superseded: 0, rows_unchanged: 1 },
    ]);
  });

  it("with missing_key: reject, keeps a record without its key value in the rejects, its reason in the stream's terms; the others land (issue 22)", async () => {
    await run(
      messages(
        { type: 'SCHEMA', stream: 'keyed', schema: { type: 'object', properties: { k: { type: 'string' } } }, key_properties: ['k'] },
        { type: 'RECORD', stream: 'keyed', record: { k: 'x' } },
        { type: 'RECORD', stream: 'keyed', record: { k: null, other: 1 } },
        { type: 'RECORD', stream: 'keyed', record: { other: 2 } },
      ),
      { missingKey: 'reject' },
    );
    expect((await rows('keyed')).map((r) => r.id)).toEqual(['x']);
    const rejects = await db.pool.query(
      `SELECT reason, raw_text FROM ${SCHEMA}._pgland_rejects j JOIN ${SCHEMA}._pgland_runs r USING (run_id) WHERE r.object = 'keyed' ORDER BY line_number`,
    );
    expect(rejects.rows.map((r) => r.reason)).toEqual([
      'line 3: key property "k" of stream "keyed" is null',
      'line 4: key property "k" of stream "keyed" is missing',
    ]);
    expect(rejects.rows[0].raw_text).toContain('"message_line":3');
  });

  it('by default stops at a record without its key value, naming the stream, the line and the key property; what came before is landed (issue 22)', async () => {
    const text = messages(
      { type: 'SCHEMA', stream: 'strict', schema: { type: 'object', properties: { k: { type: 'string' } } }, key_properties: ['k'] },
      { type: 'RECORD', stream: 'strict', record: { k: 'first' } },
      { type: 'STATE', value: { at: 1 } },
      { type: 'RECORD', stream: 'strict', record: { other: 1 } },
      { type: 'RECORD', stream: 'strict', record: { k: 'never' } },
    );
    const err = await run(text, { customerId: 'strict' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'protocol_error',
      message: 'line 4: key property "k" of stream "strict" is missing',
      hint: expect.stringMatching(/"missing_key": "reject"/),
    });
    expect((await rows('strict', `_pgland_customer_id = 'strict'`)).map((r) => r.id)).toEqual(['first']);
  });

  it('lands nested objects and arrays as jsonb, strings with escapes and non-ASCII, and big integer keys as written', async () => {
    const schema = {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        title: { type: 'string' },
        meta: { type: 'object', properties: { a: { type: 'object' } } },
        tags: { type: 'array', items: { type: 'string' } },
        matrix: { type: 'array' },
      },
    };
    const weird = 'tab\there, line1\nline2 \\ back "quote" \r cr 🎉 日本語 Ωmega';
    const text =
      messages({ type: 'SCHEMA', stream: 'docs', schema, key_properties: ['id'] }) +
      // A key beyond 2^53 as the tap wrote it: JSON.parse would round it; the
      // raw payload keeps it too (issue 22).
      '{"type": "RECORD", "stream": "docs", "record": {"id": 12345678901234567890, "title": ' +
      JSON.stringify(weird) +
      ', "meta": {"a": {"b": [1, {"c": null}]}}, "tags": ["x", "y"], "matrix": [[1, 2], [3]]}}\n' +
      messages({ type: 'RECORD', stream: 'docs', record: { id: 2, title: 'nul\u0000inside', meta: {}, tags: [], matrix: [] } });
    await run(text);
    const { rows: r } = await db.pool.query(`SELECT id, title, meta, tags, matrix, (_pgland_raw_data->'id')::text AS raw_id FROM ${SCHEMA}.docs ORDER BY id`);
    expect(r).toEqual([
      {
        id: '12345678901234567890',
        title: weird,
        meta: { a: { b: [1, { c: null }] } },
        tags: ['x', 'y'],
        matrix: [[1, 2], [3]],
        raw_id: '12345678901234567890',
      },
      { id: '2', title: 'nulinside', meta: {}, tags: [], matrix: [], raw_id: '2' },
    ]);
  });

  it('ACTIVATE_VERSION deletes the rows of older versions, and only once the new version has landed', async () => {
    await run(fixture('singer-activate-v1.singer'));
    expect((await rows('continents')).map((c) => [c.id, c._sdc_table_version, c._pgland_is_deleted])).toEqual([
      ['AF', '1000', false],
      ['EU', '1000', false],
      ['XX', '1000', false],
    ]);
    const atMid: unknown[] = [];
    await run(fixture('singer-activate-v2.singer'), {}, async (line) => {
      if (line.includes('"mid"')) atMid.push((await rows('continents', 'NOT _pgland_is_deleted')).map((c) => c.id));
    });
    // The ACTIVATE_VERSION before the new version's records deleted nothing.
    expect(atMid).toEqual([['AF', 'EU', 'XX']]);
    // Soft deletes (the destination's default): Atlantis is kept, marked deleted.
    expect((await rows('continents')).map((c) => [c.id, c._sdc_table_version, c._pgland_is_deleted, c._pgland_deleted_at !== null])).toEqual([
      ['AF', '2000', false, false],
      ['AS', '2000', false, false],
      ['EU', '2000', false, false],
      ['XX', '1000', true, true],
    ]);
    const retire = await db.pool.query(
      `SELECT mode, write_mode, status, rows_deleted::int FROM ${SCHEMA}._pgland_runs
        WHERE object = 'continents' AND write_mode = 'delete' ORDER BY started_at`,
    );
    // Each activation is recorded as a run: version 1000 found nothing older, 2000 retired Atlantis.
    expect(retire.rows).toEqual([
      { mode: 'full', write_mode: 'delete', status: 'succeeded', rows_deleted: 0 },
      { mode: 'full', write_mode: 'delete', status: 'succeeded', rows_deleted: 1 },
    ]);
  });

  it("translates the keys of Meltano's target-postgres to pgland's, and refuses what it cannot honour", () => {
    const { destination, options: opts } = singerConfig({
      sqlalchemy_url: 'postgresql+psycopg://u:p@h:5433/db',
      default_target_schema: 'raw',
      ssl_enable: true,
      ssl_mode: 'require',
      ssl_certificate_authority: '~/ca.pem',
      ssh_tunnel: { enable: true, host: 'bastion', port: 2222, username: 'jump', private_key: 'KEY', private_key_password: 'pw' },
      hard_delete: 'true',
      batch_size_rows: 500,
      batch_wait_limit_seconds: 2.5,
      activate_version: false,
      load_method: 'append-only',
      add_record_metadata: true,
      provider: 'github',
      customer: 'acme',
    });
    expect(destination).toEqual({
      url: 'postgresql://u:p@h:5433/db',
      schema: 'raw',
      sslmode: 'require',
      sslrootcert: join(homedir(), 'ca.pem'),
      ssh_tunnel: { host: 'bastion', port: 2222, user: 'jump', private_key: 'KEY', passphrase: 'pw' },
      delete_mode: 'hard',
      batch_size: 500,
    });
    expect(opts).toEqual({
      provider: 'github',
      providerPrefix: false,
      missingKey: 'fail',
      customerId: 'acme',
      kind: 'standard',
      flushIntervalMs: 2500,
      appendOnly: true,
      activateVersion: false,
    });
    expect(singerConfig({ provider_prefix: 'true', missing_key: 'reject' }).options).toMatchObject({ providerPrefix: true, missingKey: 'reject' });
    expect(() => singerConfig({ missing_key: 'skip' })).toThrow(/"missing_key" must be "fail" or "reject"/);
    // pgland's own key wins; ssl_* keys count only with ssl_enable; a disabled tunnel is no tunnel.
    expect(
      singerConfig({ schema: 'mine', default_target_schema: 'theirs', ssl_mode: 'verify-full', ssh_tunnel: { enable: false, host: 'b' } }).destination,
    ).toEqual({ schema: 'mine' });
    expect(() => singerConfig({ stream_maps: { users: { email: '__NULL__' } } })).toThrow(/stream_maps are not supported/);
    expect(() => singerConfig({ load_method: 'overwrite' })).toThrow(/load_method "overwrite" is not supported/);
    expect(() => singerConfig({ kind: 'common' })).toThrow(/"kind" must be "standard" or "custom"/);
  });

  it("runs from the command line with Meltano's target-postgres keys; hard_delete removes retired rows of that tenant only", async () => {
    const config = meltanoConfig({ hard_delete: true, customer: 'hard' });
    const v1 = await runCli(['singer', '--config', config], { input: fixture('singer-activate-v1.singer') });
    expect(v1.code).toBe(0);
    // Warnings only (the test server has no TLS, and ssl_enable is false): no error.
    expect(errorLines(v1.stderr)).toEqual([]);
    const v2 = await runCli(['singer', '--config', config], { input: fixture('singer-activate-v2.singer') });
    expect(v2.code).toBe(0);
    expect(
      v2.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([{ bookmarks: { continents: { version: 2000, mid: true } } }, { bookmarks: { continents: { version: 2000 } } }]);
    expect((await rows('continents', `_pgland_customer_id = 'hard'`)).map((c) => c.id)).toEqual(['AF', 'AS', 'EU']);
    // The other tenant's soft-deleted row is untouched.
    expect((await rows('continents', `_pgland_customer_id = 'acme' AND id = 'XX'`)).map((c) => c._pgland_is_deleted)).toEqual([true]);
  });

  it('stops at a RECORD before its SCHEMA with an error naming the line; what came before is landed', async () => {
    const config = meltanoConfig({ customer: 'early' });
    const r = await runCli(['singer', '--config', config], {
      input: messages(
        { type: 'SCHEMA', stream: 'ok', schema: { type: 'object', properties: { k: { type: 'string' } } }, key_properties: ['k'] },
        { type: 'RECORD', stream: 'ok', record: { k: 'one' } },
        { type: 'STATE', value: { at: 1 } },
        '',
        { type: 'RECORD', stream: 'orphans', record: { k: 'two' } },
        { type: 'STATE', value: { at: 2 } },
      ),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 5: RECORD for stream "orphans" comes before any SCHEMA message for it/);
    expect(r.stdout).toBe('{"at":1}\n');
    expect((await rows('ok', `_pgland_customer_id = 'early'`)).map((o) => o.id)).toEqual(['one']);
    expect(await db.pool.query(`SELECT to_regclass('${SCHEMA}.orphans') AS t`).then((x) => x.rows[0].t)).toBeNull();
  });

  it('when killed between a RECORD and the next STATE, every STATE it wrote is landed and nothing after the last one (regression, issue 9)', async () => {
    const config = meltanoConfig({ customer: 'killed' });
    const { child, done } = spawnCli(['singer', '--config', config]);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const send = (...m: unknown[]): void => void child.stdin!.write(messages(...m));
    const rec = (n: number) => ({ type: 'RECORD', stream: 'ticks', record: { n, at: `2026-02-01T00:00:${String(n).padStart(2, '0')}Z` } });
    send({
      type: 'SCHEMA',
      stream: 'ticks',
      schema: { type: 'object', properties: { n: { type: 'integer' }, at: { type: 'string', format: 'date-time' } } },
      key_properties: ['n'],
      bookmark_properties: ['at'],
    });
    let sent = 0;
    for (let state = 1; state <= 3; state++) {
      for (let i = 0; i < 4; i++) send(rec(++sent));
      send({ type: 'STATE', value: { state } });
      await until(`STATE ${state} on stdout`, () => stdout.includes(`{"state":${state}}`));
      // Written only after its records are committed.
      expect(await committedLines('killed')).toBe(sent);
    }
    // Records after the last STATE, then the kill before the next one.
    send(rec(++sent), rec(++sent));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    const result = await done;
    expect(result.signal).toBe('SIGKILL');
    expect(stdout).toBe('{"state":1}\n{"state":2}\n{"state":3}\n');
    // Landed: exactly what the last written STATE covers.
    expect((await rows('ticks', `_pgland_customer_id = 'killed'`)).map((t) => Number(t.id)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
  });
});
