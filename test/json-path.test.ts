import { describe, expect, it } from 'vitest';
import type { RecordEnvelope } from '../src/input/envelope.js';
import { elementText, pathText } from '../src/into/json-path.js';
import { evaluate, parseExpr } from '../src/into/mapping.js';

// pathText follows a mapping path in JSON text as sent: it must find what
// following the same path in JSON.parse of the text finds (own members, the
// last of duplicates, elements by index), and nothing outside the value.

/** The reference: mapping.ts's evaluate() of the path over the parsed value (as raw_data of a record). */
function walk(value: unknown, steps: readonly (string | number)[]): unknown {
  const text = 'raw_data' + steps.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
  return evaluate(parseExpr(text), { rawData: value } as RecordEnvelope);
}

const TEXTS = [
  '{"a":{"b":[1,{"c":"x\\"y"},null]},"s":"{\\"a\\": 1}","n":1.10000000000000000000001}',
  ' { "a" : [ "\\u00e9\\n" , { "b" : "t\\tab" } , [ ] , { } ] , "a" : { "b" : "last" } } ',
  '{"k\\u0065y":"escaped name","key":"plain","__proto__":{"x":"own"},"constructor":1}',
  '[ "zero" , { "one" : [ true , false ] } , "\\ud83d\\ude00" , -0.0e-0 ]',
  '{"nested":{"deep":{"deeper":{"deepest":["]","}","\\\\",",",":"]}}}}',
  '"a string, not an object"',
  '12345678901234567890',
  'null',
];

const PATHS: (string | number)[][] = [
  [],
  ['a'],
  ['a', 'b'],
  ['a', 'b', 1, 'c'],
  ['a', 'b', 2],
  ['a', 'b', 3],
  ['a', 0],
  ['a', 1, 'b'],
  ['a', 2, 0],
  ['s', 'a'],
  ['n'],
  ['key'],
  ['__proto__', 'x'],
  ['constructor'],
  ['toString'],
  [0],
  [1, 'one', 1],
  [2],
  [3],
  [4],
  ['nested', 'deep', 'deeper', 'deepest', 4],
  ['nested', 'deep', 'deeper', 'deepest', 5],
  ['length'],
  [0, 'length'],
];

describe('a mapping path followed in JSON text as sent', () => {
  it('finds what following the path in the parsed value finds, and nothing else', () => {
    for (const text of TEXTS) {
      const parsed: unknown = JSON.parse(text);
      for (const path of PATHS) {
        const found = pathText(text.trim(), path);
        const expected = walk(parsed, path);
        expect(found === undefined ? undefined : JSON.parse(found), `${JSON.stringify(path)} in ${text}`).toEqual(expected);
      }
    }
  });

  it('keeps the text as sent: escapes, unicode and every digit', () => {
    expect(pathText('{"a":[{"b":"\\u00e9\\"q\\\\"}]}', ['a', 0, 'b'])).toBe('"\\u00e9\\"q\\\\"');
    expect(pathText('{"n":[12345678901234567890, 1.10000000000000000000001]}', ['n', 1])).toBe('1.10000000000000000000001');
    expect(pathText('{"o":{ "x" : [ 1 , 2 ] }}', ['o', 'x'])).toBe('[ 1 , 2 ]');
    expect(elementText('[ "😀" , "é" ]', 1)).toBe('"é"');
  });

  it('does not find a name written inside a string value', () => {
    expect(pathText('{"note":"{\\"email\\":\\"x\\"}","inner":{"other":1}}', ['inner', 'email'])).toBeUndefined();
    expect(pathText('{"note":"{\\"email\\":\\"x\\"}"}', ['note', 'email'])).toBeUndefined();
    expect(elementText('["a,b", "c"]', 1)).toBe('"c"');
    expect(elementText('[]', 0)).toBeUndefined();
  });
});
