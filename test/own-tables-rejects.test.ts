import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, parseMapping, type Destination, type IntoResult, type IntoWrite } from '../src/index.js';
import { MAX_REJECT_TEXT } from '../src/input/envelope.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 18: a record the customer's table refuses at merge time is kept in
// pgland's rejects table as the input line it was sent as (not the values
// pgland staged for it: jsonb re-spelled, the version turned into the
// server's timestamp text), with the constraint's name; the rest lands.
// The lines here are written by hand, with the spacing, key order, escapes
// and version spelling a JSON.stringify would never produce, so that only
// the line itself can match.

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('into_rejects');
  // Batches of 3: the first batch lands alone, the later ones pipelined (kept lines in both).
  dest = await openDestination(db.config({ schema: 'pgland', batch_size: 3 }));
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

/**
 * The customer's people: a unique email (the match) and phone, a CHECK, a
 * foreign key, a NOT NULL name a trigger may empty (a NOT NULL only the
 * server sees), a jsonb profile and the version in updated_at.
 */
async function customerSchema(schema: string): Promise<void> {
  await db.pool.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.accounts (id int PRIMARY KEY);
    INSERT INTO ${schema}.accounts VALUES (1), (2);
    CREATE TABLE ${schema}.people (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email text NOT NULL CONSTRAINT people_email_key UNIQUE,
      name text NOT NULL,
      age int CONSTRAINT people_age_check CHECK (age >= 0),
      account_id int CONSTRAINT people_account_fk REFERENCES ${schema}.accounts (id),
      phone text CONSTRAINT people_phone_key UNIQUE,
      profile jsonb,
      updated_at timestamptz
    );
    CREATE FUNCTION ${schema}.anonymise() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.name := nullif(NEW.name, 'nobody'); RETURN NEW; END $$;
    CREATE TRIGGER people_anonymise BEFORE INSERT OR UPDATE ON ${schema}.people FOR EACH ROW EXECUTE FUNCTION ${schema}.anonymise();
    INSERT INTO ${schema}.people (email, name, phone) VALUES ('old@example.com', 'Old', '+1 555 0000');`);
}

const MAP = [
  'email=data.email',
  'name=data.name',
  'age=data.age',
  'account_id=data.account',
  'phone=data.phone',
  'profile=data.profile',
  'updated_at=last_modified_at',
];

/** A person's line, spelled by hand: spaces after colons, the version first, a nested profile, a version with an offset. */
function line(n: number, data: string, extra = ''): string {
  return `{"last_modified_at": "2026-03-0${1 + (n % 9)}T10:00:00.5+02:00", "id": "p${n}",${extra} "data": {"email": "p${n}@example.com", "name": "Person ${n}", "age": ${n}, "account": 1, "phone": "+1 555 ${1000 + n}", "profile": {"tags": ["a", "b"], "score": 1.50}${data}}}`;
}

/** Records as an input stream cut every 37 bytes, so that lines also span input chunks. */
function input(lines: (string | Buffer)[]): Readable {
  const all = Buffer.concat(lines.map((l) => Buffer.concat([typeof l === 'string' ? Buffer.from(l, 'utf8') : l, Buffer.from('\n')])));
  const parts: Buffer[] = [];
  for (let i = 0; i < all.length; i += 37) parts.push(all.subarray(i, i + 37));
  return Readable.from(parts);
}

function into(schema: string, lines: (string | Buffer)[], write: IntoWrite = 'upsert'): Promise<IntoResult> {
  return dest.loadInto({ into: `${schema}.people`, write, match: 'email', mappings: MAP.map(parseMapping), input: input(lines) });
}

interface Kept {
  line_number: number;
  record_id: string;
  reason: string;
  raw_text: string;
}

async function kept(runId: string): Promise<Kept[]> {
  const { rows } = await db.pool.query<Kept>(
    `SELECT line_number::int, record_id, reason, raw_text FROM pgland._pgland_rejects WHERE run_id = $1 ORDER BY line_number`,
    [runId],
  );
  return rows;
}

async function emails(schema: string): Promise<string[]> {
  return (await db.pool.query<{ email: string }>(`SELECT email FROM ${schema}.people ORDER BY id`)).rows.map((r) => r.email);
}

/** Nothing of pgland's in the customer's schema: its rejects and staging tables are in its own. */
async function onlyCustomerTables(schema: string): Promise<void> {
  const { rows } = await db.pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema]);
  expect(rows.map((r) => r.tablename)).toEqual(['accounts', 'people']);
}

describe('load --into: a record refused at merge time is kept as its input line (issue 18)', () => {
  it('each violation kind keeps exactly the line sent, names its constraint, and the rest of each batch lands', async () => {
    await customerSchema('rj_kinds');
    const sent = [
      line(1, ''),
      line(2, ', "age": -2'), // CHECK (the last of duplicate names wins: -2)
      line(3, ''),
      line(4, ', "account": 99'), // foreign key, in the first batch (landed alone)
      line(5, ''),
      line(6, ', "phone": "+1 555 0000"'), // unique on another column than the match
      line(7, ', "name": "nobody"'), // NOT NULL, seen only by the server (the trigger empties the name)
      line(8, ''),
      line(9, ', "age": "many"'), // a value the column's type refuses
      line(10, ''),
    ];
    const r = await into('rj_kinds', sent);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('partial');
    expect(r.counts).toMatchObject({ rowsRead: 10, inserted: 5, rejected: 5, batches: 4 });
    const rows = await kept(r.runId);
    expect(rows.map((x) => x.line_number)).toEqual([2, 4, 6, 7, 9]);
    expect(rows.map((x) => x.record_id)).toEqual(['p2', 'p4', 'p6', 'p7', 'p9']);
    for (const x of rows) expect(x.raw_text).toBe(sent[x.line_number - 1]);
    expect(rows[0]!.reason).toContain('[constraint "people_age_check" of "people"]');
    expect(rows[1]!.reason).toContain('[constraint "people_account_fk" of "people"]');
    expect(rows[2]!.reason).toContain('[constraint "people_phone_key" of "people"]');
    expect(rows[3]!.reason).toMatch(/null value in column "name".*not-null constraint.*\[column "name"\]/);
    expect(rows[4]!.reason).toMatch(/invalid input syntax for type integer.*\[column "age"\]/);
    expect(await emails('rj_kinds')).toEqual(['old@example.com', 'p1@example.com', 'p3@example.com', 'p5@example.com', 'p8@example.com', 'p10@example.com']);
    // The landed rows hold the staged values: the profile as jsonb, the version as a timestamp.
    const { rows: p1 } = await db.pool.query(`SELECT profile, updated_at FROM rj_kinds.people WHERE email = 'p1@example.com'`);
    expect(p1[0]).toEqual({ profile: { tags: ['a', 'b'], score: 1.5 }, updated_at: new Date('2026-03-02T08:00:00.500Z') });
    await onlyCustomerTables('rj_kinds');
  });

  it('keeps lines with escapes, tabs between tokens, non-ASCII text and invalid UTF-8 as sent (or as every reject decodes them)', async () => {
    await customerSchema('rj_text');
    const escaped = line(1, ', "age": -1, "note": "a \\"quote\\", a back\\\\slash, \\u00e9, \\ud83d\\ude00"');
    const tabbed = line(2, ',\t"age":\t-1').replace('{"last', '{\t"last');
    const unicode = line(3, ', "age": -1, "name": "Zoë 日本 😀"');
    // 0xff is not UTF-8: the line is read from its decoded text, as the rejects of landed tables keep it.
    const badBytes = Buffer.from(line(4, ', "age": -1, "bad": "x"'), 'utf8');
    badBytes[badBytes.indexOf('"x"') + 1] = 0xff;
    const sent: (string | Buffer)[] = [line(0, ''), escaped, tabbed, unicode, badBytes, line(5, '')];
    const r = await into('rj_text', sent);
    expect(r.error).toBeUndefined();
    expect(r.counts).toMatchObject({ rowsRead: 6, inserted: 2, rejected: 4 });
    const rows = await kept(r.runId);
    expect(rows.map((x) => x.line_number)).toEqual([2, 3, 4, 5]);
    expect(rows[0]!.raw_text).toBe(escaped);
    expect(rows[1]!.raw_text).toBe(tabbed);
    expect(rows[2]!.raw_text).toBe(unicode);
    expect(rows[3]!.raw_text).toBe(badBytes.toString('utf8'));
    expect(rows[3]!.raw_text).toContain('\uFFFD');
    for (const x of rows) expect(x.reason).toContain('"people_age_check"');
    expect(await emails('rj_text')).toEqual(['old@example.com', 'p0@example.com', 'p5@example.com']);
  });

  it('keeps the first 64 KiB of a refused line longer than that, as every reject cuts its line', async () => {
    await customerSchema('rj_long');
    const long = line(1, `, "age": -1, "bio": "${'x'.repeat(MAX_REJECT_TEXT + 5000)}"`);
    const r = await into('rj_long', [line(0, ''), long, line(2, '')]);
    expect(r.counts).toMatchObject({ rowsRead: 3, inserted: 2, rejected: 1 });
    const rows = await kept(r.runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.raw_text).toBe(long.slice(0, MAX_REJECT_TEXT));
  });

  it('a record refused before the merge (a null into a NOT NULL column) also keeps its line', async () => {
    await customerSchema('rj_early');
    const sent = [line(1, ''), line(2, ', "name": null'), line(3, '')];
    const r = await into('rj_early', sent, 'insert');
    expect(r.counts).toMatchObject({ rowsRead: 3, inserted: 2, rejected: 1 });
    const rows = await kept(r.runId);
    expect(rows).toEqual([{ line_number: 2, record_id: 'p2', raw_text: sent[1], reason: expect.stringMatching(/column "name" violates its NOT NULL/) }]);
  });

  it('a deletion the table refuses (a row still referenced) keeps its line too', async () => {
    await customerSchema('rj_delete');
    await db.pool.query(`
      CREATE TABLE rj_delete.notes (person_email text CONSTRAINT notes_person_fk REFERENCES rj_delete.people (email), body text);
      INSERT INTO rj_delete.people (email, name) VALUES ('kept@example.com', 'Kept'), ('gone@example.com', 'Gone');
      INSERT INTO rj_delete.notes VALUES ('kept@example.com', 'still referenced');`);
    const sent = [
      '{"id": "d1", "last_modified_at": "2026-03-01T00:00:00Z", "data": {"email": "gone@example.com"}}',
      '{"id": "d2", "data": {"email": "kept@example.com"}, "last_modified_at": "2026-03-01T00:00:00Z"}',
    ];
    const r = await dest.loadInto({
      into: 'rj_delete.people',
      write: 'delete',
      match: 'email',
      mappings: [parseMapping('email=data.email')],
      input: input(sent),
    });
    expect(r.counts).toMatchObject({ rowsRead: 2, deleted: 1, rejected: 1 });
    const rows = await kept(r.runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ line_number: 2, record_id: 'd2', raw_text: sent[1] });
    expect(rows[0]!.reason).toContain('"notes_person_fk"');
    expect(await emails('rj_delete')).toEqual(['old@example.com', 'kept@example.com']);
  });
});
