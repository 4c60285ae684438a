import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonObjects, openDestination, quoteIdent, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

let db: TestDatabase;
let dest: Destination;
let client: pg.PoolClient;

beforeAll(async () => {
  db = await freshDatabase('common_objects');
  dest = await openDestination(db.config({ schema: 'landing' }));
  client = await db.pool.connect();
  // Timestamps below are compared as text in UTC.
  await client.query(`SET TimeZone = 'UTC'`);
});
afterAll(async () => {
  client?.release();
  await dest?.close();
  await db?.drop();
});

/**
 * One column of a fixture: the PostgreSQL type the column must have, the value
 * sent in `data`, and what the column must hold: its ::text for scalar types,
 * the parsed JSON for jsonb.
 */
type Col = [type: string, input: unknown, expected: unknown];

const text = (s: string): Col => ['text', s, s];
const ts = (input: string, expected: string): Col => ['timestamp with time zone', input, expected];
const int = (input: number | string, expected: string): Col => ['bigint', input, expected];
const bool = (b: boolean): Col => ['boolean', b, b ? 'true' : 'false'];
const json = (v: unknown): Col => ['jsonb', v, v];

const address = {
  street_1: '1 Main St',
  street_2: null,
  city: 'Springfield',
  state: 'IL',
  postal_code: '62701',
  country: 'US',
  address_type: 'billing',
};
const emails = [
  { email_address: 'ada@example.com', email_address_type: 'primary' },
  { email_address: 'ada@work.example', email_address_type: 'work' },
];
const phones = [{ phone_number: '+1 555 0100', phone_number_type: 'mobile' }];
const created = ts('2020-05-01T12:00:00.123456Z', '2020-05-01 12:00:00.123456+00');
const updated = ts('2026-01-15T10:30:00+02:00', '2026-01-15 08:30:00+00');

/** Every typed column of every common object, in table order, with a value that exercises its type. */
const fixtures: Record<string, Record<string, Col>> = {
  crm_accounts: {
    name: text('Acme "Rockets" Ltd'),
    description: text('Makes rockets\nand\tthings \\ more'),
    industry: text('Aerospace'),
    website: text('https://acme.example'),
    number_of_employees: int(1200, '1200'),
    addresses: json([address]),
    phone_numbers: json(phones),
    lifecycle_stage: text('customer'),
    owner_id: text('005A00000001'),
    last_activity_at: ts('2026-01-14T09:00:00Z', '2026-01-14 09:00:00+00'),
    created_at: created,
    updated_at: updated,
  },
  crm_contacts: {
    first_name: text('Ada'),
    last_name: text('Lovelace-Byron'),
    email_addresses: json(emails),
    phone_numbers: json(phones),
    addresses: json([address, { ...address, address_type: 'shipping', city: 'Zürich' }]),
    lifecycle_stage: text('lead'),
    account_id: text('001A00000001'),
    owner_id: text('005A00000002'),
    last_activity_at: ts('2026-01-14 23:59:59-05:00', '2026-01-15 04:59:59+00'),
    created_at: created,
    updated_at: updated,
  },
  crm_leads: {
    first_name: text('Grace'),
    last_name: text('Hopper'),
    title: text('Rear Admiral'),
    company: text('US Navy'),
    lead_source: text('Web'),
    email_addresses: json(emails.slice(0, 1)),
    phone_numbers: json([]),
    addresses: json([address]),
    converted_date: ['date', '2026-02-28', '2026-02-28'],
    converted_contact_id: text('003A00000009'),
    converted_account_id: text('001A00000009'),
    owner_id: text('005A00000003'),
    last_activity_at: ts('2026-02-27T08:00:00Z', '2026-02-27 08:00:00+00'),
    created_at: created,
    updated_at: updated,
  },
  crm_opportunities: {
    name: text('Acme — 500 rockets'),
    description: text('Renewal'),
    // Sent as a string so that every digit survives (a JSON number is a double).
    amount: ['numeric', '12345678901234567890.123456789', '12345678901234567890.123456789'],
    stage: text('Negotiation'),
    status: text('OPEN'),
    close_date: ['date', '2026-06-30', '2026-06-30'],
    pipeline: text('Enterprise'),
    account_id: text('001A00000001'),
    owner_id: text('005A00000002'),
    last_activity_at: ts('2026-01-10T10:00:00.5Z', '2026-01-10 10:00:00.5+00'),
    created_at: created,
    updated_at: updated,
  },
  crm_users: {
    name: text('Katherine Johnson'),
    email: text('kj@example.com'),
    is_active: bool(true),
    created_at: created,
    updated_at: updated,
  },
  engagement_accounts: {
    name: text('Initech'),
    domain: text('initech.example'),
    owner_id: text('u-1'),
    created_at: created,
    updated_at: updated,
  },
  engagement_contacts: {
    first_name: text('Peter'),
    last_name: text('Gibbons'),
    job_title: text('Engineer'),
    address: json(address),
    email_addresses: json(emails),
    phone_numbers: json(phones),
    account_id: text('acc-7'),
    owner_id: text('u-1'),
    open_count: int(42, '42'),
    click_count: int('7', '7'),
    reply_count: int(0, '0'),
    bounced_count: int(9007199254740991, '9007199254740991'),
    created_at: created,
    updated_at: updated,
  },
  engagement_mailboxes: {
    email: text('peter@initech.example'),
    user_id: text('u-1'),
    is_disabled: bool(false),
    created_at: created,
    updated_at: updated,
  },
  engagement_sequences: {
    name: text('Q1 outreach'),
    is_enabled: bool(true),
    owner_id: text('u-2'),
    share_type: text('team'),
    tags: json(['q1', 'enterprise', 'ünïcode']),
    num_steps: int(5, '5'),
    scheduled_count: int(100, '100'),
    opened_count: int(80, '80'),
    opted_out_count: int(2, '2'),
    replied_count: int(12, '12'),
    clicked_count: int('9223372036854775807', '9223372036854775807'),
    created_at: created,
    updated_at: updated,
  },
  engagement_sequence_states: {
    sequence_id: text('seq-1'),
    contact_id: text('con-1'),
    mailbox_id: text('mb-1'),
    user_id: text('u-1'),
    state: text('active'),
    created_at: created,
    updated_at: updated,
  },
  engagement_sequence_steps: {
    sequence_id: text('seq-1'),
    name: text('Day 1: intro email'),
    step_number: int(1, '1'),
    type: text('auto_email'),
    interval_seconds: int(86400, '86400'),
    is_reply: bool(false),
    created_at: created,
    updated_at: updated,
  },
  engagement_users: {
    first_name: text('Milton'),
    last_name: text('Waddams'),
    email: text('milton@initech.example'),
    created_at: created,
    updated_at: updated,
  },
};

const PGLAND_COLUMNS = [
  ['_pgland_provider', 'text'],
  ['_pgland_customer_id', 'text'],
  ['id', 'text'],
];
const PGLAND_TAIL = [
  ['_pgland_landed_at', 'timestamp with time zone'],
  ['_pgland_last_modified_at', 'timestamp with time zone'],
  ['_pgland_is_deleted', 'boolean'],
  ['_pgland_deleted_at', 'timestamp with time zone'],
  ['_pgland_run_id', 'uuid'],
  ['_pgland_raw_data', 'jsonb'],
];

describe('common objects (issue 3)', () => {
  it('has a fixture for every object of the catalog, and no other', () => {
    expect(Object.keys(fixtures).sort()).toEqual([...commonObjects()].sort());
    expect(commonObjects()).toHaveLength(12);
  });

  for (const [object, columns] of Object.entries(fixtures)) {
    it(`lands ${object} with every typed column holding the expected value`, async () => {
      const data = Object.fromEntries(Object.entries(columns).map(([name, [, input]]) => [name, input]));
      const raw = { Id: `${object}-1`, Source: 'fixture', Nested: { list: [1, 2, 3] } };
      const record = { id: `${object}-1`, last_modified_at: '2026-01-15T10:30:00Z', raw_data: raw, data };
      const result = await dest.load({ kind: 'common', object, provider: 'hubspot', customerId: 'cust-9', input: streamOf([record]) });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('succeeded');
      expect(result.counts).toMatchObject({ rowsRead: 1, inserted: 1, rejected: 0, problems: 0 });

      // The table has exactly these columns, in this order, with these types.
      const { rows: cols } = await client.query(
        `SELECT column_name, data_type FROM information_schema.columns
          WHERE table_schema = 'landing' AND table_name = $1 ORDER BY ordinal_position`,
        [object],
      );
      expect(cols.map((c) => [c.column_name, c.data_type])).toEqual([
        ...PGLAND_COLUMNS,
        ...Object.entries(columns).map(([name, [type]]) => [name, type]),
        ...PGLAND_TAIL,
      ]);
      const { rows: pk } = await client.query(
        `SELECT a.attname FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
        [`landing.${quoteIdent(object)}`],
      );
      expect(pk.map((r) => r.attname)).toEqual(['_pgland_provider', '_pgland_customer_id', 'id']);

      // Every typed column: scalars compared as their text, jsonb as parsed JSON.
      const select = Object.entries(columns).map(([name, [type]]) =>
        type === 'jsonb' ? quoteIdent(name) : `${quoteIdent(name)}::text AS ${quoteIdent(name)}`,
      );
      const { rows } = await client.query(
        `SELECT ${select.join(', ')}, _pgland_provider, _pgland_customer_id, id,
                _pgland_last_modified_at::text, _pgland_is_deleted, _pgland_deleted_at,
                _pgland_run_id::text, _pgland_raw_data, _pgland_landed_at IS NOT NULL AS has_landed_at
           FROM landing.${quoteIdent(object)}`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toEqual({
        ...Object.fromEntries(Object.entries(columns).map(([name, [, , expected]]) => [name, expected])),
        _pgland_provider: 'hubspot',
        _pgland_customer_id: 'cust-9',
        id: `${object}-1`,
        _pgland_last_modified_at: '2026-01-15 10:30:00+00',
        _pgland_is_deleted: false,
        _pgland_deleted_at: null,
        _pgland_run_id: result.runId,
        _pgland_raw_data: raw,
        has_landed_at: true,
      });
    });
  }

  it('lands NULL in every typed column when data is empty, with no problem', async () => {
    const record = { id: 'empty-1', last_modified_at: '2026-01-15T10:30:00Z', raw_data: { Id: 'empty-1' } };
    const result = await dest.load({ kind: 'common', object: 'crm_leads', provider: 'hubspot', customerId: 'cust-9', input: streamOf([record]) });
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });
    const names = Object.keys(fixtures.crm_leads!);
    const { rows } = await client.query(
      `SELECT ${names.map((n) => `${quoteIdent(n)} IS NULL AS ${quoteIdent(n)}`).join(', ')} FROM landing.crm_leads WHERE id = 'empty-1'`,
    );
    expect(rows[0]).toEqual(Object.fromEntries(names.map((n) => [n, true])));
  });

  it("runs docs/landed-tables.md's query patterns, and keeps loading with a view, a generated column and an index in place", async () => {
    const load = (object: string, records: unknown[]) =>
      dest.load({ kind: 'common', object, provider: 'salesforce', customerId: 'acme', input: streamOf(records) });
    const lm = '2026-02-01T00:00:00Z';
    await load('crm_accounts', [{ id: 'A1', last_modified_at: lm, data: { name: 'Acme' } }]);
    await load('crm_contacts', [
      { id: 'C1', last_modified_at: lm, data: { first_name: 'Ada', account_id: 'A1', email_addresses: emails } },
      { id: 'C2', last_modified_at: lm, data: { first_name: 'No mail', account_id: 'A1' } },
    ]);
    await load('crm_opportunities', [
      { id: 'O1', last_modified_at: lm, data: { stage: 'Won', status: 'WON', amount: 5 } },
      { id: 'O2', last_modified_at: lm, data: { stage: 'Proposal', status: 'OPEN', amount: '1200.50' } },
      { id: 'O3', last_modified_at: lm, data: { stage: 'Proposal', status: 'OPEN', amount: 99.5 } },
    ]);
    await client.query(`
      CREATE SCHEMA analytics;
      CREATE VIEW analytics.contacts AS
      SELECT c._pgland_customer_id AS customer_id, c.id, c.first_name, c.last_name,
             c.email_addresses->0->>'email_address' AS primary_email, a.name AS account_name
        FROM landing.crm_contacts c
        LEFT JOIN landing.crm_accounts a
          ON a._pgland_provider = c._pgland_provider AND a._pgland_customer_id = c._pgland_customer_id AND a.id = c.account_id
       WHERE NOT c._pgland_is_deleted;
      ALTER TABLE landing.crm_contacts
        ADD COLUMN app_primary_email text GENERATED ALWAYS AS (lower(email_addresses->0->>'email_address')) STORED;
      CREATE INDEX ON landing.crm_contacts (app_primary_email);
      CREATE MATERIALIZED VIEW analytics.open_pipeline AS
      SELECT _pgland_customer_id AS customer_id, stage, sum(amount) AS amount, count(*) AS deals
        FROM landing.crm_opportunities
       WHERE status = 'OPEN' AND NOT _pgland_is_deleted
       GROUP BY 1, 2;`);
    // One row per email address; a contact without any has none (a list column is an array or NULL).
    const emailsOf = await client.query(`
      SELECT c.id, e->>'email_address' AS email, e->>'email_address_type' AS type
        FROM landing.crm_contacts c
       CROSS JOIN LATERAL jsonb_array_elements(c.email_addresses) AS e
       WHERE c._pgland_customer_id = 'acme' AND NOT c._pgland_is_deleted
       ORDER BY 1, 2`);
    expect(emailsOf.rows).toEqual([
      { id: 'C1', email: 'ada@example.com', type: 'primary' },
      { id: 'C1', email: 'ada@work.example', type: 'work' },
    ]);
    // Loading goes on with the view, the generated column and the index in place.
    const r = await load('crm_contacts', [
      {
        id: 'C1',
        last_modified_at: '2026-02-02T00:00:00Z',
        data: { first_name: 'Ada', account_id: 'A1', email_addresses: [{ email_address: 'ADA@New.Example' }] },
      },
    ]);
    expect(r.counts).toMatchObject({ updated: 1 });
    const view = await client.query(`SELECT id, primary_email, account_name FROM analytics.contacts WHERE customer_id = 'acme' ORDER BY id`);
    expect(view.rows).toEqual([
      { id: 'C1', primary_email: 'ADA@New.Example', account_name: 'Acme' },
      { id: 'C2', primary_email: null, account_name: 'Acme' },
    ]);
    const generated = await client.query(`SELECT id FROM landing.crm_contacts WHERE app_primary_email = 'ada@new.example'`);
    expect(generated.rows).toEqual([{ id: 'C1' }]);
    const pipeline = await client.query(`SELECT stage, amount::text, deals::int FROM analytics.open_pipeline WHERE customer_id = 'acme'`);
    expect(pipeline.rows).toEqual([{ stage: 'Proposal', amount: '1300.00', deals: 2 }]);
    await client.query(`DROP SCHEMA analytics CASCADE; ALTER TABLE landing.crm_contacts DROP COLUMN app_primary_email`);
  });

  it('refuses an object that is not in the catalog, naming the ones that are', async () => {
    for (const object of ['crm_widgets', 'constructor', '__proto__']) {
      await expect((async () => dest.load({ kind: 'common', object, provider: 'hubspot', customerId: 'cust-9', input: streamOf([]) }))()).rejects.toMatchObject(
        { code: 'unknown_object', hint: expect.stringContaining('crm_accounts') },
      );
    }
  });
});
