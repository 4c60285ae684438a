import { contact } from '../../bench/generate.js';
import type { ObjectDef } from '../../src/catalog/definition.js';
import { MAX_JSON_DEPTH } from '../../src/encode/values.js';
import { readLineChunks, type Line } from '../../src/input/lines.js';

/** Lines for the tests of the envelope scans (envelope-scan, envelope-bytes): seeds, and mutations of them. */

export const TS = '2026-01-15T10:30:00Z';

/** Every column type, from data and from raw_data. */
export const DEF: ObjectDef = {
  kind: 'custom',
  object: 'scan',
  table: 'scan',
  version: 1,
  columns: [
    ...(['text', 'boolean', 'bigint', 'numeric', 'double precision', 'timestamptz', 'date', 'jsonb'] as const).flatMap((type) => [
      { name: `d_${type}`, type, source: { from: 'data' as const, key: type } },
      { name: `r_${type}`, type, source: { from: 'raw_data' as const, key: type } },
    ]),
    { name: 'd_list', type: 'jsonb', shape: 'array', source: { from: 'data', key: 'list' } },
    { name: 'r_obj', type: 'jsonb', shape: 'object', source: { from: 'raw_data', key: 'obj' } },
  ],
};

export const SEEDS: string[] = [
  JSON.stringify(contact(1)),
  JSON.stringify(contact(7, 2)),
  JSON.stringify(contact(3, 1, 2300)),
  JSON.stringify(contact(99, 1, 2300)),
  `{"id":"a","last_modified_at":"${TS}","raw_data":{"text":"x\\ty","bigint":12345678901234567890,"numeric":1.50,"double precision":-0,"boolean":"TRUE","obj":{"a":[1,2,{"b":null}]}},"data":{"text":42,"bigint":"-9223372036854775808","numeric":"1e5","timestamptz":"2026-02-30","date":"2026-01-15","jsonb":"str","list":{"not":"a list"},"boolean":false}}`,
  `{"id":12,"last_modified_at":"${TS}","is_deleted":true,"raw_data":[1,"two",{"3":4}],"data":{"jsonb":{"k":"\\u0000\\ud800\\ud83d\\ude00"},"list":[ "a" , 1e400 ]}}`,
  ` { "id" : "s p a c e" , "last_modified_at" : "${TS}" , "data" : { "text" : "\\u00e9\\n" , "list" : [ ] } , "raw_data" : { } } `,
  `{"id":"dup","id":"dup2","last_modified_at":"${TS}","data":{"text":"first","text":"second"},"data":{"text":"third"},"raw_data":{"text":"a","text":"b"}}`,
  `{"i\\u0064":"escaped-key","last_modified_at":"${TS}","d\\u0061ta":{"t\\u0065xt":"v"},"raw_data":"just text"}`,
  `{"id":"nulls","last_modified_at":"${TS}","is_deleted":null,"raw_data":null,"data":null}`,
  `{"id":"\\u0000nul","last_modified_at":"${TS}"}`,
  `{"problem":"the sender says why","last_modified_at":"${TS}"}`,
  `{"id":"deep","last_modified_at":"${TS}","raw_data":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}`,
  `{"id":"too deep","last_modified_at":"${TS}","raw_data":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`,
  `{"id":"big","last_modified_at":"${TS}","raw_data":{"e":1E+400,"n":-0.0e-0,"f":0.1,"g":1e-400},"data":{"numeric":1.10000000000000000000001,"double precision":1e-400,"text":12345678901234567890}}`,
  `{"id":"proto","last_modified_at":"${TS}","data":{"__proto__":{"x":1},"text":"t"},"raw_data":{"__proto__":"p","constructor":"c"}}`,
  `{"id":"lone \ud800 surrogate","last_modified_at":"${TS}","raw_data":{"text":"\udc00"}}`,
];

/** A deterministic pseudo-random generator (mulberry32). */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const PIECES = [
  '"',
  '\\',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  ' ',
  '\t',
  '\n',
  '\u0000',
  '\u001f',
  '0',
  '1',
  '9',
  '-',
  '+',
  '.',
  'e',
  'E',
  'u',
  't',
  'f',
  'n',
  'true',
  'null',
  '\\u',
  '\\u00',
  'é',
  '\ud800',
  '\u2028',
  'x',
  '00',
  '"a":1',
  ',,',
];

export function mutate(text: string, rnd: () => number): string {
  let t = text;
  const edits = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(rnd() * (t.length + 1));
    const op = rnd();
    const piece = PIECES[Math.floor(rnd() * PIECES.length)]!;
    if (op < 0.35) t = t.slice(0, at) + t.slice(at + 1);
    else if (op < 0.7) t = t.slice(0, at) + piece + t.slice(at);
    else t = t.slice(0, at) + piece + t.slice(at + piece.length);
  }
  return t;
}

/** The lines of one input, read as the loader reads them (as bytes). */
export async function bytesLines(input: Buffer): Promise<Line[]> {
  const out: Line[] = [];
  async function* once(): AsyncGenerator<Buffer> {
    yield input;
  }
  for await (const lines of readLineChunks(once(), { bytes: true })) out.push(...lines);
  return out;
}
