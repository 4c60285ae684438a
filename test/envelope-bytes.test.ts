import { describe, expect, it } from 'vitest';
import { commonObject } from '../src/catalog/common.js';
import type { ObjectDef } from '../src/catalog/definition.js';
import { newEncodeStats, type EncodeStats } from '../src/encode/copy-text.js';
import { encodeRecord, type Problem } from '../src/encode/record.js';
import { ROW_FULL, ROW_SLOW, writeRecordBytes } from '../src/encode/record-bytes.js';
import { isTimestampBytes, isTimestampText } from '../src/encode/values.js';
import { BytesRecord } from '../src/input/bytes-record.js';
import { parseEnvelope, type Parsed, type RecordEnvelope } from '../src/input/envelope.js';
import { rawMemberSpans, scanEnvelopeBytes } from '../src/input/envelope-bytes.js';
import { BytesLine, type Line } from '../src/input/lines.js';
import { bytesLines, DEF, mutate, random, SEEDS, TS } from './support/envelope-lines.js';

// The byte path (lines kept as bytes, envelope-bytes.ts, record-bytes.ts)
// must land exactly what the text path lands: for every line, the same
// reject or the same COPY bytes, the same problems and the same counts of
// stripped NULs and replaced surrogates.

const CONTACTS = commonObject('crm_contacts')!;
const DATA_ONLY: ObjectDef = { ...DEF, columns: DEF.columns.filter((c) => c.source.from === 'data') };
const DEFS = [DEF, DATA_ONLY, CONTACTS];

/** Lines that reach each case of the byte encoder. */
const EXTRA: string[] = [
  `{"id":"t","last_modified_at":"${TS}","data":{"text":"a\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti","jsonb":{"s":"a\\"b\\\\c\\/\\b\\f\\n\\r\\t"},"list":["\\u0041\\u00e9\\u20ac\\ud83d\\ude00"]}}`,
  `{"id":"u","last_modified_at":"${TS}","data":{"text":"\\u0000\\u005c\\u0009\\u000a\\u000d\\u0008\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff","jsonb":{"\\u0000":"\\u005c\\u0022\\u0000"}}}`,
  `{"id":"s","last_modified_at":"${TS}","data":{"text":"\\ud800\\udc00\\ud800\\ud800\\udc00\\udc00x\\ud800","jsonb":["\\uDBFF\\uDFFF","\\uDC00\\uD800","\\ud800\\\\udc00"]},"raw_data":{"s":"\\ud800"}}`,
  `{"id":"w","last_modified_at":"${TS}","raw_data":{\t"a" :\r\n[1,\t2]},"data":{"jsonb":[ 1 ,\t{"b":"c\\\\"} ],"list":[\n]}}`,
  `{"id":"n","last_modified_at":"${TS}","data":{"text":"","timestamptz":"","date":"","boolean":"","jsonb":null,"list":null,"bigint":null}}`,
  `{"id":"ts","last_modified_at":"2026-01-15 10:30:00+01","data":{"timestamptz":"2026-02-29T10:30:00Z","date":"2024-02-29","boolean":true,"text":true}}`,
  `{"id":"e","last_modified_at":"${TS}","raw_data":{"a":1e1000,"b":"e12345"},"data":{"jsonb":{"n":1E-1000},"list":[1e9999],"text":"e1234"}}`,
  `{"id":"\\u00e9\\t\\\\","last_modified_at":"2026-01-15T10:30:0\\u0030Z","data":{"text":"éé"}}`,
  `{"id":"cjk","last_modified_at":"${TS}","data":{"text":"日本語","first_name":"日本","last_name":"𝄞𝄞𝄞"}}`,
  `{"id":"wide","last_modified_at":"${TS}","data":{${Array.from({ length: 400 }, (_, k) => `"text${k}":"v${k}"`).join(',')},"text":"x"}}`,
  `{"id":"k","last_modified_at":"${TS}","data":{"t\\u0065xt":"escaped name"}}`,
  `{"id":"x","last_modified_at":"${TS}","data":{"jsonb":{"long":"${'x'.repeat(17000)}"},"list":[${'1,'.repeat(9000)}1]},"raw_data":[${'9'.repeat(17000)}]}`,
  `{"id":"raw only","last_modified_at":"${TS}","raw_data":{"text":"r","bigint":1,"obj":{}}}`,
  `{"id":"bad data","last_modified_at":"${TS}","data":[1]}`,
  `{"id":"str data","last_modified_at":"${TS}","data":"x"}`,
  `{"id":7,"last_modified_at":"${TS}","data":{"text":1.50,"boolean":"TRUE","bigint":"12","numeric":-0.0,"double precision":1e5}}`,
  // raw_data without data, as pgland read writes a row: typed columns from raw_data's members, as the parsed path lands them.
  `{"id":"r1","last_modified_at":"${TS}","raw_data":{"text":"a\\tb\\u00e9","boolean":true,"bigint":1.0,"numeric":1.50,"double precision":1e5,"timestamptz":"2026-01-15T10:30:00+00:00","date":"","jsonb":[{"a": 1, "b": "c\\\\"}],"obj":{"k": "v\\u0000\\ud800"}}}`,
  `{"id":"r2","last_modified_at":"${TS}","raw_data":{"text":1.50,"jsonb":"str","obj":[1],"boolean":"TRUE","bigint":"12","numeric":"x","double precision":-0,"timestamptz":"2026-02-30","date":"2024-02-29"}}`,
  `{"id":"r3","last_modified_at":"${TS}","raw_data":{"text":12345678901234567890,"numeric":1.10000000000000000000001,"bigint":12345678901234567890,"double precision":1e-400,"jsonb":{"n":1e1000},"obj":{"m":1E+400}}}`,
  `{"id":"r4","last_modified_at":"${TS}","raw_data":{"t\\u0065xt":"escaped name","text":"plain"}}`,
  `{"id":"r5","last_modified_at":"${TS}","raw_data":{"text":"a"},"raw_data":[1],"is_deleted":true}`,
  `{"id":"r6","last_modified_at":"${TS}","raw_data":[1],"raw_data":{"text":"b","text":"c","obj":{}}}`,
  `{"id":"r7","last_modified_at":"${TS}","raw_data":{"text":"r","bigint":1.0,"numeric":1.50,"jsonb":"s"},"data":{"text":"d"}}`,
  `{"id":"r8","last_modified_at":"${TS}","raw_data": {\t"text" : "x" ,\r"jsonb" : [ 1 ,\t2 ] , "boolean" : false } }`,
  `{"id":"r9","last_modified_at":"${TS}","raw_data":{"__proto__":{"x":1},"obj":{"__proto__":1},"constructor":"c","text":"\\u65e5本"}}`,
  // Rows the byte path leaves to encodeRecord (an escaped name in data), their raw_data members read from the bytes.
  `{"id":"r11","last_modified_at":"${TS}","data":{"t\\u0065xt":"d"},"raw_data":{"bo\\u006flean":true,"text":"r","bigint":1.0,"text":"last"}}`,
  `{"id":"r12","last_modified_at":"${TS}","data":{"t\\u0065xt":"d"},"raw_data":{"text":"r\\n","numeric":1.50,"obj":{"a":[1]},"jsonb":"s"}}`,
  `{"id":"r10","last_modified_at":"${TS}","raw_data":{"jsonb":{"long":"${'y'.repeat(17000)}"},"text":"${'z'.repeat(3000)}"},"data":null}`,
];

/** Byte-level damage the text mutations cannot make: invalid UTF-8, raw NUL and control bytes. */
const BYTE_PIECES = [[0x80], [0xc3], [0xff], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf], [0x00], [0x0d], [0x1f], [0xe2, 0x82]];

function mutateBytes(line: Buffer, rnd: () => number): Buffer {
  const piece = Buffer.from(BYTE_PIECES[Math.floor(rnd() * BYTE_PIECES.length)]!);
  const at = Math.floor(rnd() * (line.length + 1));
  return Buffer.concat([line.subarray(0, at), piece, line.subarray(at)]);
}

interface Landed {
  row?: string;
  reject?: unknown;
  problems: Problem[];
  stats: unknown;
}

/** The text path, as before: the line decoded, scanned as text, encoded as a string, written as UTF-8. */
function textPath(line: Line, def: ObjectDef): Landed {
  const parsed = parseEnvelope({ lineNumber: line.lineNumber, text: line.text });
  return landed(parsed, (record, stats, problems) => Buffer.from(encodeRecord(record, def, stats, problems, `${record.lineNumber}\t`)));
}

/** The byte path, as copy-writer.ts takes it. */
function bytesPath(line: Line, def: ObjectDef, seen: { bytes: number; slow: number; rawOnly: number }): Landed {
  return landed(parseEnvelope(line), (record, stats, problems) => {
    const lead = `${record.lineNumber}\t`;
    if (record instanceof BytesRecord) {
      // Room for any row: a field taken the slow way needs room for 3 bytes a character besides the reserve.
      const out = Buffer.alloc(8 * record.lineBytes + 4096);
      const end = writeRecordBytes(record, def, stats, problems, lead, out, 0);
      if (end >= 0) {
        seen.bytes++;
        if (record.scan.members === undefined && record.scan.rawMembers !== undefined && def.columns.some((c) => c.source.from === 'raw_data')) seen.rawOnly++;
        return out.subarray(0, end);
      }
      expect(end).toBe(ROW_SLOW);
      seen.slow++;
    }
    return Buffer.from(encodeRecord(record, def, stats, problems, lead));
  });
}

function landed(parsed: Parsed, encode: (record: RecordEnvelope, stats: EncodeStats, problems: Problem[]) => Buffer): Landed {
  const stats = newEncodeStats();
  const problems: Problem[] = [];
  if ('reject' in parsed) return { reject: parsed.reject, problems, stats };
  const row = encode(parsed.record, stats, problems);
  return { row: row.toString('latin1'), problems, stats };
}

describe('the byte path against the text path', () => {
  it('lands byte-identical rows, rejects, problems and counts on seeds and thousands of mutated lines', async () => {
    const rnd = random(22);
    const texts = [...SEEDS, ...EXTRA];
    const inputs: Buffer[] = [];
    for (let n = 0; n < 12_000; n++) {
      const text = n < texts.length ? texts[n]! : mutate(texts[n % texts.length]!, rnd);
      let bytes: Buffer = Buffer.from(text.replace(/\n/g, '\\n'), 'utf8');
      if (n % 4 === 3) bytes = mutateBytes(bytes, rnd);
      inputs.push(bytes, Buffer.from(n % 7 === 0 ? '\r\n' : '\n'));
    }
    const lines = await bytesLines(Buffer.concat(inputs));
    const seen = { bytes: 0, slow: 0, rawOnly: 0, lines: 0, invalidUtf8: 0, rejects: 0 };
    for (const line of lines) {
      seen.lines++;
      if (line instanceof BytesLine && !line.utf8) seen.invalidUtf8++;
      for (const def of DEFS) {
        const a = textPath(line, def);
        const b = bytesPath(line, def, seen);
        expect(b, line.text).toEqual(a);
        if (a.reject && def === DEF) seen.rejects++;
      }
    }
    // Every kind of line is reached: rows the byte path wrote (raw_data only among them), rows it left to the text path, rejects, invalid UTF-8.
    expect(seen.lines).toBeGreaterThan(11_000);
    expect(seen.bytes).toBeGreaterThan(3_000);
    // Rows with typed columns from raw_data and no data (a read's output) are written by the byte path too.
    expect(seen.rawOnly).toBeGreaterThan(200);
    expect(seen.slow).toBeGreaterThan(100);
    expect(seen.rejects).toBeGreaterThan(1_000);
    expect(seen.invalidUtf8).toBeGreaterThan(500);
  });

  it('counts a NUL stripped and a surrogate replaced as the text path does', async () => {
    const [line] = await bytesLines(Buffer.from(`{"id":"a","last_modified_at":"${TS}","data":{"text":"a\\u0000b\\udc00","jsonb":["\\u0000","\\ud800"]}}\n`));
    const b = bytesPath(line!, DATA_ONLY, { bytes: 0, slow: 0, rawOnly: 0 });
    expect(b.stats).toEqual({ nulStripped: 2, surrogatesReplaced: 2 });
    expect(b.row).toContain('\tab\uFFFD'.replace('\uFFFD', '\xef\xbf\xbd'));
    expect(b).toEqual(textPath(line!, DATA_ONLY));
  });

  it('reads an invalid UTF-8 line from its text, with U+FFFD as before', async () => {
    const bytes = Buffer.concat([Buffer.from(`{"id":"a","last_modified_at":"${TS}","data":{"text":"a`), Buffer.from([0xff, 0xc3]), Buffer.from('"}}\n')]);
    const [line] = await bytesLines(bytes);
    expect(line).toBeInstanceOf(BytesLine);
    expect((line as BytesLine).utf8).toBe(false);
    const parsed = parseEnvelope(line!);
    if (!('record' in parsed)) throw new Error('expected a record');
    expect(parsed.record).not.toBeInstanceOf(BytesRecord);
    expect(bytesPath(line!, DATA_ONLY, { bytes: 0, slow: 0, rawOnly: 0 }).row).toContain('a\xef\xbf\xbd\xef\xbf\xbd');
  });

  it('writes nothing and counts nothing when the chunk has no room', async () => {
    const [line] = await bytesLines(Buffer.from(`{"id":"a","last_modified_at":"${TS}","data":{"text":"\\u0000","bigint":"x"}}\n`));
    const parsed = parseEnvelope(line!);
    if (!('record' in parsed) || !(parsed.record instanceof BytesRecord)) throw new Error('expected a record read as bytes');
    const stats = newEncodeStats();
    const problems: Problem[] = [];
    const out = Buffer.alloc(64);
    expect(writeRecordBytes(parsed.record, DATA_ONLY, stats, problems, '1\t', out, 0)).toBe(ROW_FULL);
    expect(writeRecordBytes(parsed.record, DATA_ONLY, stats, problems, '1\t', Buffer.alloc(4096), 4000)).toBe(ROW_FULL);
    expect(stats).toEqual(newEncodeStats());
    expect(problems).toEqual([]);
    const end = writeRecordBytes(parsed.record, DATA_ONLY, stats, problems, '1\t', Buffer.alloc(4096), 0);
    expect(end).toBeGreaterThan(0);
    expect(stats.nulStripped).toBe(1);
    expect(problems.map((p) => p.column)).toEqual(['d_bigint']);
  });
});

describe('isTimestampBytes', () => {
  it('answers as isTimestampText on valid, edge and mutated timestamps', () => {
    const rnd = random(23);
    const seeds = [
      TS,
      '2026-01-15T10:30:00.123456789Z',
      '2024-02-29T23:59:59Z',
      '2023-02-29T00:00:00Z',
      '0000-01-01T00:00:00Z',
      '2026-12-28T00:00:60Z',
      '2026-01-15T10:30:00.Z',
      '2026-01-15T10:30:00.1234567890Z',
      '2026-01-15 10:30:00+01:00',
      '2026-01-15t10:30:00z',
      '2026-01-31T24:00:00Z',
      // Offsets, as pgland read writes them.
      '2026-01-15T10:30:00+00:00',
      '2026-12-03T14:16:20.079767+00:00',
      '2026-01-15T10:30:00.123456789-15:59',
      '2026-01-15T10:30:00+16:00',
      '2026-01-15T10:30:00+01:60',
      '2026-01-15T10:30:00.+01:00',
      '2026-01-15T10:30:00.1234567890+01:00',
      '2026-01-15T10:30:00+0100',
      '2026-01-15T10:30:00+01',
      '2026-01-15T10:30:00Z+01:00',
      '2026-02-29T10:30:00+05:30',
      // The 29th to the 31st, checked on the bytes against each month's length.
      '1900-02-29T00:00:00Z',
      '2000-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-04-30T23:59:59.5Z',
      '2026-12-31T23:59:59+05:30',
      '2026-01-32T00:00:00Z',
      '2026-06-00T00:00:00Z',
    ];
    const chars = '0123456789-:.TZtz +';
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      let t = seeds[n % seeds.length]!;
      if (n >= seeds.length) {
        const at = Math.floor(rnd() * t.length);
        const c = chars[Math.floor(rnd() * chars.length)]!;
        t = rnd() < 0.7 ? t.slice(0, at) + c + t.slice(at + 1) : rnd() < 0.5 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + c + t.slice(at);
      }
      const b = Buffer.from('"' + t + '"', 'latin1');
      expect(isTimestampBytes(b, 1, b.length - 1), t).toBe(isTimestampText(t));
      if (isTimestampText(t)) fast++;
    }
    expect(fast).toBeGreaterThan(2_000);
  });
});

describe("raw_data's members, found only when asked for", () => {
  // The scan finds data's members as it checks them; raw_data's cost a tenth
  // of the scan and most inputs never ask for them (rawMemberSpans).
  const payload = '{"Email":"a@b.example","Name":"A \\"B\\"","n":[1,{"x":2}], "e":"\\u00e9"}';
  const line = Buffer.from(`{"id":"1","last_modified_at":"${TS}","raw_data":${payload},"data":${payload}}`);
  it('are not looked for by the scan, and are the spans data has for the same text when asked for', () => {
    const scan = scanEnvelopeBytes(line, 0, line.length)!;
    expect(scan.rawScanned).toBe(false);
    expect(scan.rawMembers).toBeUndefined();
    const shift = scan.dataStart - scan.rawStart;
    const spans = rawMemberSpans(line, scan)!;
    expect(spans.map((v, i) => (i % 5 === 4 ? v : v + shift))).toEqual(scan.members);
    expect(scan.rawEscapedNames).toBe(false);
    expect(rawMemberSpans(line, scan)).toBe(spans);
  });
  it("are found in the scan's own pass when the run asks for them, the same spans", () => {
    const eager = scanEnvelopeBytes(line, 0, line.length, true)!;
    expect(eager.rawScanned).toBe(true);
    expect(eager.rawMembers).toEqual(rawMemberSpans(line, scanEnvelopeBytes(line, 0, line.length)!));
  });
  it('are none when raw_data is not an object', () => {
    const other = Buffer.from(`{"id":"1","last_modified_at":"${TS}","raw_data":[1,2]}`);
    const scan = scanEnvelopeBytes(other, 0, other.length)!;
    expect(rawMemberSpans(other, scan)).toBeUndefined();
    expect(scan.rawScanned).toBe(true);
  });
});
