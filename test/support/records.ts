import { Readable } from 'node:stream';

export interface TestRecord {
  id: string;
  last_modified_at: string;
  is_deleted?: boolean;
  raw_data?: unknown;
  data?: Record<string, unknown>;
}

/** A CRM contact with deterministic content derived from its number and version. */
export function contact(n: number, version = 1, extra: Record<string, unknown> = {}): TestRecord {
  const id = `003C${String(n).padStart(8, '0')}`;
  const day = String(1 + (version % 28)).padStart(2, '0');
  return {
    id,
    last_modified_at: `2026-02-${day}T10:00:00Z`,
    raw_data: { Id: id, FirstName: `First${n}`, LastName: `Last${n}`, Version: version },
    data: {
      first_name: `First${n}`,
      last_name: `Last${n} v${version}`,
      email_addresses: [{ email_address: `c${n}@example.com`, email_address_type: 'primary' }],
      account_id: `001A${n % 10}`,
      ...extra,
    },
  };
}

export function ndjson(records: readonly unknown[]): string {
  return records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
}

/** An input stream that yields the lines in chunks of `chunk` bytes, to exercise line splitting. */
export function streamOf(records: readonly unknown[], chunk = 64 * 1024): Readable {
  const buf = Buffer.from(ndjson(records), 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}
