import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredColumns, openDestination, type Destination } from '../src/index.js';
import { silentLogger } from '../src/log.js';
import { runAirbyteWrite, stateLine } from '../src/protocols/airbyte.js';
import { parseCatalog } from '../src/protocols/catalog.js';
import { airbyteConfig, type ProtocolOptions } from '../src/protocols/config.js';
import { runCli } from './support/cli.js';
import { freshDatabase, trustsEveryPassword, type TestDatabase } from './support/db.js';

// Issue 9: pgland as an Airbyte destination: spec, check, and write with a
// configured catalog, fed recorded message streams; real PostgreSQL.

const SCHEMA = 'airbyte_t';
let db: TestDatabase;
let dest: Destination;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase('airbyte');
  dest = await openDestination(db.config({ schema: SCHEMA }));
  dir = mkdtempSync(join(tmpdir(), 'pgland-airbyte-'));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/protocols/${name}`, import.meta.url), 'utf8');
const messages = (...msgs: unknown[]): string => msgs.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n') + '\n';
const options = (customerId: string): ProtocolOptions => ({ ...airbyteConfig({}).options, customerId });

type Catalog = { streams: Record<string, unknown>[] };
const baseCatalog = (): Catalog => JSON.parse(fixture('airbyte-catalog.json')) as Catalog;

async function write(catalog: unknown, text: string, customer: string, onEmit?: (line: string) => Promise<void>, extra: Partial<ProtocolOptions> = {}) {
  const out: string[] = [];
  const result = await runAirbyteWrite(
    dest,
    parseCatalog(catalog),
    {
      input: Readable.from([text]),
      emit: async (line) => {
        await onEmit?.(line);
        out.push(line);
      },
      log: silentLogger(),
    },
    { ...options(customer), ...extra },
  );
  return { out, result };
}

async function rows(table: string, customer: string, where = 'true'): Promise<Record<string, unknown>[]> {
  const { rows: r } = await db.pool.query(
    `SELECT * FROM ${table.includes('.') ? table : `${SCHEMA}.${table}`} WHERE _pgland_customer_id = $1 AND ${where} ORDER BY id`,
    [customer],
  );
  return r;
}

async function committedLines(customer: string): Promise<number> {
  const { rows: r } = await db.pool.query(`SELECT coalesce(sum(rows_read), 0)::int AS n FROM ${SCHEMA}._pgland_runs WHERE customer_id = $1`, [customer]);
  return r[0].n;
}

function configFile(config: Record<string, unknown>): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** A catalog of one stream. */
function oneStream(name: string, entry: Record<string, unknown>): Catalog {
  return {
    streams: [
      {
        stream: {
          name,
          json_schema: { type: 'object', properties: { id: { type: 'string' }, v: { type: 'integer' } } },
          supported_sync_modes: ['full_refresh', 'incremental'],
        },
        sync_mode: 'full_refresh',
        ...entry,
      },
    ],
  };
}

const rec = (stream: string, data: Record<string, unknown>) => ({ type: 'RECORD', record: { stream, data, emitted_at: 1767225600000 } });
const status = (name: string, s: string) => ({
  type: 'TRACE',
  trace: { type: 'STREAM_STATUS', emitted_at: 1767225600000, stream_status: { stream_descriptor: { name }, status: s } },
});

describe('pgland airbyte: spec and check (issue 9)', () => {
  it('spec prints a SPEC message whose connectionSpecification is a valid JSON Schema of the config', async () => {
    const r = await runCli(['airbyte', 'spec']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const msg = JSON.parse(lines[0]!) as { type: string; spec: Record<string, unknown> };
    expect(msg.type).toBe('SPEC');
    expect(msg.spec.supported_destination_sync_modes).toEqual(['overwrite', 'append', 'append_dedup']);
    const spec = msg.spec.connectionSpecification as { properties: Record<string, Record<string, unknown>> };
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(spec), JSON.stringify(ajv.errors)).toBe(true);
    const validate = ajv.compile(spec);
    // The config the tests use passes; a bad one does not.
    const good = {
      ...db.config({ schema: 'x' }),
      provider: 'hubspot',
      customer: 'acme',
      kind: 'custom',
      flush_interval_ms: 100,
      ssh_tunnel: { host: 'b', user: 'u', password: 'p' },
    };
    expect(validate(good), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...good, port: 'abc' })).toBe(false);
    expect(validate({ ...good, sslmode: 'sometimes' })).toBe(false);
    expect(validate({ ...good, no_such_key: 1 })).toBe(false);
    // Secrets are masked by the platform.
    expect(spec.properties.password!.airbyte_secret).toBe(true);
    expect((spec.properties.ssh_tunnel!.properties as Record<string, Record<string, unknown>>).private_key!.airbyte_secret).toBe(true);
    expect(spec.properties.host!.airbyte_secret).toBeUndefined();
  });

  it('check prints CONNECTION_STATUS SUCCEEDED for a good config, FAILED with the reason (and no secret) for a bad one', async () => {
    const ok = await runCli(['airbyte', 'check', '--config', configFile(db.config({ schema: SCHEMA }))]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({
      type: 'CONNECTION_STATUS',
      connectionStatus: { status: 'SUCCEEDED', message: expect.stringMatching(/schema airbyte_t/) },
    });

    // A server that trusts every password (a local PostgreSQL in PGLAND_TEST_DATABASE_URL) has no wrong one.
    if (await trustsEveryPassword(db.url)) return;
    const secret = 'Wr0ng-pa55-9f1c';
    const u = new URL(db.url);
    u.password = secret;
    const bad = await runCli(['airbyte', 'check', '--config', configFile({ url: u.toString(), sslmode: 'disable' })]);
    expect(bad.code).toBe(0);
    const status = JSON.parse(bad.stdout) as { type: string; connectionStatus: { status: string; message: string } };
    expect(status.type).toBe('CONNECTION_STATUS');
    expect(status.connectionStatus.status).toBe('FAILED');
    expect(status.connectionStatus.message).toMatch(/authentication/i);
    expect(bad.stdout + bad.stderr).not.toContain(secret);

    const invalid = await runCli(['airbyte', 'check', '--config', configFile({ host: 'h', port: 'abc', password: secret })]);
    const s2 = JSON.parse(invalid.stdout) as { connectionStatus: { status: string; message: string } };
    expect(s2.connectionStatus).toEqual({ status: 'FAILED', message: expect.stringMatching(/"port"/) });
    expect(invalid.stdout + invalid.stderr).not.toContain(secret);
  });
});

describe('pgland airbyte write (issue 9)', () => {
  it('honours append_dedup (newest cursor wins), append (every record) and overwrite (the older generation goes when the stream completes)', async () => {
    const first = await write(baseCatalog(), fixture('airbyte-sync1.jsonl'), 'acme');
    // Each STATE echoed with the records of its stream since that stream's previous STATE.
    expect(first.out.map((l) => JSON.parse(l).state.destinationStats)).toEqual([
      { recordCount: 2 },
      { recordCount: 2 },
      { recordCount: 2 },
      { recordCount: 2 },
    ]);
    expect(first.out[0]).toContain('"sourceStats":{"recordCount":2},"destinationStats":{"recordCount":2.0}');
    expect((await rows('crm.users', 'acme')).map((u) => [u.id, u.name, u._airbyte_generation_id])).toEqual([
      ['1', 'Ada Lovelace', '1'],
      ['2', 'Grace', '1'],
    ]);
    expect((await rows('events', 'acme')).map((e) => e.kind)).toEqual(['click', 'click']);
    expect((await rows('plans', 'acme')).map((p) => p.code).sort()).toEqual(['basic', 'pro']);

    // Sync 2: the overwrite stream is in generation 2 (the platform's minimum too).
    const catalog2 = baseCatalog();
    Object.assign(catalog2.streams[2]!, { generation_id: 2, minimum_generation_id: 2, sync_id: 102 });
    const second = await write(catalog2, fixture('airbyte-sync2.jsonl'), 'acme');
    expect(second.out).toHaveLength(1);
    expect(JSON.parse(second.out[0]!).state).toEqual({
      type: 'GLOBAL',
      global: { shared_state: { lsn: 42 }, stream_states: [] },
      destinationStats: { recordCount: 5 },
    });
    const users = await rows('crm.users', 'acme');
    expect(users.map((u) => [u.id, u.name, u._pgland_is_deleted])).toEqual([
      ['1', 'Ada Lovelace', false], // the record sent again with an older cursor lost
      ['2', 'Grace Hopper', false],
      ['3', 'Gone', true], // deleted at the source (CDC)
    ]);
    expect((await rows('events', 'acme')).map((e) => e.kind).sort()).toEqual(['click', 'click', 'view']);
    const plans = await rows('plans', 'acme');
    expect(plans.filter((p) => !p._pgland_is_deleted).map((p) => [p.code, p.price, p._airbyte_generation_id])).toEqual([['pro', '35', '2']]);
    expect(
      plans
        .filter((p) => p._pgland_is_deleted)
        .map((p) => p.code)
        .sort(),
    ).toEqual(['basic', 'pro']);
  });

  it('a truncate refresh (minimum_generation_id = generation_id) removes older generations only when the stream completes', async () => {
    const sync = (gen: number, min: number, body: unknown[]) =>
      write(
        oneStream('accounts', { destination_sync_mode: 'append_dedup', primary_key: [['id']], generation_id: gen, minimum_generation_id: min }),
        messages(...body),
        'refresh',
      );
    const live = async () => (await rows('accounts', 'refresh', 'NOT _pgland_is_deleted')).map((a) => [a.id, a._airbyte_generation_id]);

    await sync(1, 0, [
      rec('accounts', { id: 'a', v: 1 }),
      rec('accounts', { id: 'b', v: 1 }),
      rec('accounts', { id: 'c', v: 1 }),
      status('accounts', 'COMPLETE'),
    ]);
    expect(await live()).toEqual([
      ['a', '1'],
      ['b', '1'],
      ['c', '1'],
    ]);

    // A refresh that does not complete deletes nothing.
    await sync(2, 2, [status('accounts', 'STARTED'), rec('accounts', { id: 'a', v: 2 }), status('accounts', 'INCOMPLETE')]);
    expect(await live()).toEqual([
      ['a', '2'],
      ['b', '1'],
      ['c', '1'],
    ]);

    // The next attempt of the same generation completes: b and c, not delivered in generation 2, go.
    await sync(2, 2, [status('accounts', 'STARTED'), rec('accounts', { id: 'a', v: 2 }), rec('accounts', { id: 'b', v: 2 }), status('accounts', 'COMPLETE')]);
    expect(await live()).toEqual([
      ['a', '2'],
      ['b', '2'],
    ]);

    // A merge refresh (minimum 0) keeps the rows of older generations.
    await sync(3, 0, [rec('accounts', { id: 'd', v: 3 }), status('accounts', 'COMPLETE')]);
    expect(await live()).toEqual([
      ['a', '2'],
      ['b', '2'],
      ['d', '3'],
    ]);
  });

  it('an overwrite from a platform without generation ids replaces the stream at the end of a successful input', async () => {
    const catalog = oneStream('legacy', { destination_sync_mode: 'overwrite' });
    await write(catalog, messages(rec('legacy', { id: 'x', v: 1 }), rec('legacy', { id: 'y', v: 1 })), 'legacy');
    await write(catalog, messages(rec('legacy', { id: 'x', v: 2 })), 'legacy');
    const all = await rows('legacy', 'legacy');
    expect(all).toHaveLength(3);
    // No dedup in overwrite: generated ids; the first sync's rows are deleted (soft, the default).
    expect(all.filter((r) => !r._pgland_is_deleted).map((r) => [r.v, /^[0-9a-f-]{36}$/.test(r.id as string)])).toEqual([['2', true]]);
    expect(
      all
        .filter((r) => r._pgland_is_deleted)
        .map((r) => r.v)
        .sort(),
    ).toEqual(['1', '1']);
  });

  it('echoes every STATE in order, each only after the records before it are committed, with the records counted per stream or globally', async () => {
    const catalog = {
      streams: [
        ...oneStream('s1', { destination_sync_mode: 'append_dedup', primary_key: [['id']] }).streams,
        ...oneStream('s2', { destination_sync_mode: 'append' }).streams,
      ],
    };
    const streamState = (name: string, n: number) => ({
      type: 'STATE',
      state: { type: 'STREAM', stream: { stream_descriptor: { name }, stream_state: { n } } },
    });
    const input = messages(
      rec('s1', { id: '1' }),
      rec('s2', { id: 'e1' }),
      rec('s1', { id: '2' }),
      streamState('s1', 1),
      rec('s2', { id: 'e2' }),
      streamState('s2', 2),
      streamState('s2', 3),
      rec('s1', { id: '3' }),
      { type: 'STATE', state: { type: 'GLOBAL', global: { shared_state: { n: 4 }, stream_states: [] } } },
      // A legacy state: no type, the state in data.
      { type: 'STATE', state: { data: { n: 5 } } },
    );
    const committedAtEcho: number[] = [];
    const { out } = await write(catalog, input, 'ordering', async () => {
      committedAtEcho.push(await committedLines('ordering'));
    });
    const states = out.map(
      (l) =>
        JSON.parse(l) as {
          type: string;
          state: { destinationStats: { recordCount: number }; stream?: { stream_state: { n: number } }; global?: unknown; data?: unknown };
        },
    );
    expect(states.map((s) => s.type)).toEqual(['STATE', 'STATE', 'STATE', 'STATE', 'STATE']);
    expect(states.map((s) => s.state.stream?.stream_state.n ?? (s.state.global ? 4 : 5))).toEqual([1, 2, 3, 4, 5]);
    // Per stream: s1 had 2 records before its state; s2 had 2, then 0. Globally: all 5, then none.
    expect(states.map((s) => s.state.destinationStats.recordCount)).toEqual([2, 2, 0, 5, 0]);
    expect(committedAtEcho).toEqual([3, 4, 4, 5, 5]);
  });

  it('stops at a malformed line with an error naming its line; the data before it is landed and its STATE echoed', async () => {
    const catalog = oneStream('bad', { destination_sync_mode: 'append_dedup', primary_key: [['id']] });
    const input = messages(
      rec('bad', { id: 'ok' }),
      { type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'bad' }, stream_state: {} } } },
      '{"type": "RECORD", "record": {"stream": "bad", "data": {"id": "cut',
    );
    await expect(write(catalog, input, 'malformed')).rejects.toThrow(/^line 3: not valid JSON/);
    expect((await rows('bad', 'malformed')).map((r) => r.id)).toEqual(['ok']);

    // The same from the command line: a TRACE ERROR on stdout after the echoed STATE, exit 1.
    const catalogFile = configFile(catalog);
    const r = await runCli(['airbyte', 'write', '--config', configFile(db.config({ schema: SCHEMA, customer: 'cli' })), '--catalog', catalogFile], {
      input: messages(
        rec('bad', { id: 'cli-ok' }),
        { type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'bad' }, stream_state: { s: 1 } } } },
        { type: 'RECORD', record: { stream: 'nope', data: {} } },
      ),
    });
    expect(r.code).toBe(1);
    const out = r.stdout
      .trimEnd()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { type: string; state?: { destinationStats: unknown }; trace?: { type: string; error: { message: string; failure_type: string } } },
      );
    expect(out.map((m) => m.type)).toEqual(['STATE', 'TRACE']);
    expect(out[0]!.state!.destinationStats).toEqual({ recordCount: 1 });
    expect(out[1]!.trace).toMatchObject({
      type: 'ERROR',
      error: { message: expect.stringMatching(/^line 3: RECORD for stream "nope", which is not in the configured catalog/), failure_type: 'system_error' },
    });
    expect(r.stderr).toMatch(/line 3: RECORD for stream "nope"/);
    expect((await rows('bad', 'cli')).map((x) => x.id)).toEqual(['cli-ok']);
  });

  it("lands streams in tables named after them, a namespace as the schema; keeps record.meta; a record without its key is a reject in the stream's terms (issue 22)", async () => {
    const catalog = {
      streams: [
        {
          ...oneStream('Accounts', { destination_sync_mode: 'append_dedup', primary_key: [['id']] }).streams[0],
          stream: { ...(oneStream('Accounts', {}).streams[0]!.stream as object), namespace: 'Sales Ops' },
        },
        oneStream('notes', { destination_sync_mode: 'append' }).streams[0],
      ],
    };
    const changes = [{ field: 'v', change: 'NULLED', reason: 'SOURCE_FIELD_SIZE_LIMITATION' }];
    const { result } = await write(
      catalog,
      messages(
        { type: 'RECORD', record: { namespace: 'Sales Ops', stream: 'Accounts', data: { id: 'a', v: null }, emitted_at: 1, meta: { changes } } },
        { type: 'RECORD', record: { namespace: 'Sales Ops', stream: 'Accounts', data: { v: 2 }, emitted_at: 1 } },
        rec('notes', { id: 'n', v: 1 }),
      ),
      'named',
    );
    expect(result.streams.map((s) => [s.stream, s.schema, s.table])).toEqual([
      ['Sales Ops.Accounts', 'sales_ops', 'accounts'],
      ['notes', SCHEMA, 'notes'],
    ]);
    expect((await rows('sales_ops.accounts', 'named')).map((r) => [r.id, r._airbyte_meta])).toEqual([['a', { changes }]]);
    expect((await rows('notes', 'named')).map((r) => [r.v, r._airbyte_meta])).toEqual([['1', { changes: [] }]]);
    // The namespace's schema has pgland's metadata of its own: the runs and the reject are there.
    const rejects = await db.pool.query(`SELECT reason FROM sales_ops._pgland_rejects`);
    expect(rejects.rows).toEqual([{ reason: 'line 2: primary key field "id" of stream "Sales Ops.Accounts" is missing' }]);
    // missing_key: fail stops instead, naming the line.
    const strict = messages({ type: 'RECORD', record: { namespace: 'Sales Ops', stream: 'Accounts', data: { id: null }, emitted_at: 1 } });
    await expect(write(catalog, strict, 'strict', undefined, { missingKey: 'fail' })).rejects.toMatchObject({
      code: 'protocol_error',
      message: 'line 1: primary key field "id" of stream "Sales Ops.Accounts" is null',
    });
  });

  it('writes recordCount with a decimal point and keeps the rest of the state as received', () => {
    expect(stateLine({ type: 'LEGACY', data: { a: 1 }, destinationStats: { recordCount: 9 } }, 3)).toBe(
      '{"type":"STATE","state":{"type":"LEGACY","data":{"a":1},"destinationStats":{"recordCount":3.0}}}',
    );
    expect(stateLine({}, 0)).toBe('{"type":"STATE","state":{"destinationStats":{"recordCount":0.0}}}');
  });

  it('refuses a catalog whose append_dedup stream has no primary key, naming the stream', () => {
    expect(() => parseCatalog(oneStream('nokey', { destination_sync_mode: 'append_dedup' }))).toThrow(/stream "nokey": append_dedup needs a primary_key/);
  });

  it('reads the well-known types of protocol v1 catalogs ($ref) as their column types', () => {
    const ref = (t: string) => ({ $ref: `WellKnownTypes.json#/definitions/${t}` });
    const [stream] = parseCatalog({
      streams: [
        {
          stream: {
            name: 'w',
            json_schema: {
              type: 'object',
              properties: { n: ref('Integer'), t: { oneOf: [ref('TimestampWithTimezone'), { type: 'null' }] }, s: ref('String') },
            },
          },
          destination_sync_mode: 'append',
        },
      ],
    });
    expect(declaredColumns(stream!.jsonSchema).map((c) => [c.name, c.type])).toEqual([
      ['n', 'bigint'],
      ['s', 'text'],
      ['t', 'timestamptz'],
    ]);
  });
});
