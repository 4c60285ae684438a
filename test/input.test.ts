import { describe, expect, it } from 'vitest';
import { MAX_ID_BYTES, parseEnvelope, type Parsed } from '../src/input/envelope.js';
import { readLineChunks, readLines, type Line } from '../src/input/lines.js';

async function* stream(chunks: (Buffer | string)[]): AsyncGenerator<Buffer | string> {
  yield* chunks;
}

async function collect(chunks: (Buffer | string)[]): Promise<Line[]> {
  const out: Line[] = [];
  for await (const line of readLines(stream(chunks))) out.push(line);
  return out;
}

/** Every possible cut of a buffer into two chunks. */
function allSplits(buf: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= buf.length; i++) out.push([buf.subarray(0, i), buf.subarray(i)]);
  return out;
}

describe('readLines (issue 2)', () => {
  it('keeps a multi-byte character whole when a chunk boundary cuts through it', async () => {
    const text = 'é€😀 line one\n{"name":"Zoë 🚀"}\n';
    const buf = Buffer.from(text, 'utf8');
    for (const chunks of allSplits(buf)) {
      expect(await collect(chunks)).toEqual([
        { lineNumber: 1, text: 'é€😀 line one' },
        { lineNumber: 2, text: '{"name":"Zoë 🚀"}' },
      ]);
    }
    // One byte at a time: every character is cut.
    const bytes = [...buf].map((b) => Buffer.from([b]));
    expect((await collect(bytes)).map((l) => l.text)).toEqual(['é€😀 line one', '{"name":"Zoë 🚀"}']);
  });

  it('drops the CR of CRLF line ends, also when CR and LF arrive in different chunks', async () => {
    expect(await collect(['a\r\nb\r\n'])).toEqual([
      { lineNumber: 1, text: 'a' },
      { lineNumber: 2, text: 'b' },
    ]);
    expect(await collect(['a\r', '\nb\r', '\n'])).toEqual([
      { lineNumber: 1, text: 'a' },
      { lineNumber: 2, text: 'b' },
    ]);
    // A CR inside a line is content.
    expect(await collect(['a\rb\n'])).toEqual([{ lineNumber: 1, text: 'a\rb' }]);
  });

  it('skips blank and whitespace-only lines but still counts them', async () => {
    expect(await collect(['\n\nfirst\n   \n\t\r\n\nsecond\n\n'])).toEqual([
      { lineNumber: 3, text: 'first' },
      { lineNumber: 7, text: 'second' },
    ]);
  });

  it('yields the last line when there is no trailing newline', async () => {
    expect(await collect(['one\ntw', 'o'])).toEqual([
      { lineNumber: 1, text: 'one' },
      { lineNumber: 2, text: 'two' },
    ]);
    expect(await collect(['only\r'])).toEqual([{ lineNumber: 1, text: 'only' }]);
  });

  it('yields nothing for empty input, and accepts strings as well as buffers', async () => {
    expect(await collect([])).toEqual([]);
    expect(await collect([''])).toEqual([]);
    expect(await collect([Buffer.from('x\n'), 'y\n', Buffer.alloc(0), 'z'])).toEqual([
      { lineNumber: 1, text: 'x' },
      { lineNumber: 2, text: 'y' },
      { lineNumber: 3, text: 'z' },
    ]);
  });

  it('numbers lines across many chunks as an editor would', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `{"n":${i + 1}}`);
    const buf = Buffer.from(lines.join('\n') + '\n');
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 7) chunks.push(buf.subarray(i, i + 7));
    const got = await collect(chunks);
    expect(got).toHaveLength(1000);
    for (const l of got) expect(JSON.parse(l.text)).toEqual({ n: l.lineNumber });
  });
});

describe('readLineChunks', () => {
  it('hands over the lines of a chunk together, a large chunk in pieces, numbered as one stream', async () => {
    // 3,000 lines in one Buffer, every tenth blank, the last without a newline, then a second chunk.
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 10 === 9 ? '' : `{"n":${i + 1}}`));
    const chunks: Line[][] = [];
    for await (const c of readLineChunks(stream([Buffer.from(lines.join('\n')), '\n{"n":3001}\n']))) chunks.push(c);
    expect(chunks.map((c) => c.length)).toEqual([1024, 1024, 652, 1]);
    const flat = chunks.flat();
    expect(flat.map((l) => l.lineNumber)).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1).filter((n) => n % 10 !== 0));
    expect(flat.every((l) => l.text === `{"n":${l.lineNumber}}`)).toBe(true);
  });
});

function parse(text: string, lineNumber = 5): Parsed {
  return parseEnvelope({ lineNumber, text });
}

function rejected(text: string): { reason: string; recordId: string | null; lineNumber: number; rawText: string } {
  const p = parse(text);
  if (!('reject' in p)) throw new Error(`expected a reject for ${text.slice(0, 80)}`);
  return p.reject;
}

const TS = '2026-01-15T10:30:00Z';

describe('parseEnvelope (issue 2)', () => {
  it('parses a full record', () => {
    const p = parse(JSON.stringify({ id: 'a1', last_modified_at: TS, is_deleted: true, raw_data: { Id: 'a1' }, data: { first_name: 'Ada' } }), 9);
    // raw_data and data are kept as sent (envelope-scan.ts), and parsed when asked for.
    expect(p).toMatchObject({
      record: {
        lineNumber: 9,
        id: 'a1',
        lastModifiedAt: TS,
        isDeleted: true,
        rawData: { Id: 'a1' },
        data: { first_name: 'Ada' },
        rawText: '{"Id":"a1"}',
        dataText: '{"first_name":"Ada"}',
      },
    });
  });

  it('keeps the texts of raw_data and data as sent when a number in the line may not survive JSON.parse (issue 22)', () => {
    const line = `{"id":"a1","last_modified_at":"${TS}","raw_data":{"n": 12345678901234567890, "s": "x"},"data":{"d": 1.10000000000000000000001}}`;
    expect(parse(line)).toMatchObject({ record: { rawText: '{"n": 12345678901234567890, "s": "x"}', dataText: '{"d": 1.10000000000000000000001}' } });
    expect(parse(`{"id":"a1","last_modified_at":"${TS}","raw_data":{"e": 1e400}}`)).toMatchObject({ record: { rawText: '{"e": 1e400}' } });
  });

  it('defaults is_deleted to false, raw_data to null and data to an empty object', () => {
    const p = parse(`{"id":"x","last_modified_at":"${TS}"}`);
    expect(p).toMatchObject({ record: { lineNumber: 5, id: 'x', lastModifiedAt: TS, isDeleted: false, rawData: null, data: {} } });
    expect(p).toHaveProperty('record.rawText', undefined);
    expect(p).toHaveProperty('record.dataText', undefined);
    expect(parse(`{"id":"x","last_modified_at":"${TS}","is_deleted":null,"raw_data":null,"data":null}`)).toMatchObject({
      record: { isDeleted: false, rawData: null, data: {} },
    });
  });

  it('accepts a numeric id as its decimal text', () => {
    expect(parse(`{"id":12345,"last_modified_at":"${TS}"}`)).toMatchObject({ record: { id: '12345' } });
    expect(parse(`{"id":0,"last_modified_at":"${TS}"}`)).toMatchObject({ record: { id: '0' } });
  });

  it('keeps any raw_data JSON value, not only objects', () => {
    expect(parse(`{"id":"x","last_modified_at":"${TS}","raw_data":[1,"two"]}`)).toMatchObject({ record: { rawData: [1, 'two'] } });
    expect(parse(`{"id":"x","last_modified_at":"${TS}","raw_data":"text"}`)).toMatchObject({ record: { rawData: 'text' } });
  });

  it('rejects invalid JSON, keeping the line and its number', () => {
    const r = rejected('{"id": "x", ');
    expect(r.reason).toMatch(/^invalid JSON: /);
    expect(r.lineNumber).toBe(5);
    expect(r.rawText).toBe('{"id": "x", ');
    expect(r.recordId).toBeNull();
  });

  it('rejects a line that is JSON but not an object', () => {
    for (const text of ['[1,2]', '"a string"', '42', 'null', 'true']) {
      expect(rejected(text).reason).toMatch(/must be a JSON object/);
    }
  });

  it('rejects a missing, empty or non-string id', () => {
    for (const id of [undefined, '', null, true, {}, ['a'], 1.5, 2 ** 60]) {
      const r = rejected(JSON.stringify({ id, last_modified_at: TS }));
      expect(r.reason).toMatch(/field "id" is missing or not a non-empty string/);
      expect(r.recordId).toBeNull();
    }
  });

  it('rejects an id longer than the limit in UTF-8 bytes', () => {
    expect(parse(JSON.stringify({ id: 'a'.repeat(MAX_ID_BYTES), last_modified_at: TS }))).toHaveProperty('record');
    // 512 two-byte characters are 1024 bytes; one more is over.
    expect(parse(JSON.stringify({ id: 'é'.repeat(MAX_ID_BYTES / 2), last_modified_at: TS }))).toHaveProperty('record');
    const r = rejected(JSON.stringify({ id: 'é'.repeat(MAX_ID_BYTES / 2 + 1), last_modified_at: TS }));
    expect(r.reason).toMatch(/longer than 1024 bytes/);
    expect(r.recordId).toBe('é'.repeat(200));
  });

  it('rejects an id with a NUL character, and keeps the id visible without the NUL', () => {
    const r = rejected(JSON.stringify({ id: 'ab\u0000c', last_modified_at: TS }));
    expect(r.reason).toMatch(/NUL/);
    expect(r.recordId).toBe('ab\\0c');
  });

  it('rejects a missing or invalid last_modified_at', () => {
    for (const lm of [undefined, null, '', 'yesterday', '2026-13-01T00:00:00Z', '2026-02-30', 1768473000, '2026-01-15T25:00:00Z']) {
      const r = rejected(JSON.stringify({ id: 'x', last_modified_at: lm }));
      expect(r.reason).toMatch(/field "last_modified_at" is missing or not an RFC 3339 timestamp/);
      expect(r.recordId).toBe('x');
    }
    for (const ok of ['2026-01-15', '2026-01-15T10:30:00.123456+02:00', '2026-01-15 10:30:00', '2026-01-15T10:30:00-0530']) {
      expect(parse(JSON.stringify({ id: 'x', last_modified_at: ok }))).toHaveProperty('record');
    }
  });

  it('rejects an is_deleted that is not a boolean', () => {
    for (const d of ['true', 1, 0, 'false', {}]) {
      const r = rejected(JSON.stringify({ id: 'x', last_modified_at: TS, is_deleted: d }));
      expect(r.reason).toMatch(/field "is_deleted" must be true or false/);
      expect(r.recordId).toBe('x');
    }
  });

  it('rejects a data that is not an object', () => {
    for (const data of [[], 'x', 3, true]) {
      const r = rejected(JSON.stringify({ id: 'x', last_modified_at: TS, data }));
      expect(r.reason).toMatch(/field "data" must be a JSON object/);
    }
  });

  it('keeps at most 64 KiB of a rejected line', () => {
    const long = '{"id": "x", "pad": "' + 'z'.repeat(100_000);
    const r = rejected(long);
    expect(r.rawText).toHaveLength(64 * 1024);
    expect(long.startsWith(r.rawText)).toBe(true);
  });
});
