import type { CatalogFields } from './common.js';

/*
 * Engagement (sales engagement: sequences of emails, calls and tasks) common
 * objects. Each object also gets `id` and pgland's own `_pgland_*` columns.
 * Counts are bigint; `list` is a jsonb array, `object` a jsonb object.
 */
export const ENGAGEMENT_OBJECTS: Record<string, CatalogFields> = {
  engagement_accounts: {
    name: 'text',
    domain: 'text',
    owner_id: 'text',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_contacts: {
    first_name: 'text',
    last_name: 'text',
    job_title: 'text',
    address: 'object',
    email_addresses: 'list',
    phone_numbers: 'list',
    account_id: 'text',
    owner_id: 'text',
    open_count: 'bigint',
    click_count: 'bigint',
    reply_count: 'bigint',
    bounced_count: 'bigint',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_mailboxes: {
    email: 'text',
    user_id: 'text',
    is_disabled: 'boolean',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_sequences: {
    name: 'text',
    is_enabled: 'boolean',
    owner_id: 'text',
    share_type: 'text', // team or private
    tags: 'list',
    num_steps: 'bigint',
    scheduled_count: 'bigint',
    opened_count: 'bigint',
    opted_out_count: 'bigint',
    replied_count: 'bigint',
    clicked_count: 'bigint',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_sequence_states: {
    sequence_id: 'text',
    contact_id: 'text',
    mailbox_id: 'text',
    user_id: 'text',
    state: 'text',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_sequence_steps: {
    sequence_id: 'text',
    name: 'text',
    step_number: 'bigint',
    type: 'text', // auto_email, manual_email, call, task, …
    interval_seconds: 'bigint',
    is_reply: 'boolean',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  engagement_users: {
    first_name: 'text',
    last_name: 'text',
    email: 'text',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
};
