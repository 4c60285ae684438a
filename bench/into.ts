import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { qualify, quoteIdent as q } from '../src/sql/ident.js';
import { changedInIncrement, contact, type Contact, type RecordSize } from './generate.js';
import { literal } from './psql.js';

/**
 * The own-table benchmark (issue 18): an upsert into a table the customer
 * already has, with a unique index on the match column (email), mapped from
 * the same NDJSON records that the other contenders land. B-into is its
 * SQL-only floor: psql \copy of the same mapped values into a temporary
 * table, then one INSERT … ON CONFLICT (email) DO UPDATE with pgland's rule
 * (only a version at least as new, only when something differs).
 */

export const INTO_TABLE = 'contacts';

/** The customer's table: an identity key, a unique email, the mapped columns, a DEFAULT now() column. */
export function intoTableSql(schema: string): string[] {
  const t = qualify(schema, INTO_TABLE);
  return [
    `DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`,
    `CREATE SCHEMA ${q(schema)}`,
    `CREATE TABLE ${t} (
      contact_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email text NOT NULL,
      first_name text, last_name text, lifecycle_stage text, account_id text, owner_id text,
      phones jsonb, created_at timestamptz, updated_at timestamptz,
      inserted_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE UNIQUE INDEX contacts_email_key ON ${t} (email)`,
  ];
}

/** column → mapping, as given to --map; updated_at holds the version, so the newest wins. */
export const INTO_MAPPINGS: [string, string, string][] = [
  ['email', 'data.email_addresses[0].email_address', 'text'],
  ['first_name', 'data.first_name', 'text'],
  ['last_name', 'data.last_name', 'text'],
  ['lifecycle_stage', 'data.lifecycle_stage', 'text'],
  ['account_id', 'data.account_id', 'text'],
  ['owner_id', 'data.owner_id', 'text'],
  ['phones', 'data.phone_numbers', 'jsonb'],
  ['created_at', 'data.created_at', 'timestamptz'],
  ['updated_at', 'last_modified_at', 'timestamptz'],
];

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === '' || /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

/** The mapped values of one record as a CSV line: what pgland writes into the table for it. */
export function intoCsvLine(r: Contact): string {
  const d = r.data as Record<string, unknown> & { email_addresses: { email_address: string }[] };
  return (
    [
      d.email_addresses[0]!.email_address,
      d.first_name,
      d.last_name,
      d.lifecycle_stage,
      d.account_id,
      d.owner_id,
      d.phone_numbers,
      d.created_at,
      r.last_modified_at,
    ]
      .map(csvField)
      .join(',') + '\n'
  );
}

/** The CSV files beside a dataset's NDJSON (written once, see dataset.ts). */
export function intoCsvPaths(firstNdjson: string): { first: string; incr: string } {
  const dir = dirname(firstNdjson);
  return { first: join(dir, 'into-first.csv'), incr: join(dir, 'into-incr.csv') };
}

export function intoCsvMissing(firstNdjson: string): boolean {
  const p = intoCsvPaths(firstNdjson);
  return !existsSync(p.first) || !existsSync(p.incr);
}

export const intoRecord = (variant: 'first' | 'incr', n: number, recordSize: RecordSize): Contact =>
  contact(n, variant === 'incr' && changedInIncrement(n) ? 2 : 1, recordSize);

/** B-into: one transaction, \copy into a temporary table, one INSERT … ON CONFLICT DO UPDATE. */
export function intoScriptB(schema: string, csvPath: string): string {
  const t = qualify(schema, INTO_TABLE);
  const cols = INTO_MAPPINGS.map(([c]) => q(c));
  const compared = INTO_MAPPINGS.filter(([c]) => c !== 'email').map(([c]) => q(c));
  return `BEGIN;
CREATE TEMP TABLE bench_into_stage (${INTO_MAPPINGS.map(([c, , type]) => `${q(c)} ${type}`).join(', ')}) ON COMMIT DROP;
\\copy bench_into_stage FROM ${literal(csvPath)} WITH (FORMAT csv)
INSERT INTO ${t} AS t (${cols.join(', ')})
SELECT ${cols.join(', ')} FROM bench_into_stage
ON CONFLICT (email) DO UPDATE SET ${compared.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
WHERE (t.updated_at IS NULL OR t.updated_at <= EXCLUDED.updated_at)
  AND (${compared.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (${compared.map((c) => `EXCLUDED.${c}`).join(', ')});
COMMIT;
`;
}
