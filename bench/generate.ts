/**
 * A deterministic generator of CRM contacts in pgland's input envelope. Every
 * value is derived from the record's number (and version), so the same size
 * always gives byte-identical files and a record can be regenerated alone.
 */

export interface Contact {
  id: string;
  last_modified_at: string;
  is_deleted: boolean;
  raw_data: Record<string, unknown>;
  data: Record<string, unknown>;
}

// Non-ASCII names on purpose: multi-byte UTF-8 exercises line decoding and the server's text input.
const FIRST = ['Ada', 'José', 'Zoë', 'Łukasz', 'Søren', 'Chloé', 'Mateo', 'Yuki', 'Ngozi', 'Björn', 'Amélie', 'Иван',
  'Олена', '美咲', 'Siobhán', 'Priya', 'Noémie', 'Jürgen', 'François', 'Ingrid', 'Grace', 'Alan', 'Kwame', 'Lena'];
const LAST = ['Lovelace', 'García', 'Müller', 'Nowak', 'Dubois', "O'Brien", 'Nguyễn', 'Kowalski', '田中', 'Шевченко',
  'Smith', 'Fernández', 'Jääskeläinen', 'Çelik', 'Novák', 'Rossi', 'Østergaard', 'Brontë', 'Hopper', 'Turing'];
const STAGES = ['lead', 'marketing_qualified', 'sales_qualified', 'opportunity', 'customer', 'evangelist'];
const CITIES = [['Paris', 'FR'], ['Kraków', 'PL'], ['São Paulo', 'BR'], ['München', 'DE'], ['Austin', 'US'], ['Tōkyō', 'JP']];

/** A 32-bit integer hash (lowbias32): cheap, well mixed, the same on every machine. */
function hash(n: number): number {
  n = (n ^ (n >>> 16)) >>> 0;
  n = Math.imul(n, 0x7feb352d) >>> 0;
  n = (n ^ (n >>> 15)) >>> 0;
  n = Math.imul(n, 0x846ca68b) >>> 0;
  return (n ^ (n >>> 16)) >>> 0;
}

function pick<T>(list: readonly T[], h: number): T {
  return list[h % list.length]!;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A time in 2024–2026, minute precision, from a hash. */
function time(h: number, year: number): { iso: string; sf: string } {
  const d = `${year}-${pad(1 + (h % 12), 2)}-${pad(1 + ((h >>> 4) % 28), 2)}`;
  const t = `${pad((h >>> 9) % 24, 2)}:${pad((h >>> 14) % 60, 2)}:00`;
  return { iso: `${d}T${t}Z`, sf: `${d}T${t}.000+0000` };
}

/**
 * Contact number `n` at `version` (1 for the first load; a higher version
 * changes the stage, title and timestamps, as an edit at the source would).
 * A quarter of the records have a phone and an address, half a last activity time.
 * About 1 in 200 records is deleted at the source; about 1 in 100 has a
 * description with a quote, a tab or a newline, so that escaping is exercised.
 */
export function contact(n: number, version = 1): Contact {
  const h = hash(n + 1);
  const h2 = hash(h ^ 0x9e3779b9);
  const id = `003C${pad(n, 10)}`;
  const account = `001A${pad(h2 % 50_000, 10)}`;
  const owner = `005U${pad(h % 300, 4)}`;
  const first = pick(FIRST, h);
  const last = pick(LAST, h >>> 8);
  const email = `c${n}@example${h2 % 97}.com`;
  const phone = `+1 415 555 ${pad(h2 % 10_000, 4)}`;
  const created = time(h2, 2024);
  const modified = time(hash(h + version), version === 1 ? 2025 : 2026);
  const activity = time(hash(h2 + version), 2025);
  const stage = pick(STAGES, (h >>> 3) + version);
  const [city, country] = pick(CITIES, h >>> 12);
  const hasAddress = h % 4 === 0;
  const odd = h2 % 100 === 0;

  const raw: Record<string, unknown> = {
    Id: id,
    FirstName: first,
    LastName: last,
    Email: email,
    CreatedDate: created.sf,
  };
  if (odd) raw.Description = `Met at "Summit" ${n}\n\tprefers C:\\ paths`;
  return {
    id,
    last_modified_at: modified.iso,
    is_deleted: h2 % 200 === 1,
    raw_data: raw,
    data: {
      first_name: first,
      last_name: last,
      email_addresses: [{ email_address: email, email_address_type: 'primary' }],
      phone_numbers: hasAddress ? [{ phone_number: phone, phone_number_type: 'mobile' }] : [],
      addresses: hasAddress ? [{ city, country }] : [],
      lifecycle_stage: stage,
      account_id: account,
      owner_id: owner,
      created_at: created.iso,
      updated_at: modified.iso,
      ...(h % 2 ? { last_activity_at: activity.iso } : {}),
    },
  };
}

/** Whether record `n` changed in the incremental file (10% of records). */
export function changedInIncrement(n: number): boolean {
  return n % 10 === 3;
}

/** Whether record `n` is missing from the full-refresh file (1% of records). */
export function missingInFullRefresh(n: number): boolean {
  return n % 100 === 7;
}
