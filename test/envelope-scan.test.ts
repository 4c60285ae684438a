import { describe, expect, it } from 'vitest';
import { contact } from '../bench/generate.js';
import { DEF, mutate, random, SEEDS, TS } from './support/envelope-lines.js';
import { commonObject } from '../src/catalog/common.js';
import type { ObjectDef } from '../src/catalog/definition.js';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { encodeRecord, type Problem } from '../src/encode/record.js';
import { jsonNestsDeeper } from '../src/encode/values.js';
import { parseEnvelope, parseWithJsonParse, type Parsed, type RecordEnvelope } from '../src/input/envelope.js';
import { LineMembers, scanEnvelope } from '../src/input/envelope-scan.js';
import { mayLoseDigits } from '../src/input/json-text.js';
import { compile, parseExpr } from '../src/into/mapping.js';

// The envelope scan (envelope-scan.ts) replaces JSON.parse of every line: it
// must accept exactly the lines JSON.parse accepts, read the same values from
// them, and the rows encoded from a scanned record must land exactly what the
// rows from a parsed one landed (jsonb values compared as values).

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the scan must agree with: JSON.parse of the line. */
function checkScan(text: string): void {
  const scanned = scanEnvelope(text);
  let parsed: unknown;
  let valid = true;
  try {
    parsed = JSON.parse(text);
  } catch {
    valid = false;
  }
  if (!valid || !isPlainObject(parsed) || jsonNestsDeeper(text)) {
    expect(scanned, text).toBeUndefined();
    return;
  }
  expect(scanned, text).toBeDefined();
  const s = scanned!;
  expect(s.id).toEqual(parsed.id);
  expect(s.lastModifiedAt).toEqual(parsed.last_modified_at);
  expect(s.isDeleted).toEqual(parsed.is_deleted);
  expect(s.problem).toEqual(parsed.problem);
  expect(s.rawText === undefined ? undefined : JSON.parse(s.rawText)).toEqual(parsed.raw_data);
  expect(s.dataText === undefined ? undefined : JSON.parse(s.dataText)).toEqual(parsed.data);
  if (isPlainObject(parsed.data)) {
    expect(s.dataMembers).toBeDefined();
    const map = (s.dataMembers as LineMembers).toMap();
    const members = Object.fromEntries([...map].map(([k, v]) => [k, JSON.parse(v) as unknown]));
    expect(members).toEqual({ ...parsed.data });
    expect(map.size).toBe(Object.keys(parsed.data).length);
    for (const [k, v] of map) expect(s.dataMembers!.get(k)).toBe(v);
  } else {
    expect(s.dataMembers).toBeUndefined();
  }
}

/** A COPY text field back to its text. */
function uncopy(field: string): string {
  return field.replace(/\\(.)/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

function encoded(record: RecordEnvelope): { fields: string[]; stats: unknown; problems: Problem[] } {
  const stats = newEncodeStats();
  const problems: Problem[] = [];
  const row = encodeRecord(record, DEF, stats, problems, '');
  return { fields: row.slice(0, -1).split('\t'), stats, problems };
}

/** The parsed record's fields, read as if from a plain object (a scanned record's are getters). */
function plain(p: Parsed): unknown {
  if ('reject' in p) return p;
  const r = p.record;
  return { lineNumber: r.lineNumber, id: r.id, lastModifiedAt: r.lastModifiedAt, isDeleted: r.isDeleted, rawData: r.rawData, data: r.data };
}

/** parseEnvelope against JSON.parse's reading of the same line, and encodeRecord of both. */
function checkEnvelope(text: string): void {
  const line = { lineNumber: 3, text };
  const fast = parseEnvelope(line);
  const slow = parseWithJsonParse(line);
  expect(plain(fast), text).toEqual(plain(slow));
  if ('reject' in fast || 'reject' in slow) return;
  const a = encoded(fast.record);
  const b = encoded(slow.record);
  expect(a.stats, text).toEqual(b.stats);
  const exactEverywhere = mayLoseDigits(text);
  DEF.columns.forEach((column, i) => {
    const [x, y] = [a.fields[4 + i]!, b.fields[4 + i]!];
    if (column.type === 'jsonb' && x !== '\\N' && y !== '\\N') expect(JSON.parse(uncopy(x)), `${column.name} in ${text}`).toEqual(JSON.parse(uncopy(y)));
    // On a line with a number JSON.parse may change, the parsed record lands every number as sent; the scanned one only those.
    else if (!exactEverywhere) expect(x, `${column.name} in ${text}`).toBe(y);
  });
  expect(a.fields.slice(0, 3)).toEqual(b.fields.slice(0, 3));
  const [rx, ry] = [a.fields[3]!, b.fields[3]!];
  expect(rx === '\\N' ? null : JSON.parse(uncopy(rx))).toEqual(ry === '\\N' ? null : JSON.parse(uncopy(ry)));
  if (!exactEverywhere) expect(a.problems).toEqual(b.problems);
  else expect(a.problems.map((p) => p.column)).toEqual(b.problems.map((p) => p.column));
}

describe('the envelope scan against JSON.parse', () => {
  it('reads the seeds as JSON.parse does', () => {
    for (const seed of SEEDS) {
      checkScan(seed);
      checkEnvelope(seed);
    }
  });

  it('accepts exactly what JSON.parse accepts, and reads the same, on 8,000 mutated lines', () => {
    const rnd = random(20);
    let accepted = 0;
    for (let n = 0; n < 8_000; n++) {
      const text = mutate(SEEDS[n % SEEDS.length]!, rnd);
      checkScan(text);
      checkEnvelope(text);
      if (scanEnvelope(text) !== undefined) accepted++;
    }
    // The mutations must reach both sides: valid lines and invalid ones.
    expect(accepted).toBeGreaterThan(800);
    expect(accepted).toBeLessThan(7_200);
  });

  it('rejects a line that is not JSON with JSON.parse reason', () => {
    const p = parseEnvelope({ lineNumber: 1, text: `{"id":"x","last_modified_at":"${TS}","raw_data":{"a":01}}` });
    expect(p).toMatchObject({ reject: { reason: expect.stringMatching(/^invalid JSON: /) } });
  });

  it('rejects a line cut after a number (the scan once looped forever on it)', () => {
    for (const text of [`{"id":"x","last_modified_at":"${TS}","raw_data":{"a":1`, '{"a":-0.5e7', '{"a":[12']) {
      expect(scanEnvelope(text), text).toBeUndefined();
      expect(parseEnvelope({ lineNumber: 1, text }), text).toMatchObject({ reject: { reason: expect.stringMatching(/^invalid JSON: /) } });
    }
  });

  it('does not parse raw_data or data when they are only landed', () => {
    const p = parseEnvelope({ lineNumber: 1, text: JSON.stringify(contact(5, 1, 2300)) });
    if (!('record' in p)) throw new Error('expected a record');
    const parse = JSON.parse;
    let calls = 0;
    JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
      calls++;
      return parse(...args);
    }) as typeof JSON.parse;
    try {
      encodeRecord(p.record, commonObject('crm_contacts')!, newEncodeStats(), [], '');
    } finally {
      JSON.parse = parse;
    }
    expect(calls).toBe(0);
  });
});

/** The same scanned record, its texts checked value by value as before the scan's asIs (envelope-scan.ts). */
function checkedEachValue(r: RecordEnvelope): RecordEnvelope {
  return {
    lineNumber: r.lineNumber,
    id: r.id,
    lastModifiedAt: r.lastModifiedAt,
    isDeleted: r.isDeleted,
    rawText: r.rawText,
    dataText: r.dataText,
    dataMembers: r.dataMembers,
    get rawData() {
      return r.rawData;
    },
    get data() {
      return r.data;
    },
    get rawMembers() {
      return r.rawMembers;
    },
    asIs: false,
  };
}

/** What encodeRecord writes for a record: the row, the counts and the problems. */
function encodedRow(record: RecordEnvelope, def: ObjectDef): string {
  const stats = newEncodeStats();
  const problems: Problem[] = [];
  const row = encodeRecord(record, def, stats, problems, '7\t');
  return JSON.stringify({ row, stats, problems });
}

describe("the scan's asIs: texts landed without checking each", () => {
  const CONTACTS = commonObject('crm_contacts')!;
  const EXTRA = [
    `{"id":"x","last_modified_at":"${TS}","data":{"text":"e1234 in a string","timestamptz":"","date":"2026-02-29","jsonb":[1e999]}}`,
    `{"id":"x","last_modified_at":"${TS}","data":{"numeric":1e1000,"jsonb":{"n":1E-1000}}}`,
    `{"id":"x","last_modified_at":"${TS}","data":{"text":"tab\tescaped","timestamptz":"2026-01-15T10:30:00+01:00","list":[]},"raw_data":{"a":"b\\"}}`,
    `{"id":"x","last_modified_at":"${TS}","data":{"jsonb":{"long":"${'x'.repeat(17000)}"},"list":[${'1,'.repeat(9000)}1]},"raw_data":[${'9'.repeat(17000)}]}`,
    `{"id":"x","last_modified_at":"${TS}",	"data":{"text":"after a tab"}}`,
  ];

  it('encodes every line exactly as checking each value does, and is set only on lines with nothing to escape', () => {
    const rnd = random(21);
    let asIs = 0;
    const lines = [...SEEDS, ...EXTRA];
    for (let n = 0; n < 8_000; n++) {
      const text = n < lines.length ? lines[n]! : mutate(lines[n % lines.length]!, rnd);
      const p = parseEnvelope({ lineNumber: 7, text });
      if (!('record' in p)) continue;
      if (p.record.asIs) {
        asIs++;
        // An exponent of 4 digits in a number, not in a string ("003C000E000001").
        const numbers = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
        expect(/[\\\t\r\n]/.test(text) || /[eE][+-]?\d{4}/.test(numbers) || !text.isWellFormed(), text).toBe(false);
      }
      for (const def of [DEF, CONTACTS]) expect(encodedRow(p.record, def), text).toBe(encodedRow(checkedEachValue(p.record), def));
    }
    expect(asIs).toBeGreaterThan(1_000);
  });
});

describe('compiled mappings against evaluate', () => {
  const EXPRS = [
    'id',
    'last_modified_at',
    'is_deleted',
    'data',
    'data.text',
    'data.list[1]',
    'data.jsonb.k',
    'raw_data',
    'raw_data.text',
    'raw_data.obj.a[2].b',
    'raw_data.obj.a[5]',
    'raw_data.obj.a.b',
    'raw_data.text[0]',
    'raw_data[0]',
    'raw_data[2].3',
    'data.list[0].x',
    'data.list.length',
    'data.jsonb.k[0]',
    'data.email_addresses[0].email_address',
    'data.phone_numbers[1]',
    'data.__proto__.x',
    'data.__proto__',
    'raw_data.constructor',
    "coalesce(data.missing, raw_data.text, 'x')",
    'lower(data.text)',
    'trim(raw_data.text)',
    'upper(data.numeric)',
  ];

  it('give the same values on the seeds and on mutated lines', async () => {
    const { evaluate } = await import('../src/into/mapping.js');
    const rnd = random(18);
    const compiled = EXPRS.map((t) => ({ t, e: parseExpr(t), get: compile(parseExpr(t)) }));
    for (let n = 0; n < 5_000; n++) {
      const text = n < SEEDS.length ? SEEDS[n]! : mutate(SEEDS[n % SEEDS.length]!, rnd);
      const fast = parseEnvelope({ lineNumber: 1, text });
      const slow = parseWithJsonParse({ lineNumber: 1, text });
      if (!('record' in fast) || !('record' in slow)) continue;
      for (const { t, e, get } of compiled) {
        expect(get.value(fast.record), `${t} in ${text}`).toEqual(evaluate(e, slow.record));
        const sent = get.text?.(fast.record);
        if (sent !== undefined) expect(JSON.parse(sent), `${t} in ${text}`).toEqual(evaluate(e, slow.record));
      }
    }
  });
});
