import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, parseMapping, PglandError, type Destination, type IntoRequest, type IntoWrite } from '../src/index.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { ndjson, streamOf } from './support/records.js';

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('own_tables');
  dest = await openDestination(db.config({ schema: 'pgland', batch_size: 4 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

/** A lead as a record: the envelope with the form's fields under data. */
function lead(n: number, data: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `L${n}`,
    last_modified_at: `2026-03-0${1 + (n % 9)}T10:00:00Z`,
    raw_data: { FirstName: `First${n}` },
    data: { email: `lead${n}@example.com`, name: `Lead ${n}`, score: n, account: 1, phone: `+1 555 000${n}`, ...data },
    ...extra,
  };
}

/**
 * A schema holding the customer's tables: leads (identity key, DEFAULT now(),
 * a generated column, a CHECK, NOT NULLs, a foreign key, a unique phone), the
 * accounts it refers to, and a canary table nothing may touch.
 */
async function customerSchema(schema: string): Promise<void> {
  await db.pool.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.accounts (id int PRIMARY KEY, name text);
    INSERT INTO ${schema}.accounts VALUES (1, 'one'), (2, 'two');
    CREATE TABLE ${schema}.leads (
      lead_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email text NOT NULL CONSTRAINT leads_email_key UNIQUE,
      name text NOT NULL,
      score int CONSTRAINT leads_score_positive CHECK (score >= 0),
      account_id int CONSTRAINT leads_account_fk REFERENCES ${schema}.accounts (id),
      phone text CONSTRAINT leads_phone_key UNIQUE,
      status text,
      created_at timestamptz NOT NULL DEFAULT now(),
      email_domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED,
      source_modified timestamptz
    );
    INSERT INTO ${schema}.leads (email, name, score, account_id, phone, status)
      VALUES ('old1@example.com', 'Old One', 5, 2, '+1 555 9991', 'kept'), ('old2@example.com', 'Old Two', 6, 2, '+1 555 9992', 'kept');
    CREATE TABLE ${schema}.canary (x int);
    INSERT INTO ${schema}.canary VALUES (1), (2), (3);
  `);
}

const MAP = ['email=data.email', 'name=trim(data.name)', 'score=data.score', 'account_id=data.account', 'phone=data.phone'];

function into(
  schema: string,
  write: IntoWrite,
  records: unknown[],
  extra: Partial<IntoRequest> = {},
  maps = MAP,
): Promise<ReturnType<Destination['loadInto']> extends Promise<infer R> ? R : never> {
  return dest.loadInto({ into: `${schema}.leads`, write, mappings: maps.map(parseMapping), input: streamOf(records), ...extra });
}

async function leads(schema: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(`SELECT * FROM ${schema}.leads ORDER BY lead_id`);
  return rows;
}

async function untouched(schema: string, before: Record<string, unknown>[]): Promise<void> {
  const canary = await db.pool.query(`SELECT x FROM ${schema}.canary ORDER BY x`);
  expect(canary.rows.map((r) => r.x)).toEqual([1, 2, 3]);
  const accounts = await db.pool.query(`SELECT id, name FROM ${schema}.accounts ORDER BY id`);
  expect(accounts.rows).toEqual([
    { id: 1, name: 'one' },
    { id: 2, name: 'two' },
  ]);
  const now = await leads(schema);
  for (const row of before) expect(now).toContainEqual(row);
}

async function rejects(runId: string): Promise<{ line_number: string; record_id: string; reason: string }[]> {
  const { rows } = await db.pool.query(`SELECT line_number, record_id, reason FROM pgland._pgland_rejects WHERE run_id = $1 ORDER BY line_number`, [runId]);
  return rows;
}

describe('load --into: write modes on a table of the customer (issue 18)', () => {
  it('insert: lead capture lands new rows with identity, default and generated values; insertedId for one record', async () => {
    await customerSchema('ins');
    const before = await leads('ins');
    const one = await into('ins', 'insert', [lead(1)]);
    expect(one.status).toBe('succeeded');
    expect(one.counts).toMatchObject({ rowsRead: 1, inserted: 1, rejected: 0 });
    expect(one.insertedId).toBe(3);
    const r = await into('ins', 'insert', [lead(2), lead(3), lead(4, { name: '  Padded  ' })]);
    expect(r.counts).toMatchObject({ rowsRead: 3, inserted: 3 });
    expect(r.insertedId).toBeUndefined();
    const rows = await leads('ins');
    expect(rows.map((x) => [x.lead_id, x.email, x.name, x.email_domain])).toEqual([
      ['1', 'old1@example.com', 'Old One', 'example.com'],
      ['2', 'old2@example.com', 'Old Two', 'example.com'],
      ['3', 'lead1@example.com', 'Lead 1', 'example.com'],
      ['4', 'lead2@example.com', 'Lead 2', 'example.com'],
      ['5', 'lead3@example.com', 'Lead 3', 'example.com'],
      ['6', 'lead4@example.com', 'Padded', 'example.com'],
    ]);
    expect(rows.every((x) => x.created_at instanceof Date && x.status !== undefined)).toBe(true);
    expect(rows.slice(2).every((x) => x.status === null && x.source_modified === null)).toBe(true);
    await untouched('ins', before);
  });

  it('each violation is a reject naming its constraint; the rest of the batch lands', async () => {
    await customerSchema('viol');
    const before = await leads('viol');
    const input = [
      lead(1),
      lead(2, { score: -1 }), // CHECK
      lead(3, { account: 99 }), // foreign key
      lead(4, { name: null }), // NOT NULL
      lead(5, { phone: '+1 555 9991' }), // unique on another column than the match
      lead(6, { score: 'many' }), // not an integer
      lead(7),
      lead(8, { email: 'lead7@example.com' }), // the same email twice in one batch: unique
      lead(9),
    ];
    const r = await into('viol', 'insert', input);
    expect(r.status).toBe('partial');
    expect(r.counts).toMatchObject({ rowsRead: 9, inserted: 3, rejected: 6, superseded: 0, unchanged: 0, skipped: 0 });
    const why = await rejects(r.runId);
    expect(why.map((x) => x.record_id)).toEqual(['L2', 'L3', 'L4', 'L5', 'L6', 'L8']);
    expect(why[0]!.reason).toContain('leads_score_positive');
    expect(why[1]!.reason).toContain('leads_account_fk');
    expect(why[2]!.reason).toMatch(/"name".*NOT NULL/);
    expect(why[3]!.reason).toContain('leads_phone_key');
    expect(why[4]!.reason).toMatch(/column "score"/);
    expect(why[5]!.reason).toContain('leads_email_key');
    expect((await leads('viol')).map((x) => x.email).slice(2)).toEqual(['lead1@example.com', 'lead7@example.com', 'lead9@example.com']);
    await untouched('viol', before);
  });

  it('update (enrichment) changes only the mapped columns of matching rows; others are skipped', async () => {
    await customerSchema('upd');
    const [old1, old2] = await leads('upd');
    const r = await into(
      'upd',
      'update',
      [lead(1, { email: 'old1@example.com', name: 'Enriched', score: 50 }), lead(2, { email: 'nobody@example.com' })],
      { match: 'email' },
      ['email=data.email', 'name=data.name', 'score=data.score', "status='enriched'"],
    );
    expect(r.counts).toMatchObject({ rowsRead: 2, updated: 1, skipped: 1, inserted: 0 });
    const rows = await leads('upd');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({ ...old1, name: 'Enriched', score: 50, status: 'enriched' });
    expect(rows[1]).toEqual(old2);
    // The same again changes nothing.
    const again = await into('upd', 'update', [lead(1, { email: 'old1@example.com', name: 'Enriched', score: 50 })], { match: 'email' }, [
      'email=data.email',
      'name=data.name',
      'score=data.score',
      "status='enriched'",
    ]);
    expect(again.counts).toMatchObject({ updated: 0, unchanged: 1 });
  });

  it('upsert on email: new rows inserted, existing ones updated, identical ones unchanged; other rows untouched', async () => {
    await customerSchema('ups');
    const before = await leads('ups');
    await into('ups', 'upsert', [lead(1), lead(2)], { match: 'email' });
    const r = await into('ups', 'upsert', [lead(1, { name: 'Changed' }), lead(2), lead(3), lead(3, { name: 'Later line wins' })], { match: 'email' });
    expect(r.counts).toMatchObject({ rowsRead: 4, inserted: 1, updated: 1, unchanged: 1, superseded: 1 });
    const rows = await leads('ups');
    expect(rows.map((x) => [x.email, x.name])).toEqual([
      ['old1@example.com', 'Old One'],
      ['old2@example.com', 'Old Two'],
      ['lead1@example.com', 'Changed'],
      ['lead2@example.com', 'Lead 2'],
      ['lead3@example.com', 'Later line wins'],
    ]);
    await untouched('ups', before);
  });

  it('upsert: the newest version wins when a column is mapped from last_modified_at', async () => {
    await customerSchema('newest');
    const maps = [...MAP, 'source_modified=last_modified_at'];
    await into('newest', 'upsert', [lead(1, { name: 'New' }, { last_modified_at: '2026-05-01T00:00:00Z' })], { match: 'email' }, maps);
    const late = await into('newest', 'upsert', [lead(1, { name: 'Older' }, { last_modified_at: '2026-04-01T00:00:00Z' })], { match: 'email' }, maps);
    expect(late.counts).toMatchObject({ updated: 0, unchanged: 1 });
    expect((await leads('newest'))[2]).toMatchObject({ name: 'New' });
    // Without such a column the last record delivered wins.
    await into('newest', 'upsert', [lead(1, { name: 'Older' }, { last_modified_at: '2026-04-01T00:00:00Z' })], { match: 'email' });
    expect((await leads('newest'))[2]).toMatchObject({ name: 'Older' });
  });

  it('delete by matching column removes exactly the matching rows', async () => {
    await customerSchema('del');
    const [, old2] = await leads('del');
    const r = await into('del', 'delete', [lead(1, { email: 'old1@example.com' }), lead(2, { email: 'none@example.com' })], { match: 'email' }, [
      'email=data.email',
    ]);
    expect(r.counts).toMatchObject({ rowsRead: 2, deleted: 1, skipped: 1 });
    expect(await leads('del')).toEqual([old2]);
    await untouched('del', [old2!]);
  });

  it('sync applies deletions; additive skips them; enrich updates only rows that exist', async () => {
    await customerSchema('modes');
    const before = await leads('modes');
    await into('modes', 'sync', [lead(1), lead(2), lead(3)], { match: 'email' });
    const sync = await into('modes', 'sync', [lead(1, {}, { is_deleted: true }), lead(4)], { match: 'email' });
    expect(sync.counts).toMatchObject({ deleted: 1, inserted: 1 });
    expect((await leads('modes')).map((x) => x.email).slice(2)).toEqual(['lead2@example.com', 'lead3@example.com', 'lead4@example.com']);

    const additive = await into('modes', 'additive', [lead(2, {}, { is_deleted: true }), lead(5)], { match: 'email' });
    expect(additive.counts).toMatchObject({ deleted: 0, skipped: 1, inserted: 1 });
    expect((await leads('modes')).map((x) => x.email)).toContain('lead2@example.com');

    const enrich = await into('modes', 'enrich', [lead(3, { name: 'Enriched' }), lead(6)], { match: 'email' });
    expect(enrich.counts).toMatchObject({ updated: 1, skipped: 1, inserted: 0 });
    const emails = (await leads('modes')).map((x) => x.email);
    expect(emails).not.toContain('lead6@example.com');
    expect((await leads('modes')).find((x) => x.email === 'lead3@example.com')).toMatchObject({ name: 'Enriched' });
    await untouched('modes', before);
  });

  it('an input that fails mid-run: the batches before it stay landed, the run is failed', async () => {
    await customerSchema('broken');
    async function* brokenAfter10(): AsyncGenerator<string> {
      for (let n = 1; n <= 10; n++) yield JSON.stringify(lead(n)) + '\n';
      throw new Error('source went away');
    }
    const r = await dest.loadInto({ into: 'broken.leads', write: 'upsert', match: 'email', mappings: MAP.map(parseMapping), input: brokenAfter10() });
    expect(r.status).toBe('failed');
    expect(r.error?.message).toContain('source went away');
    // batch_size 4: batches 1 and 2 committed; the third (records 9 and 10) was read ahead and failed.
    expect(r.counts).toMatchObject({ batches: 2, rowsRead: 8, inserted: 8 });
    expect(await leads('broken')).toHaveLength(10);
  });

  it('a partitioned table takes upserts', async () => {
    await db.pool.query(`CREATE SCHEMA part;
      CREATE TABLE part.contacts (email text NOT NULL, name text, UNIQUE (email)) PARTITION BY HASH (email);
      CREATE TABLE part.contacts_0 PARTITION OF part.contacts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
      CREATE TABLE part.contacts_1 PARTITION OF part.contacts FOR VALUES WITH (MODULUS 2, REMAINDER 1);`);
    const load = (records: unknown[]) =>
      dest.loadInto({
        into: 'part.contacts',
        write: 'upsert',
        match: 'email',
        mappings: ['email=data.email', 'name=data.name'].map(parseMapping),
        input: streamOf(records),
      });
    await load([lead(1), lead(2), lead(3)]);
    const r = await load([lead(1, { name: 'Changed' }), lead(2), lead(4)]);
    expect(r.counts).toMatchObject({ inserted: 1, updated: 1, unchanged: 1 });
    const { rows } = await db.pool.query(`SELECT email, name FROM part.contacts ORDER BY email`);
    expect(rows.map((x) => x.name)).toEqual(['Changed', 'Lead 2', 'Lead 3', 'Lead 4']);
  });

  it("row-level security applies to pgland's user: a row its policy refuses is a reject", async () => {
    const role = `own_rls_${process.pid}`;
    await db.pool.query(`CREATE SCHEMA rls;
      CREATE TABLE rls.notes (email text PRIMARY KEY, tenant text NOT NULL, body text);
      ALTER TABLE rls.notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY only_t1 ON rls.notes USING (tenant = 't1') WITH CHECK (tenant = 't1');
      INSERT INTO rls.notes VALUES ('hidden@example.com', 't2', 'not visible to the role');
      CREATE ROLE ${role} LOGIN PASSWORD 'pw';
      GRANT CREATE, CONNECT ON DATABASE ${new URL(db.url).pathname.slice(1)} TO ${role};
      GRANT USAGE ON SCHEMA rls TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON rls.notes TO ${role};`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'pw';
    const d = await openDestination({ url: u.toString(), sslmode: 'disable', schema: 'pgland_rls' });
    try {
      const r = await d.loadInto({
        into: 'rls.notes',
        write: 'upsert',
        match: 'email',
        mappings: ['email=data.email', 'tenant=data.tenant', 'body=data.name'].map(parseMapping),
        input: streamOf([lead(1, { tenant: 't1' }), lead(2, { tenant: 't2' }), lead(3, { tenant: 't1' })]),
      });
      expect(r.counts).toMatchObject({ inserted: 2, rejected: 1 });
      const why = await db.pool.query(`SELECT record_id, reason FROM pgland_rls._pgland_rejects WHERE run_id = $1`, [r.runId]);
      expect(why.rows[0].record_id).toBe('L2');
      expect(why.rows[0].reason).toContain('row-level security');
      const { rows } = await db.pool.query(`SELECT email, tenant FROM rls.notes ORDER BY email`);
      expect(rows).toEqual([
        { email: 'hidden@example.com', tenant: 't2' },
        { email: 'lead1@example.com', tenant: 't1' },
        { email: 'lead3@example.com', tenant: 't1' },
      ]);
    } finally {
      await d.close();
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('triggers fire as for any writer', async () => {
    await customerSchema('trig');
    await db.pool.query(`CREATE TABLE trig.audit (email text, op text);
      CREATE FUNCTION trig.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trig.audit VALUES (NEW.email, TG_OP); RETURN NEW; END $$;
      CREATE TRIGGER leads_audit AFTER INSERT OR UPDATE ON trig.leads FOR EACH ROW EXECUTE FUNCTION trig.audit();`);
    await into('trig', 'upsert', [lead(1)], { match: 'email' });
    await into('trig', 'upsert', [lead(1, { name: 'Changed' }), lead(2)], { match: 'email' });
    await into('trig', 'upsert', [lead(1, { name: 'Changed' })], { match: 'email' }); // unchanged: no write, no trigger
    const { rows } = await db.pool.query(`SELECT email, op FROM trig.audit ORDER BY 1, 2`);
    expect(rows).toEqual([
      { email: 'lead1@example.com', op: 'INSERT' },
      { email: 'lead1@example.com', op: 'UPDATE' },
      { email: 'lead2@example.com', op: 'INSERT' },
    ]);
  });
});

describe('load --into: refused before any record is read (issue 18)', () => {
  /** An input that fails the test if anything reads it. */
  function unread(): AsyncIterable<string> {
    return {
      [Symbol.asyncIterator]() {
        throw new Error('the input was read');
      },
    };
  }

  async function refusal(req: Partial<IntoRequest>): Promise<PglandError> {
    const err = await dest.loadInto({ into: 'refuse.leads', write: 'upsert', match: 'email', mappings: MAP.map(parseMapping), input: unread(), ...req }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PglandError);
    return err as PglandError;
  }

  beforeAll(async () => {
    await customerSchema('refuse');
    await db.pool.query(`CREATE TABLE refuse.plain (email text, n int)`);
  });

  it('an unknown column, text into an integer, a generated column, an upsert without a unique index, a missing table', async () => {
    let e = await refusal({ mappings: [...MAP, 'nickname=data.nick'].map(parseMapping) });
    expect(e.code).toBe('mapping_invalid');
    expect(e.message).toContain('"nickname" is not a column');
    expect(e.hint).toContain('email');

    e = await refusal({ mappings: [...MAP.filter((m) => !m.startsWith('score')), 'score=lower(data.x)'].map(parseMapping) });
    expect(e.message).toMatch(/"score" is integer and cannot take lower\(data.x\)/);

    e = await refusal({ mappings: [...MAP, 'email_domain=data.domain'].map(parseMapping) });
    expect(e.message).toContain('generated column');

    e = await refusal({ match: 'lead_id', mappings: [...MAP, 'lead_id=data.n'].map(parseMapping) });
    expect(e.message).toContain('GENERATED ALWAYS AS IDENTITY');
    expect(e.hint).toContain('SET GENERATED BY DEFAULT');

    e = await refusal({ into: 'refuse.plain', mappings: ['email=data.email', 'n=data.score'].map(parseMapping) });
    expect(e.code).toBe('target_invalid');
    expect(e.hint).toBe('CREATE UNIQUE INDEX ON "refuse"."plain" ("email");');

    e = await refusal({ into: 'refuse.nothere' });
    expect(e.message).toContain('does not exist');

    e = await refusal({ write: 'update', match: undefined });
    expect(e.message).toContain('needs a matching column');
  });

  it('no INSERT privilege: the GRANT to run', async () => {
    const role = `own_nogrant_${process.pid}`;
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT CREATE, CONNECT ON DATABASE ${new URL(db.url).pathname.slice(1)} TO ${role};
      GRANT USAGE ON SCHEMA refuse TO ${role}; GRANT SELECT, UPDATE ON refuse.leads TO ${role};`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'pw';
    const d = await openDestination({ url: u.toString(), sslmode: 'disable', schema: 'pgland_ng' });
    try {
      const err = (await d
        .loadInto({ into: 'refuse.leads', write: 'upsert', match: 'email', mappings: MAP.map(parseMapping), input: unread() })
        .catch((x: unknown) => x)) as PglandError;
      expect(err.code).toBe('grant_missing');
      expect(err.message).toContain('INSERT');
      // upsert applies deletions of records flagged is_deleted: DELETE too.
      expect(err.hint).toBe(`run as an owner of the table: GRANT INSERT, DELETE ON TABLE "refuse"."leads" TO "${role}";`);
    } finally {
      await d.close();
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('the command line exits 2 with the message and the fix, before reading its input', async () => {
    const r = await runCli(['load', '--into', 'refuse.leads', '--write', 'upsert', '--match', 'name', ...MAP.flatMap((m) => ['--map', m])], {
      env: { PGLAND_DATABASE_URL: db.url, PGLAND_SCHEMA: 'pgland', PGLAND_SSLMODE: 'disable' },
      input: ndjson([lead(1)]),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no unique index');
    expect(r.stderr).toContain('fix: CREATE UNIQUE INDEX ON "refuse"."leads" ("name");');
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM refuse.leads`)).rows[0].n).toBe(2);
  });

  it('the command line lands a lead and prints insertedId', async () => {
    const r = await runCli(['load', '--into', 'refuse.leads', '--write', 'insert', '--json', ...MAP.flatMap((m) => ['--map', m])], {
      env: { PGLAND_DATABASE_URL: db.url, PGLAND_SCHEMA: 'pgland', PGLAND_SSLMODE: 'disable' },
      input: ndjson([lead(1)]),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'succeeded', insertedId: 3, table: '"refuse"."leads"' });
  });
});

describe('load --into: hostile names and paths (issue 18)', () => {
  it('quotes injection strings and keywords in table and column names', async () => {
    await db.pool.query(`CREATE SCHEMA "we""ird; DROP TABLE x; --";
      CREATE TABLE "we""ird; DROP TABLE x; --"."select" ("from" text PRIMARY KEY, "a""b" text, "; DROP SCHEMA public CASCADE; --" int, "Order" text);`);
    const r = await dest.loadInto({
      into: '"we""ird; DROP TABLE x; --"."select"',
      write: 'upsert',
      match: 'from',
      mappings: ['from=id', 'a"b=data.email', '; DROP SCHEMA public CASCADE; --=data.score', "Order='it''s'"].map(parseMapping),
      input: streamOf([lead(1), lead(2)]),
    });
    expect(r.status).toBe('succeeded');
    const { rows } = await db.pool.query(`SELECT * FROM "we""ird; DROP TABLE x; --"."select" ORDER BY 1`);
    expect(rows).toEqual([
      { from: 'L1', 'a"b': 'lead1@example.com', '; DROP SCHEMA public CASCADE; --': 1, Order: "it's" },
      { from: 'L2', 'a"b': 'lead2@example.com', '; DROP SCHEMA public CASCADE; --': 2, Order: "it's" },
    ]);
  });

  it('a mapping path reaches nothing outside its record', async () => {
    expect(() => parseMapping('x=process.env.HOME')).toThrow(/a path starts at one of/);
    expect(() => parseMapping('x=constructor.name')).toThrow(/a path starts at one of/);
    expect(() => parseMapping('x=id.length')).toThrow(/id has no fields/);
    expect(() => parseMapping("x=data.a'); DROP TABLE t; --")).toThrow(PglandError);
    await db.pool.query(`CREATE SCHEMA paths; CREATE TABLE paths.t (k text PRIMARY KEY, a text, b text, c text, d text)`);
    const r = await dest.loadInto({
      into: 'paths.t',
      write: 'upsert',
      match: 'k',
      mappings: ['k=id', 'a=data.constructor', 'b=data.__proto__', 'c=raw_data.toString', 'd=data.list[1]'].map(parseMapping),
      input: streamOf([{ ...lead(1), data: { list: ['x', 'y'] } }, `{"id":"L2","last_modified_at":"2026-01-01T00:00:00Z","data":{"__proto__":"own"}}`]),
    });
    expect(r.status).toBe('succeeded');
    const { rows } = await db.pool.query(`SELECT * FROM paths.t ORDER BY k`);
    expect(rows).toEqual([
      { k: 'L1', a: null, b: null, c: null, d: 'y' },
      { k: 'L2', a: null, b: 'own', c: null, d: null },
    ]);
  });
});
