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
const FIRST = [
  'Ada',
  'José',
  'Zoë',
  'Łukasz',
  'Søren',
  'Chloé',
  'Mateo',
  'Yuki',
  'Ngozi',
  'Björn',
  'Amélie',
  'Иван',
  'Олена',
  '美咲',
  'Siobhán',
  'Priya',
  'Noémie',
  'Jürgen',
  'François',
  'Ingrid',
  'Grace',
  'Alan',
  'Kwame',
  'Lena',
];
const LAST = [
  'Lovelace',
  'García',
  'Müller',
  'Nowak',
  'Dubois',
  "O'Brien",
  'Nguyễn',
  'Kowalski',
  '田中',
  'Шевченко',
  'Smith',
  'Fernández',
  'Jääskeläinen',
  'Çelik',
  'Novák',
  'Rossi',
  'Østergaard',
  'Brontë',
  'Hopper',
  'Turing',
];
const STAGES = ['lead', 'marketing_qualified', 'sales_qualified', 'opportunity', 'customer', 'evangelist'];
const CITIES = [
  ['Paris', 'FR'],
  ['Kraków', 'PL'],
  ['São Paulo', 'BR'],
  ['München', 'DE'],
  ['Austin', 'US'],
  ['Tōkyō', 'JP'],
];

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

/** The record sizes the generator writes: the compact contact, and a HubSpot-like one with a large raw payload. */
export const RECORD_SIZES = [620, 2300] as const;
export type RecordSize = (typeof RECORD_SIZES)[number];

const SOURCES = ['ORGANIC_SEARCH', 'PAID_SEARCH', 'EMAIL_MARKETING', 'SOCIAL_MEDIA', 'REFERRALS', 'OFFLINE', 'DIRECT_TRAFFIC'];
const INDUSTRIES = ['COMPUTER_SOFTWARE', 'FINANCIAL_SERVICES', 'HOSPITAL_HEALTH_CARE', 'RETAIL', 'TELECOMMUNICATIONS', 'EDUCATION_MANAGEMENT'];
const TITLES = ['Head of Data', 'VP Engineering', 'Office Manager', 'Procurement Lead', 'Chief Financial Officer', 'Développeur'];

/**
 * A HubSpot-like raw payload (about 1.5 KB): the object's id, a `properties`
 * map with the properties a portal typically returns (many of them null, as
 * HubSpot sends unset properties), and the record's own timestamps.
 */
function hubspotRaw(
  n: number,
  h: number,
  h2: number,
  version: number,
  f: {
    id: string;
    first: string;
    last: string;
    email: string;
    phone: string;
    city: string;
    country: string;
    stage: string;
    street: string;
    owner: string;
    account: string;
    created: string;
    modified: string;
    activity: string;
    odd: boolean;
  },
): Record<string, unknown> {
  const visits = h % 40;
  return {
    id: String(100_000_000 + n),
    properties: {
      hs_object_id: String(100_000_000 + n),
      createdate: f.created,
      lastmodifieddate: f.modified,
      email: f.email,
      firstname: f.first,
      lastname: f.last,
      phone: f.phone,
      mobilephone: h % 3 === 0 ? f.phone : null,
      company: `${pick(LAST, h >>> 5)} ${pick(['GmbH', 'S.A.', 'Ltd', 'Inc.', 'K.K.', 'sp. z o.o.'], h2 >>> 3)}`,
      website: `https://www.example${h2 % 97}.com/`,
      jobtitle: pick(TITLES, h2 >>> 7),
      industry: pick(INDUSTRIES, h >>> 6),
      address: f.street,
      city: f.city,
      state: null,
      zip: pad(h2 % 100_000, 5),
      country: f.country,
      lifecyclestage: f.stage,
      hs_lead_status: pick(['NEW', 'OPEN', 'IN_PROGRESS', 'CONNECTED', null], h2 >>> 11),
      hubspot_owner_id: f.owner,
      associatedcompanyid: f.account,
      num_employees: String(10 * (1 + (h2 % 500))),
      annualrevenue: h % 5 === 0 ? null : String(100_000 * (1 + (h % 900))),
      hs_analytics_source: pick(SOURCES, h >>> 2),
      hs_analytics_source_data_1: pick(['google', 'newsletter-2025-03', 'linkedin', null], h2 >>> 13),
      hs_analytics_first_url: `https://www.example.com/pricing?utm_source=${pick(SOURCES, h >>> 2).toLowerCase()}&utm_campaign=c${h % 50}`,
      hs_analytics_num_visits: String(visits),
      hs_analytics_num_page_views: String(visits * 3 + (h2 % 7)),
      hs_analytics_first_timestamp: f.created,
      hs_analytics_last_timestamp: f.activity,
      hs_email_optout: h2 % 17 === 0 ? 'true' : 'false',
      hs_email_open: String(h % 23),
      hs_email_click: String(h % 7),
      hs_email_bounce: '0',
      hs_email_last_open_date: h % 2 ? f.activity : null,
      hs_sales_email_last_replied: null,
      notes_last_contacted: h % 2 ? f.activity : null,
      num_contacted_notes: String(h2 % 9),
      hs_lifecyclestage_lead_date: f.created,
      hs_persona: pick(['persona_1', 'persona_2', null], h >>> 10),
      hs_language: pick(['en', 'fr', 'de', 'pl', 'ja', null], h2 >>> 15),
      hs_timezone: pick(['europe_slash_paris', 'america_slash_chicago', 'asia_slash_tokyo'], h >>> 14),
      hs_latest_source: pick(SOURCES, (h >>> 4) + version),
      hs_is_unworked: version === 1 ? 'true' : 'false',
      hs_email_domain: `example${h2 % 97}.com`,
      hs_object_source: pick(['CRM_UI', 'IMPORT', 'FORM', 'INTEGRATION'], h >>> 7),
      recent_conversion_event_name: h % 3 ? `Pricing page – demo request ${h % 12}` : null,
      message: f.odd ? `Met at "Summit" ${n}\n\tprefers C:\\ paths` : null,
    },
    createdAt: f.created,
    updatedAt: f.modified,
    archived: false,
  };
}

/**
 * Contact number `n` at `version` (1 for the first load; a higher version
 * changes the stage, title and timestamps, as an edit at the source would).
 * A quarter of the records have a phone and an address, half a last activity time.
 * About 1 in 200 records is deleted at the source; about 1 in 100 has a
 * description with a quote, a tab or a newline, so that escaping is exercised.
 */
export function contact(n: number, version = 1, recordSize: RecordSize = 620): Contact {
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

  const large = recordSize === 2300;
  const street = `${1 + (h % 400)} ${pick(['Rue de Rivoli', 'ul. Floriańska', 'Avenida Paulista', 'Leopoldstraße', 'Congress Ave'], h2 >>> 9)}`;
  const emails = [{ email_address: email, email_address_type: 'primary' }];
  if (large) emails.push({ email_address: `${first.toLowerCase()}.${n}@mail${h % 31}.example.org`, email_address_type: 'work' });
  const phones = large ? [{ phone_number: phone, phone_number_type: 'work' }] : hasAddress ? [{ phone_number: phone, phone_number_type: 'mobile' }] : [];
  const addresses = large
    ? [{ street_1: street, city, country, postal_code: pad(h2 % 100_000, 5), address_type: 'primary' }]
    : hasAddress
      ? [{ city, country }]
      : [];
  let raw: Record<string, unknown>;
  if (large) {
    raw = hubspotRaw(n, h, h2, version, {
      id,
      first,
      last,
      email,
      phone,
      city: city!,
      country: country!,
      stage,
      street,
      owner,
      account,
      created: created.iso,
      modified: modified.iso,
      activity: activity.iso,
      odd,
    });
  } else {
    raw = { Id: id, FirstName: first, LastName: last, Email: email, CreatedDate: created.sf };
    if (odd) raw.Description = `Met at "Summit" ${n}\n\tprefers C:\\ paths`;
  }
  return {
    id,
    last_modified_at: modified.iso,
    is_deleted: h2 % 200 === 1,
    raw_data: raw,
    data: {
      first_name: first,
      last_name: last,
      email_addresses: emails,
      phone_numbers: phones,
      addresses,
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

/** A small sync's NDJSON: records 0…n-1 at a version (ids repeat across tenants, as they would across customers). */
export function smallSyncInput(records: number, version: number): string {
  let text = '';
  for (let n = 0; n < records; n++) text += JSON.stringify(contact(n, version)) + '\n';
  return text;
}
