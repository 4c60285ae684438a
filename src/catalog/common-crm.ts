import type { CatalogFields } from './common.js';

/*
 * CRM common objects: the fields a unified CRM API maps every provider's
 * accounts, contacts, leads, opportunities and users to. Each object also gets
 * `id` and pgland's own `_pgland_*` columns (definition.ts).
 *
 * `list` is a jsonb array (addresses, emails, phones: objects with a value and
 * a type, e.g. {"email_address": "ada@example.com", "email_address_type": "primary"}).
 */
export const CRM_OBJECTS: Record<string, CatalogFields> = {
  crm_accounts: {
    name: 'text',
    description: 'text',
    industry: 'text',
    website: 'text',
    number_of_employees: 'bigint',
    addresses: 'list',
    phone_numbers: 'list',
    lifecycle_stage: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  crm_contacts: {
    first_name: 'text',
    last_name: 'text',
    email_addresses: 'list',
    phone_numbers: 'list',
    addresses: 'list',
    lifecycle_stage: 'text',
    account_id: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  crm_leads: {
    first_name: 'text',
    last_name: 'text',
    title: 'text',
    company: 'text',
    lead_source: 'text',
    email_addresses: 'list',
    phone_numbers: 'list',
    addresses: 'list',
    converted_date: 'date',
    converted_contact_id: 'text',
    converted_account_id: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  crm_opportunities: {
    name: 'text',
    description: 'text',
    amount: 'numeric',
    stage: 'text',
    status: 'text', // OPEN, WON or LOST
    close_date: 'date',
    pipeline: 'text',
    account_id: 'text',
    owner_id: 'text',
    last_activity_at: 'timestamptz',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  crm_users: {
    name: 'text',
    email: 'text',
    is_active: 'boolean',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
};
