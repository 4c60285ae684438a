import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyJson, copyRow, copyText, jsonText, newEncodeStats, type EncodeStats } from '../src/encode/copy-text.js';
import { openDestination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase('encoder');
});
afterAll(async () => {
  await db?.drop();
});

describe('copyText (issue 2)', () => {
  it('escapes backslash, tab, newline and carriage return, and nothing else', () => {
    const s = newEncodeStats();
    expect(copyText('a\\b\tc\nd\re', s)).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyText('\\N', s)).toBe('\\\\N');
    expect(copyText('"quoted" \'single\' ,;|', s)).toBe('"quoted" \'single\' ,;|');
    expect(copyText('Zoë 日本語 😀', s)).toBe('Zoë 日本語 😀');
    expect(copyText('', s)).toBe('');
    expect(s).toEqual({ nulStripped: 0, surrogatesReplaced: 0 });
  });

  it('strips NUL characters and counts each one', () => {
    const s = newEncodeStats();
    expect(copyText('\u0000a\u0000\u0000b\\\u0000', s)).toBe('ab\\\\');
    expect(s.nulStripped).toBe(4);
    expect(s.surrogatesReplaced).toBe(0);
  });

  it('replaces lone surrogates with U+FFFD and counts them, keeping valid pairs', () => {
    const s = newEncodeStats();
    expect(copyText('ok 😀', s)).toBe('ok 😀');
    expect(s.surrogatesReplaced).toBe(0);
    expect(copyText('hi\uD800 lo\uDC00 \uDE00\uD83D end\uD83D', s)).toBe('hi\uFFFD lo\uFFFD \uFFFD\uFFFD end\uFFFD');
    expect(s.surrogatesReplaced).toBe(5);
    // The check must not carry state from one call to the next (a global regex's lastIndex).
    for (let i = 0; i < 3; i++) expect(copyText('x\uD800', s)).toBe('x\uFFFD');
    expect(s.surrogatesReplaced).toBe(8);
  });
});

describe('jsonText and copyJson (issue 2)', () => {
  it('removes escaped NUL from values and keys, and counts them', () => {
    const s = newEncodeStats();
    const text = jsonText({ 'k\u0000ey': 'v\u0000al\u0000', list: ['\u0000'] }, s);
    expect(JSON.parse(text)).toEqual({ key: 'val', list: [''] });
    expect(s.nulStripped).toBe(4);
  });

  it('leaves the literal text \\u0000 (a backslash then u0000) alone', () => {
    const s = newEncodeStats();
    const value = { '\\u0000': '\\u0000', odd: '\\\\u0000', mix: '\\\u0000' };
    const text = jsonText(value, s);
    // Only the real NUL after the backslash in "mix" goes.
    expect(JSON.parse(text)).toEqual({ '\\u0000': '\\u0000', odd: '\\\\u0000', mix: '\\' });
    expect(s.nulStripped).toBe(1);
  });

  it('replaces escaped lone surrogates with U+FFFD and counts them', () => {
    const s = newEncodeStats();
    const text = jsonText({ ['k\uDC00']: 'v\uD800', pair: '😀', literal: '\\ud800' }, s);
    expect(JSON.parse(text)).toEqual({ 'k\uFFFD': 'v\uFFFD', pair: '😀', literal: '\\ud800' });
    expect(s.surrogatesReplaced).toBe(2);
    expect(s.nulStripped).toBe(0);
  });

  it('doubles the backslashes of JSON text for COPY and leaves the rest to JSON', () => {
    const s = newEncodeStats();
    expect(copyJson({ a: 'x\\y', b: 'tab\there', c: 'line\nbreak' }, s)).toBe('{"a":"x\\\\\\\\y","b":"tab\\\\there","c":"line\\\\nbreak"}');
    expect(copyJson([1, true, null, 'plain'], s)).toBe('[1,true,null,"plain"]');
  });
});

describe('copyRow (issue 2)', () => {
  it('joins fields with tabs, writes NULL as \\N and ends the row with a newline', () => {
    expect(copyRow(['a', null, '', 'b'])).toBe('a\t\\N\t\tb\n');
    expect(copyRow([])).toBe('\n');
  });
});

interface RoundTrip {
  text: string | null;
  json: unknown;
}

/**
 * Encodes rows with the encoder, streams them through a real COPY into a
 * temporary table with a text and a jsonb column, and reads them back.
 */
async function roundTrip(rows: RoundTrip[], stats: EncodeStats): Promise<{ t: string | null; j: unknown }[]> {
  const client = await db.pool.connect();
  try {
    await client.query('CREATE TEMP TABLE rt (n int PRIMARY KEY, t text, j jsonb)');
    const lines = rows.map((r, i) => copyRow([String(i), r.text === null ? null : copyText(r.text, stats), r.json === null ? null : copyJson(r.json, stats)]));
    await pipeline(Readable.from(lines), client.query(copyFrom('COPY rt (n, t, j) FROM STDIN')));
    const { rows: back } = await client.query<{ t: string | null; j: unknown }>('SELECT t, j FROM rt ORDER BY n');
    return back;
  } finally {
    await client.query('DROP TABLE IF EXISTS rt').catch(() => undefined);
    client.release();
  }
}

describe('the encoder through a real COPY and a SELECT (issue 2)', () => {
  const awkward = [
    'back\\slash',
    '\\',
    'ends with a backslash\\',
    '\\\\double',
    'tab\there',
    'new\nline',
    'carriage\rreturn',
    'crlf\r\n',
    '\\N',
    '\\.',
    'a line\n\\.\nthat looks like the end of COPY data',
    '"double" \'single\' `back`',
    'unicode: Zoë, Ελληνικά, 日本語, עברית',
    'emoji: 😀 👩‍👩‍👧 🇫🇷',
    '',
    ' ',
    '\\u0000',
    '\\x00',
    '\u0001\u001f\u007f control characters',
  ];

  it('round-trips awkward text and the same text inside JSON unchanged', async () => {
    const stats = newEncodeStats();
    const rows: RoundTrip[] = awkward.map((s) => ({ text: s, json: { s, [s]: [s, { nested: s }] } }));
    const back = await roundTrip(rows, stats);
    expect(back).toEqual(rows.map((r) => ({ t: r.text, j: r.json })));
    expect(stats).toEqual({ nulStripped: 0, surrogatesReplaced: 0 });
  });

  it('tells the empty string from NULL, in text and in JSON', async () => {
    const stats = newEncodeStats();
    const back = await roundTrip(
      [
        { text: '', json: '' },
        { text: null, json: null },
        { text: '\\N', json: { n: null } },
      ],
      stats,
    );
    expect(back).toEqual([
      { t: '', j: '' },
      { t: null, j: null },
      { t: '\\N', j: { n: null } },
    ]);
  });

  it('round-trips nested JSON with escapes and every JSON type', async () => {
    const stats = newEncodeStats();
    const json = {
      'key "with" quotes': { 'back\\slash': ['x\\y', 'tab\t', 'nl\n', 'cr\r', { deep: ['\u0001', '\u001f', '/', '\b\f'] }] },
      numbers: [0, -1.5, 1e21, 12345678901234],
      flags: [true, false, null],
      empty: { object: {}, array: [], string: '' },
      unicode: { ключ: 'значение', '😀': '🇫🇷' },
      'json in a string': '{"a":"b\\"c"}',
    };
    const back = await roundTrip([{ text: JSON.stringify(json), json }], stats);
    expect(back[0]!.j).toEqual(json);
    expect(back[0]!.t).toBe(JSON.stringify(json));
  });

  it('strips NUL from text and from JSON values and keys, counting each one', async () => {
    const stats = newEncodeStats();
    const back = await roundTrip(
      [
        { text: 'a\u0000b', json: { 'k\u0000': 'v\u0000', nested: [{ '\u0000x': '\u0000\u0000' }] } },
        { text: '\u0000', json: '\u0000' },
        { text: '\\\u0000\\', json: ['\\\u0000\\'] },
      ],
      stats,
    );
    expect(back).toEqual([
      { t: 'ab', j: { k: 'v', nested: [{ x: '' }] } },
      { t: '', j: '' },
      { t: '\\\\', j: ['\\\\'] },
    ]);
    expect(stats.nulStripped).toBe(1 + 5 + 1 + 1 + 1 + 1);
  });

  it('replaces lone surrogates in text and JSON with U+FFFD, counting each one', async () => {
    const stats = newEncodeStats();
    const back = await roundTrip(
      [
        { text: 'x\uD800y', json: { 'k\uDBFF': 'v\uDC00', ok: '😀' } },
        { text: '\uDE00\uD83D', json: ['\uDE00\uD83D'] },
      ],
      stats,
    );
    expect(back).toEqual([
      { t: 'x\uFFFDy', j: { 'k\uFFFD': 'v\uFFFD', ok: '😀' } },
      { t: '\uFFFD\uFFFD', j: ['\uFFFD\uFFFD'] },
    ]);
    expect(stats.surrogatesReplaced).toBe(1 + 2 + 2 + 2);
    expect(stats.nulStripped).toBe(0);
  });

  it('round-trips a 10 MB string with escapes spread through it, in text and in JSON', async () => {
    const stats = newEncodeStats();
    // Mostly plain text, with every awkward character once per 64 KiB.
    const unit = 'abc\\def\tghi\njkl\rmnö😀"q" ' + 'x'.repeat(64 * 1024);
    const big = unit.repeat(Math.ceil((10 * 1024 * 1024) / unit.length));
    expect(big.length).toBeGreaterThanOrEqual(10 * 1024 * 1024);
    const back = await roundTrip([{ text: big, json: { big } }], stats);
    // Compared by identity, not with toEqual: a failing diff of 10 MB would drown the report.
    expect(back[0]!.t === big).toBe(true);
    expect((back[0]!.j as { big: string }).big === big).toBe(true);
    expect(stats).toEqual({ nulStripped: 0, surrogatesReplaced: 0 });
  });
});

describe('NUL through the load path (issue 2)', () => {
  it('lands a record whose data and raw_data hold NUL, and counts what was stripped in the run', async () => {
    const dest = await openDestination(db.config({ schema: 'nul' }));
    try {
      const record = {
        id: 'c-nul',
        last_modified_at: '2026-01-15T10:30:00Z',
        raw_data: { Id: 'c-nul', 'First\u0000Name': 'A\u0000da', literal: '\\u0000' },
        data: {
          first_name: 'A\u0000da',
          last_name: '\u0000Love\u0000lace\u0000',
          email_addresses: [{ 'email\u0000_address': 'ada@example.com\u0000', email_address_type: 'primary' }],
        },
      };
      const clean = { id: 'c-ok', last_modified_at: '2026-01-15T10:30:00Z', data: { first_name: 'Grace' } };
      const result = await dest.load({
        kind: 'common',
        object: 'crm_contacts',
        provider: 'salesforce',
        customerId: 'acme',
        input: streamOf([record, clean]),
      });
      // raw_data: 2 (key, value); first_name: 1; last_name: 3; email_addresses: 2 (key, value).
      const expected = 2 + 1 + 3 + 2;
      expect(result.status).toBe('succeeded');
      expect(result.counts).toMatchObject({ rowsRead: 2, inserted: 2, rejected: 0, nulStripped: expected });
      const { rows } = await db.pool.query(`SELECT first_name, last_name, email_addresses, _pgland_raw_data FROM nul.crm_contacts WHERE id = 'c-nul'`);
      expect(rows[0]).toEqual({
        first_name: 'Ada',
        last_name: 'Lovelace',
        email_addresses: [{ email_address: 'ada@example.com', email_address_type: 'primary' }],
        _pgland_raw_data: { Id: 'c-nul', FirstName: 'Ada', literal: '\\u0000' },
      });
      const run = await db.pool.query(`SELECT status, nul_stripped::int AS n FROM nul._pgland_runs WHERE run_id = $1`, [result.runId]);
      expect(run.rows[0]).toEqual({ status: 'succeeded', n: expected });
    } finally {
      await dest.close();
    }
  });
});
