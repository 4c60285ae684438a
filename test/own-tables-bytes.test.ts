import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { newEncodeStats } from '../src/encode/copy-text.js';
import { ROW_FULL, ROW_SLOW } from '../src/encode/record-bytes.js';
import { BytesRecord } from '../src/input/bytes-record.js';
import { parseEnvelope, type RecordEnvelope } from '../src/input/envelope.js';
import { BytesLine } from '../src/input/lines.js';
import { ChunkPool, newBatchBuffer, type BatchBuffer } from '../src/load/copy-writer.js';
import { IdSet } from '../src/load/id-set.js';
import { parseMapping } from '../src/into/mapping.js';
import { intoRowEncoder, type IntoRowEncoder } from '../src/into/stage.js';
import type { TableColumn, TableInfo } from '../src/into/target.js';
import type { IntoPlan, PlannedColumn } from '../src/into/validate.js';
import { bytesLines, mutate, random, SEEDS, TS } from './support/envelope-lines.js';

// The own-table byte encoder (src/into/stage-bytes.ts) must stage exactly
// what the string encoder stages from the same line read as text: for every
// line and plan, the same row bytes, the same rejects and skips, the same
// counts of stripped NULs and replaced surrogates, the same deletions, and
// the same answer to "does this record's matching value repeat".

const TYPES: Record<string, [typname: string, category: string]> = {
  text: ['text', 'S'],
  varchar: ['varchar', 'S'],
  numeric: ['numeric', 'N'],
  int8: ['int8', 'N'],
  float8: ['float8', 'N'],
  bool: ['bool', 'B'],
  timestamptz: ['timestamptz', 'D'],
  jsonb: ['jsonb', 'U'],
  json: ['json', 'U'],
  _text: ['_text', 'A'],
  uuid: ['uuid', 'U'],
};

function column(name: string, type: string, notNull = false): TableColumn {
  const [typname, category] = TYPES[type]!;
  return {
    name,
    attnum: 0,
    castType: `pg_catalog.${typname}`,
    display: typname,
    typname,
    category,
    notNull,
    identity: '',
    generated: false,
    hasDefault: false,
    canInsert: true,
    canUpdate: true,
    canSelect: true,
  };
}

interface PlanSpec {
  action: IntoPlan['action'];
  write: IntoPlan['write'];
  /** [column, type, mapping, NOT NULL] */
  cols: [string, string, string, boolean?][];
  match?: string;
  lastModified?: string;
  applyDeletes?: boolean;
  skipDeleted?: boolean;
  groups?: string;
}

function plan(spec: PlanSpec): IntoPlan {
  const columns: PlannedColumn[] = spec.cols.map(([name, type, map, notNull], i) => {
    const mapping = parseMapping(`${name}=${map}`);
    return { column: column(name, type, notNull), mapping, ...(map === 'now()' ? {} : { stage: `_s${i}` }), compareAsText: false };
  });
  const table = { schema: 'public', table: 't', qualified: 'public.t', columns: columns.map((c) => c.column) } as unknown as TableInfo;
  const match = columns.find((c) => c.column.name === spec.match);
  const lastModified = columns.find((c) => c.column.name === spec.lastModified);
  return {
    table,
    write: spec.write,
    action: spec.action,
    columns,
    ...(match ? { match } : {}),
    ...(lastModified ? { lastModified } : {}),
    applyDeletes: spec.applyDeletes ?? false,
    skipDeleted: spec.skipDeleted ?? false,
    returning: [],
    ...(spec.groups
      ? {
          groups: {
            table,
            key: column('k', 'int8'),
            name: column('n', 'text'),
            ref: column('r', 'int8'),
            from: parseMapping(`x=${spec.groups}`).expr,
            exact: true,
          },
        }
      : {}),
  };
}

const EVERY_TYPE: PlanSpec['cols'] = [
  ['email', 'text', 'data.email_addresses[0].email_address'],
  ['t', 'text', 'data.text'],
  ['v', 'varchar', 'data.first_name', true],
  ['n', 'numeric', 'data.numeric'],
  ['i', 'int8', 'data.bigint'],
  ['f', 'float8', 'data.float'],
  ['b', 'bool', 'data.boolean'],
  ['ts', 'timestamptz', 'data.timestamptz'],
  ['j', 'jsonb', 'data.jsonb'],
  ['js', 'json', 'data.jsonb'],
  ['arr', '_text', 'data.list'],
  ['u', 'uuid', 'data.text'],
  ['deep', 'text', 'data.a.b[1].c'],
  ['deepj', 'jsonb', 'data.a.b'],
  ['tj', 'text', 'data.jsonb'],
  ['bt', 'bool', 'data.text'],
  ['nt', 'int8', 'data.text'],
  ['c1', 'text', "'a\tb\\c'"],
  ['c2', 'int8', '42'],
  ['c3', 'bool', 'true'],
  ['c4', 'text', 'null'],
  ['c5', 'jsonb', '\'{"k": 1}\''],
  ['fn1', 'text', 'lower(data.text)'],
  ['fn2', 'text', 'coalesce(data.missing, data.first_name, data.text)'],
  ['fn3', 'text', 'trim(raw_data.text)'],
  ['raw', 'text', 'raw_data.text'],
  ['rawj', 'jsonb', 'raw_data'],
  ['whole', 'jsonb', 'data'],
  ['idx', 'jsonb', 'data[0]'],
  ['id', 'text', 'id'],
  ['lm', 'timestamptz', 'last_modified_at'],
  ['del', 'bool', 'is_deleted'],
  ['now', 'timestamptz', 'now()'],
];

/** Columns that take any JSON value (text, jsonb, json): a record is rejected only for its matching value. */
const LENIENT = EVERY_TYPE.filter(([, type, , notNull]) => ['text', 'varchar', 'jsonb', 'json'].includes(type) && !notNull);
const with_ = (cols: PlanSpec['cols'], name: string, type: string): PlanSpec['cols'] =>
  [...cols, EVERY_TYPE.find(([c]) => c === name)!].map((c) => (c[0] === name ? [c[0], type, c[2]] : c));

const PLANS: IntoPlan[] = [
  plan({ action: 'upsert', write: 'upsert', cols: EVERY_TYPE, match: 'email', lastModified: 'lm', applyDeletes: true }),
  plan({ action: 'insert', write: 'insert', cols: EVERY_TYPE.slice(1) }),
  plan({ action: 'update', write: 'update', cols: LENIENT, match: 't', skipDeleted: true }),
  plan({ action: 'upsert', write: 'upsert', cols: with_(LENIENT, 'i', 'int8'), match: 'i', applyDeletes: true }),
  plan({ action: 'upsert', write: 'upsert', cols: with_(LENIENT, 'n', 'numeric'), match: 'n', applyDeletes: true }),
  plan({ action: 'upsert', write: 'upsert', cols: LENIENT, match: 'j', applyDeletes: true }),
  plan({ action: 'upsert', write: 'upsert', cols: with_(LENIENT, 'b', 'bool'), match: 'b', applyDeletes: true }),
  plan({ action: 'delete', write: 'delete', cols: EVERY_TYPE, match: 'email', lastModified: 'lm' }),
  plan({ action: 'upsert', write: 'sync', cols: LENIENT, match: 'email', applyDeletes: true, groups: 'data.list' }),
  plan({ action: 'insert', write: 'insert', cols: LENIENT }),
];

/** Lines that reach each case of the byte encoder. */
const EXTRA: string[] = [
  `{"id":"a","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"a@x.com"}],"text":"T\\u00e9\\n","first_name":"F","numeric":1.10000000000000000000001,"bigint":12345678901234567890,"float":1.0,"boolean":true,"timestamptz":"2026-02-01T00:00:00Z","jsonb":{"k":[1, "\\t"]},"list":["a",null,"b\\"c"],"a":{"b":[0,{"c":"deep"}]}}}`,
  `{"id":"b","last_modified_at":"${TS}","is_deleted":true,"data":{"email_addresses":[{"email_address":"b@x.com"}],"first_name":"F","bigint":7,"text":"7"}}`,
  `{"id":"c","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"\\u00e9@x.com"}],"first_name":null,"bigint":-0,"float":1e2,"numeric":-0.0,"boolean":"yes","text":false}}`,
  // The same key as line c's, unescaped and not ASCII: a repeat, found from the bytes as from the string.
  `{"id":"c2","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"é@x.com"}],"first_name":"F"}}`,
  `{"id":"d","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"é@x.com","email_address":"last@x.com"}],"first_name":"F","bigint":1.5,"text":12,"jsonb":"str","list":"{x,y}"}}`,
  `{"id":"e","last_modified_at":"${TS}","data":{"email_addresses":[{"em\\u0061il_address":"escaped@x.com"}],"first_name":"F","a":{"\\u0062":[1,{"c":"x"}]},"jsonb":1e1000}}`,
  `{"id":"f","last_modified_at":"${TS}","data":{"email_addresses":[],"first_name":"F","text":{"o":1},"jsonb":[1e-9999]}}`,
  `{"id":"g","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":null}],"first_name":"F","text":"\\u0000\\ud800x"}}`,
  `{"id":"h","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"h@x.com"}],"first_name":"\\ud83d\\ude00","text":"日本語","jsonb":{"\\u0000":"\\u005c"},"list":[1,true,null]}}`,
  `{"id":"i","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"a@x.com"}],"first_name":"dup","bigint":12345678901234567890,"numeric":1e2,"text":"a@x.com","boolean":false,"list":["g1","g2"]}}`,
  `{"id":"j","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"j@x.com"}],"first_name":"F","jsonb":{"long":"${'x'.repeat(17000)}"},"list":[{"not":"a name"}]}}`,
  `{"id":"k","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"k@x.com"}],"first_name":"F","t\\u0065xt":"escaped top name"},"raw_data":{"text":"  raw  "}}`,
  `{"id":"l","last_modified_at":"${TS}","data":[1,2]}`,
  `{"id":"m","last_modified_at":"${TS}","raw_data":{"text":"only raw"}}`,
  `{"id":"n","last_modified_at":"${TS}","data":{ "email_addresses" : [ { "email_address" : "n@x.com" } ] ,\t"first_name":"F", "jsonb" : [ 1 ,\r\n 2 ] }}`,
];

interface Staged {
  row?: string;
  reject?: unknown;
  rejects: unknown[];
  stats: unknown;
  skipped: number;
  deletions: number;
  repeats: boolean | undefined;
}

/** Room for any row of these lines. */
const out = Buffer.alloc(4 << 20);
const chunks = new ChunkPool();

function staged(p: IntoPlan, encoder: IntoRowEncoder, record: RecordEnvelope, bytes: boolean, keys: IdSet, seen: { bytes: number; slow: number }): Staged {
  const buf: BatchBuffer = newBatchBuffer('stage', chunks);
  const lead = `${record.lineNumber}\t`;
  let row: string | undefined;
  if (bytes && record instanceof BytesRecord) {
    const end = encoder.encodeBytes(record, buf, lead, out, 0);
    if (end >= 0) {
      seen.bytes++;
      row = out.subarray(0, end).toString('latin1');
    } else {
      expect(end).toBe(ROW_SLOW);
      seen.slow++;
    }
  }
  if (row === undefined) {
    const text = encoder.encode(record, buf, lead);
    row = Buffer.from(text, 'utf8').toString('latin1');
  }
  const repeats = row !== '' && p.match ? encoder.repeats(keys, record) : undefined;
  chunks.release(buf);
  return { row, rejects: buf.rejects, stats: buf.stats, skipped: encoder.skipped(buf), deletions: encoder.deletions(buf), repeats };
}

describe('the own-table byte encoder against the string encoder', () => {
  it('stages byte-identical rows, rejects and counts, and finds the same repeated keys, on seeds and mutated lines', async () => {
    const rnd = random(18);
    const texts = [...EXTRA, ...SEEDS];
    const inputs: Buffer[] = [];
    for (let n = 0; n < 3_000; n++) {
      const text = n < texts.length ? texts[n]! : mutate(texts[n % texts.length]!, rnd);
      inputs.push(Buffer.from(text.replace(/\n/g, '\\n'), 'utf8'), Buffer.from('\n'));
    }
    const lines = await bytesLines(Buffer.concat(inputs));
    const records: [RecordEnvelope, RecordEnvelope, string][] = [];
    for (const line of lines) {
      const asText = parseEnvelope({ lineNumber: line.lineNumber, text: line.text });
      const asBytes = parseEnvelope(line);
      expect('reject' in asBytes).toBe('reject' in asText);
      if ('record' in asText && 'record' in asBytes) records.push([asText.record, asBytes.record, line.text]);
    }
    const seen = { bytes: 0, slow: 0, rejects: 0, repeats: 0 };
    for (const p of PLANS) {
      // One key set per path, fed the same records in the same order: a repeat must be found by both or neither.
      const [textEncoder, byteEncoder] = [intoRowEncoder(p), intoRowEncoder(p)];
      const textKeys = new IdSet(10_000);
      const byteKeys = new IdSet(10_000);
      for (const [asText, asBytes, text] of records) {
        const a = staged(p, textEncoder, asText, false, textKeys, seen);
        const b = staged(p, byteEncoder, asBytes, true, byteKeys, seen);
        if (!isDeepStrictEqual(a, b)) expect(b, `${text}\n${p.write} on ${p.match?.column.name}`).toEqual(a);
        if (a.rejects.length > 0) seen.rejects++;
        if (a.repeats) seen.repeats++;
      }
    }
    // Rows the byte encoder wrote, rows it left to the string encoder, rejects, repeats: all reached.
    expect(seen.bytes).toBeGreaterThan(2_000);
    expect(seen.slow).toBeGreaterThan(1_000);
    expect(seen.rejects).toBeGreaterThan(1_000);
    expect(seen.repeats).toBeGreaterThan(1_000);
  });

  it('writes nothing and counts nothing when the chunk has no room', async () => {
    const [line] = await bytesLines(
      Buffer.from(`{"id":"a","last_modified_at":"${TS}","data":{"email_addresses":[{"email_address":"a@x.com"}],"text":"\\u0000x","first_name":"F"}}\n`),
    );
    expect(line).toBeInstanceOf(BytesLine);
    const parsed = parseEnvelope(line!);
    if (!('record' in parsed) || !(parsed.record instanceof BytesRecord)) throw new Error('expected a record read as bytes');
    const encoder = intoRowEncoder(PLANS[0]!);
    const buf = newBatchBuffer('stage');
    for (const [size, at] of [
      [64, 0],
      [4096, 3900],
    ] as const) {
      expect(encoder.encodeBytes(parsed.record, buf, '1\t', Buffer.alloc(size), at)).toBe(ROW_FULL);
      expect(buf.stats).toEqual(newEncodeStats());
    }
    const out = Buffer.alloc(4096);
    const end = encoder.encodeBytes(parsed.record, buf, '1\t', out, 0);
    expect(end).toBeGreaterThan(0);
    const asString = newBatchBuffer('stage');
    expect(out.toString('utf8', 0, end)).toBe(encoder.encode(parsed.record, asString, '1\t'));
    // data.text is mapped six times: six NULs stripped, by both.
    expect(buf.stats).toEqual({ nulStripped: 6, surrogatesReplaced: 0 });
    expect(asString.stats).toEqual(buf.stats);
  });
});
