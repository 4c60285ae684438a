import { describe, expect, it } from 'vitest';
import { CopyRowWriter, writeIsoVersion } from '../src/read/copy-json.js';
import type { ColumnKind, SourceColumn } from '../src/read/describe.js';
import { JsonLines } from '../src/read/json-lines.js';
import { versionOf, versionSpec } from '../src/read/output.js';
import { random } from './support/envelope-lines.js';

// Issue 17: the bytes a read writes from COPY's text, without the server and
// without a string per value: each value exactly what JSON.stringify (for
// text) and versionOf (for last_modified_at) give, wherever the bytes to
// escape fall and whichever buffer the line is read from.

const READ_START = new Date('2026-02-01T00:00:00Z');

function column(name: string, kind: ColumnKind): SourceColumn {
  return { name, typeOid: 0, typeName: kind, kind, serverJson: false };
}

/** A value as COPY's text format sends it. */
function copyText(v: string): string {
  return v.replace(/[\\\t\n\r\b\f\v]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v' })[c]!);
}

const PIECES = [
  'a',
  'plain text of some length',
  '"',
  '\\',
  '\t',
  '\n',
  '\r',
  '\b',
  '\f',
  '\v',
  '\u0001',
  '\u001f',
  '\u007f',
  'é',
  '日本',
  '😀',
  '\u2028',
  '\\N',
  ' ',
];

describe('CopyRowWriter: text columns (issue 17)', () => {
  it('writes every text value as JSON.stringify does, from the chunk and from a copy of the line', () => {
    const columns = [column('a', 'string'), column('b', 'string'), column('j', 'json'), column('c', 'string')];
    const writer = new CopyRowWriter(columns, columns.length);
    const rnd = random(17);
    for (let n = 0; n < 3000; n++) {
      const value = (): string => Array.from({ length: Math.floor(rnd() * 6) }, () => PIECES[Math.floor(rnd() * PIECES.length)]!).join('');
      const row = { a: value(), b: value(), j: { k: value() }, c: value() };
      const fields = [row.a, row.b, JSON.stringify(row.j), row.c].map(copyText);
      // Lines before and after, so that a search past the line's end would find their bytes.
      const text = `x\\\\y\t"\n${fields.join('\t')}\n"\t\\\\\n`;
      const src = Buffer.from(text);
      const s = Buffer.byteLength(`x\\\\y\t"\n`);
      const e = src.indexOf(0x0a, s);
      expect(writer.split(src, s, e)).toBe(true);
      const out = Buffer.alloc(4096);
      const direct = out.toString('utf8', 0, writer.writeObject(src, out, 0));
      expect(JSON.parse(direct), text).toEqual(row);
      expect(direct).toBe(JSON.stringify(row));
      // As JsonLines reads it: the line copied to the end of its output buffer, a backslash after it.
      const at = out.length - (e - s) - 1;
      src.copy(out, at, s, e);
      out[at + e - s] = 0x5c;
      writer.moveLine(at);
      expect(out.toString('utf8', 0, writer.writeObject(out, out, 0))).toBe(direct);
      expect(writer.text(out, 3)).toBe(row.c);
    }
  });

  it('reads a NULL as null, and \\N inside a text as text', () => {
    const writer = new CopyRowWriter([column('a', 'string'), column('b', 'string')], 2);
    const src = Buffer.from('\\N\t\\\\N');
    expect(writer.split(src, 0, src.length)).toBe(true);
    const out = Buffer.alloc(256);
    expect(out.toString('utf8', 0, writer.writeObject(src, out, 0))).toBe('{"a":null,"b":"\\\\N"}');
  });
});

/** last_modified_at as a read writes it: from the bytes when writeIsoVersion takes the form, else versionOf. */
function written(text: string, kind: ColumnKind): { bytes: boolean; value: string } {
  const src = Buffer.from(`\t${text}\t`);
  const out = Buffer.alloc(128);
  const end = writeIsoVersion(src, 1, src.length - 1, kind, out, 0);
  return end >= 0 ? { bytes: true, value: out.toString('latin1', 0, end) } : { bytes: false, value: versionOf(kind, READ_START)(text) };
}

describe('last_modified_at from a time cursor (issue 17)', () => {
  const TIMES: [ColumnKind, string, boolean][] = [
    // kind, the server's text, whether it is written from its bytes
    ['timestamptz', '2026-01-15 10:30:00+00', true],
    ['timestamptz', '2026-01-15 10:30:00.5+00', true],
    ['timestamptz', '2026-01-15 10:30:00.123456-03', true],
    ['timestamptz', '2026-01-15 10:30:00+05:30', true],
    ['timestamptz', '2026-01-15 10:30:00.25-09:30', true],
    ['timestamptz', '2026-01-15 10:30:00+15', true],
    ['timestamptz', '1899-12-31 23:38:50+05:21:10', false],
    ['timestamptz', '2026-01-15 10:30:00+16', false],
    ['timestamptz', '0044-03-15 10:00:00+00 BC', false],
    ['timestamptz', '12026-01-15 10:30:00+00', false],
    ['timestamptz', 'infinity', false],
    ['timestamptz', '-infinity', false],
    ['timestamp', '2026-01-15 10:30:00', true],
    ['timestamp', '2026-01-15 10:30:00.123456', true],
    ['timestamp', '0044-03-15 10:00:00 BC', false],
    ['timestamp', 'infinity', false],
    ['date', '2026-01-15', true],
    ['date', '2000-02-29', true],
    ['date', '0044-03-15 BC', false],
    ['date', '12026-01-15', false],
    ['date', '-infinity', false],
  ];

  it('is what versionOf gives for the same text, in the usual forms without a string', () => {
    for (const [kind, text, fromBytes] of TIMES) {
      const w = written(text, kind);
      expect(w, `${kind} ${text}`).toEqual({ bytes: fromBytes, value: versionOf(kind, READ_START)(text) });
    }
    // The usual forms are RFC 3339 times of their own, not the read's start.
    expect(written('2026-01-15 10:30:00+00', 'timestamptz').value).toBe('2026-01-15T10:30:00+00:00');
    expect(written('2026-01-15 10:30:00+05:30', 'timestamptz').value).toBe('2026-01-15T10:30:00+05:30');
    expect(written('0044-03-15 10:00:00+00 BC', 'timestamptz').value).toBe(READ_START.toISOString());
  });

  it('is written from the bytes only for a built-in time type', () => {
    expect(versionSpec(column('t', 'timestamptz'), 2, READ_START).kind).toBe('timestamptz');
    expect(versionSpec(column('n', 'integer'), 2, READ_START).kind).toBeUndefined();
    // A type named timestamptz in another schema: its text is its own, checked by versionOf.
    expect(versionSpec({ ...column('t', 'timestamptz'), serverJson: true }, 2, READ_START).kind).toBeUndefined();
  });

  it('JsonLines writes the envelope with it, and with versionOf for any other text', async () => {
    const columns = [column('id', 'string'), column('at', 'timestamptz')];
    const writer = new CopyRowWriter(columns, 2);
    const chunks: Buffer[] = [];
    const lines = new JsonLines(writer, 'ndjson', '"t"', 0, versionSpec(columns[1]!, 1, READ_START), (c) => void chunks.push(c));
    for (const text of ['k1\t2026-01-15 10:30:00+00', 'k"2\tinfinity', 'k3\t2026-01-15 10:30:00.5+05:30']) {
      const src = Buffer.from(`${text}\n`);
      expect(writer.split(src, 0, src.length - 1)).toBe(true);
      await lines.row(src);
    }
    await lines.flush();
    expect(Buffer.concat(chunks).toString()).toBe(
      [
        '{"id":"k1","last_modified_at":"2026-01-15T10:30:00+00:00","raw_data":{"id":"k1","at":"2026-01-15T10:30:00+00:00"}}',
        `{"id":"k\\"2","last_modified_at":"${READ_START.toISOString()}","raw_data":{"id":"k\\"2","at":"infinity"}}`,
        '{"id":"k3","last_modified_at":"2026-01-15T10:30:00.5+05:30","raw_data":{"id":"k3","at":"2026-01-15T10:30:00.5+05:30"}}',
        '',
      ].join('\n'),
    );
  });
});
