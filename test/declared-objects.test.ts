import { createHash } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredColumns, openDestination, type DeclaredSchema, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

let db: TestDatabase;
let dest: Destination;
let client: pg.PoolClient;

beforeAll(async () => {
  db = await freshDatabase('declared_objects');
  dest = await openDestination(db.config({ schema: 'landing' }));
  client = await db.pool.connect();
  await client.query(`SET TimeZone = 'UTC'`);
});
afterAll(async () => {
  client?.release();
  await dest?.close();
  await db?.drop();
});

const hash8 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

async function columnsOf(table: string): Promise<[string, string][]> {
  const { rows } = await client.query(
    `SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = 'landing' AND table_name = $1 AND column_name NOT LIKE '\\_pgland\\_%' AND column_name <> 'id'
      ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => [r.column_name, r.data_type]);
}

/** A Salesforce Account as a platform declares it: JSON Schema with the usual variations. */
const accountSchema: DeclaredSchema = {
  type: 'object',
  properties: {
    Id: { type: 'string' },
    Name: { type: 'string' },
    AnnualRevenue: { type: ['number', 'null'] },
    NumberOfEmployees: { type: 'integer', nullable: true },
    IsDeleted: { type: 'boolean' },
    CreatedDate: { type: 'string', format: 'date-time' },
    LastActivityDate: { type: ['null', 'string'], format: 'date' },
    BillingAddress: { type: 'object' },
    Tags__c: { type: 'array' },
    Mixed__c: { type: ['string', 'number'] },
    ParentId: { anyOf: [{ type: 'null' }, { type: 'string' }] },
    Untyped__c: {},
  },
};

describe('standard and custom objects typed from a declared schema (issue 3)', () => {
  it('lands a standard object typed in <provider>_<object>; undeclared fields only in the raw payload', async () => {
    const raw = {
      Id: '001A000001',
      Name: 'Acme',
      AnnualRevenue: 1234567.89,
      NumberOfEmployees: 250,
      IsDeleted: false,
      CreatedDate: '2025-12-01T08:00:00.000+0000',
      LastActivityDate: '2026-01-14',
      BillingAddress: { street: '1 Main St', city: 'Springfield' },
      Tags__c: ['a', 'b'],
      Mixed__c: 7,
      ParentId: '001A000000',
      Untyped__c: { anything: [true, null] },
      Undeclared__c: 'only in the raw payload',
      attributes: { type: 'Account' },
    };
    const result = await dest.load({
      kind: 'standard',
      object: 'Account',
      provider: 'salesforce',
      customerId: 'acme',
      declared: accountSchema,
      input: streamOf([{ id: raw.Id, last_modified_at: '2026-01-15T10:30:00Z', raw_data: raw }]),
    });
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ status: 'succeeded', table: 'salesforce_account' });
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });

    // Sorted by field name; Id would be the key's name, so it gets a hash of its spelling.
    expect(await columnsOf('salesforce_account')).toEqual([
      ['annual_revenue', 'numeric'],
      ['billing_address', 'jsonb'],
      ['created_date', 'timestamp with time zone'],
      [`id_${hash8('Id')}`, 'text'],
      ['is_deleted', 'boolean'],
      ['last_activity_date', 'date'],
      ['mixed_c', 'jsonb'],
      ['name', 'text'],
      ['number_of_employees', 'bigint'],
      ['parent_id', 'text'],
      ['tags_c', 'jsonb'],
      ['untyped_c', 'jsonb'],
    ]);
    const { rows } = await client.query(
      `SELECT annual_revenue::text, billing_address, created_date::text, "id_${hash8('Id')}" AS sf_id, is_deleted,
              last_activity_date::text, mixed_c, name, number_of_employees::text, parent_id, tags_c, untyped_c,
              _pgland_raw_data
         FROM landing.salesforce_account`,
    );
    expect(rows).toEqual([
      {
        annual_revenue: '1234567.89',
        billing_address: { street: '1 Main St', city: 'Springfield' },
        created_date: '2025-12-01 08:00:00+00',
        sf_id: '001A000001',
        is_deleted: false,
        last_activity_date: '2026-01-14',
        mixed_c: 7,
        name: 'Acme',
        number_of_employees: '250',
        parent_id: '001A000000',
        tags_c: ['a', 'b'],
        untyped_c: { anything: [true, null] },
        _pgland_raw_data: raw,
      },
    ]);
    // The undeclared field is nowhere but the raw payload.
    const undeclared = await client.query(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'landing' AND column_name LIKE 'undeclared%'`,
    );
    expect(undeclared.rows[0].n).toBe(0);
    const fromRaw = await client.query(`SELECT _pgland_raw_data->>'Undeclared__c' AS v FROM landing.salesforce_account`);
    expect(fromRaw.rows[0].v).toBe('only in the raw payload');
  });

  it('lands a custom object typed in custom_<object>, with provider-style string values', async () => {
    const schema: DeclaredSchema = {
      type: 'object',
      properties: {
        invoice_number: { type: 'string' },
        amount: { type: 'number' },
        line_count: { type: 'integer' },
        paid: { type: 'boolean' },
        due_on: { type: 'string', format: 'date' },
        paid_at: { type: 'string', format: 'date-time' },
        lines: { type: 'array' },
      },
    };
    // HubSpot sends every property as a string, and "" for one that is not set.
    const raw = {
      invoice_number: 'INV-0042',
      amount: '1999.99',
      line_count: '3',
      paid: 'true',
      due_on: '2026-03-01',
      paid_at: '',
      lines: [{ sku: 'A', qty: 1 }],
      note: 'undeclared',
    };
    const result = await dest.load({
      kind: 'custom',
      object: 'Invoice',
      provider: 'hubspot',
      customerId: 'acme',
      declared: schema,
      input: streamOf([{ id: 'inv-42', last_modified_at: '2026-01-15T10:30:00Z', raw_data: raw }]),
    });
    expect(result).toMatchObject({ status: 'succeeded', table: 'custom_invoice' });
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });
    expect(await columnsOf('custom_invoice')).toEqual([
      ['amount', 'numeric'],
      ['due_on', 'date'],
      ['invoice_number', 'text'],
      ['line_count', 'bigint'],
      ['lines', 'jsonb'],
      ['paid', 'boolean'],
      ['paid_at', 'timestamp with time zone'],
    ]);
    const { rows } = await client.query(
      `SELECT amount::text, due_on::text, invoice_number, line_count::text, lines, paid, paid_at, _pgland_raw_data->>'note' AS note
         FROM landing.custom_invoice`,
    );
    expect(rows).toEqual([
      {
        amount: '1999.99',
        due_on: '2026-03-01',
        invoice_number: 'INV-0042',
        line_count: '3',
        lines: [{ sku: 'A', qty: 1 }],
        paid: true,
        paid_at: null,
        note: 'undeclared',
      },
    ]);
  });

  it('lands a standard object declared without fields with only the raw payload', async () => {
    const result = await dest.load({
      kind: 'standard',
      object: 'deals',
      provider: 'HubSpot',
      customerId: 'acme',
      input: streamOf([{ id: 'd1', last_modified_at: '2026-01-15T10:30:00Z', raw_data: { dealname: 'Big one' } }]),
    });
    expect(result).toMatchObject({ status: 'succeeded', table: 'hub_spot_deals' });
    expect(await columnsOf('hub_spot_deals')).toEqual([]);
  });

  it('gives the same columns for the same declaration, whatever the order of its fields', () => {
    const reversed: DeclaredSchema = { properties: Object.fromEntries(Object.entries(accountSchema.properties!).reverse()) };
    expect(declaredColumns(reversed)).toEqual(declaredColumns(accountSchema));
    // Fields that normalise alike: the one spelled as the normalised name keeps it, the others get a hash of their spelling.
    const clash = declaredColumns({ properties: { email: { type: 'string' }, Email: { type: 'string' }, EMAIL: { type: 'string' } } });
    expect(clash.map((c) => [c.source.key, c.name])).toEqual([
      ['EMAIL', `email_${hash8('EMAIL')}`],
      ['Email', `email_${hash8('Email')}`],
      ['email', 'email'],
    ]);
    const noPlain = declaredColumns({ properties: { 'First Name': {}, FirstName: {} } });
    expect(noPlain.map((c) => c.name)).toEqual([`first_name_${hash8('First Name')}`, `first_name_${hash8('FirstName')}`]);
  });

  it('keeps system column names (xmin, ctid, …) and pgland names from failing CREATE TABLE', async () => {
    const names = ['xmin', 'xmax', 'cmin', 'cmax', 'ctid', 'tableoid', 'oid', 'id', 'ID', '_pgland_raw_data', '__pgland_x'];
    const schema: DeclaredSchema = { properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])) };
    const raw = Object.fromEntries(names.map((n) => [n, `value of ${n}`]));
    const result = await dest.load({
      kind: 'custom',
      object: 'bbox',
      provider: 'x',
      customerId: 'acme',
      declared: schema,
      input: streamOf([{ id: 'b1', last_modified_at: '2026-01-15T10:30:00Z', raw_data: raw }]),
    });
    expect(result.error).toBeUndefined();
    expect(result.counts).toMatchObject({ inserted: 1, problems: 0 });
    const { rows } = await client.query(`SELECT to_jsonb(t) - '_pgland_raw_data' AS row FROM landing.custom_bbox t`);
    const landed = rows[0].row as Record<string, unknown>;
    for (const c of declaredColumns(schema)) expect(landed[c.name]).toBe(`value of ${c.source.key}`);
    expect(landed.id).toBe('b1');
  });
});
