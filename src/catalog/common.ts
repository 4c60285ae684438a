import type { ColumnType } from '../encode/values.js';
import type { ColumnDef, ObjectDef } from './definition.js';

/**
 * The common-object catalog: a unified model with typed columns, versioned in
 * code. A change to an object's columns that is not purely additive must bump
 * COMMON_CATALOG_VERSION (schema evolution rebuilds the table).
 */
export const COMMON_CATALOG_VERSION = 1;

type Fields = Record<string, ColumnType>;

const crm: Record<string, Fields> = {
  crm_accounts: {
    name: 'text',
    description: 'text',
    industry: 'text',
    website: 'text',
    number_of_employees: 'bigint',
    addresses: 'jsonb',
    phone_numbers: 'jsonb',
    lifecycle_stage: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  crm_contacts: {
    first_name: 'text',
    last_name: 'text',
    email_addresses: 'jsonb',
    phone_numbers: 'jsonb',
    addresses: 'jsonb',
    lifecycle_stage: 'text',
    account_id: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
};

const catalog: Record<string, Fields> = { ...crm };

function columnsOf(fields: Fields): ColumnDef[] {
  return Object.entries(fields).map(([name, type]) => ({ name, type, source: { from: 'data', key: name } }));
}

/** The names of every common object. */
export function commonObjects(): string[] {
  return Object.keys(catalog);
}

/** The definition of a common object, or undefined when the name is not in the catalog. */
export function commonObject(object: string): ObjectDef | undefined {
  const fields = catalog[object];
  if (!fields) return undefined;
  return { kind: 'common', object, table: object, version: COMMON_CATALOG_VERSION, columns: columnsOf(fields) };
}
