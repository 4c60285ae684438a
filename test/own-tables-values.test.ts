import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, parseMapping, type Destination } from '../src/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { streamOf } from './support/records.js';

// Mapped values are read from the text each record was sent as (json-path.ts,
// mapping.ts's compile): these land what was sent, as the documentation says
// ("text as is; numbers as written"), through paths with escapes, unicode,
// duplicates and missing steps.

let db: TestDatabase;
let dest: Destination;

beforeAll(async () => {
  db = await freshDatabase('own_values');
  dest = await openDestination(db.config({ schema: 'pgland', batch_size: 3 }));
  await db.pool.query(`
    CREATE SCHEMA v;
    CREATE TABLE v.t (
      k text PRIMARY KEY,
      txt text, num numeric, big bigint, small int, dbl double precision,
      js jsonb, deep text, missing text, dflt text DEFAULT 'default kept'
    );
  `);
});
afterAll(async () => {
  await dest?.close();
  await db?.drop();
});

const TS = '2026-03-01T10:00:00Z';

async function load(lines: string[], maps: string[]): Promise<Record<string, unknown>[]> {
  const r = await dest.loadInto({ into: 'v.t', write: 'upsert', match: 'k', mappings: maps.map(parseMapping), input: streamOf(lines) });
  expect(r.error?.message).toBeUndefined();
  const { rows } = await db.pool.query(`SELECT * FROM v.t ORDER BY k`);
  await db.pool.query('TRUNCATE v.t');
  return rows;
}

describe('load --into: values read from the text as sent', () => {
  it('strings with escapes and unicode through nested paths, the last of duplicate names', async () => {
    const rows = await load(
      [
        `{"id":"1","last_modified_at":"${TS}","data":{"k":"a","list":[{"v":"first"},{"v":"tab\\there \\"quoted\\" back\\\\slash \\u00e9 \\ud83d\\ude00"}],"o":{"x":"one","x":"two"}}}`,
        `{"id":"2","last_modified_at":"${TS}","data":{"k":"b","list":[{"v":"ünïcödé 😀 line\\nbreak"}],"o":{"n\\u0061me":"escaped name","x":"x"}}}`,
      ],
      ['k=data.k', 'txt=data.list[1].v', 'deep=data.o.x', 'missing=data.o.name'],
    );
    expect(rows.map((r) => [r.k, r.txt, r.deep, r.missing])).toEqual([
      ['a', 'tab\there "quoted" back\\slash é 😀', 'two', null],
      ['b', null, 'x', 'escaped name'],
    ]);
  });

  it('numbers as written: every digit into text, numeric and bigint; 1.0 and 1e2 into an integer as 1 and 100', async () => {
    const rows = await load(
      [
        `{"id":"1","last_modified_at":"${TS}","data":{"k":"a","n":1.10000000000000000000001,"b":9007199254740993,"s":1.0,"d":0.1}}`,
        `{"id":"2","last_modified_at":"${TS}","data":{"k":"b","n":12345678901234567890.5,"b":-9223372036854775808,"s":1e2,"d":1e-5}}`,
      ],
      ['k=data.k', 'txt=data.n', 'num=data.n', 'big=data.b', 'small=data.s', 'dbl=data.d'],
    );
    expect(rows.map((r) => [r.k, r.txt, r.num, r.big, r.small, r.dbl])).toEqual([
      ['a', '1.10000000000000000000001', '1.10000000000000000000001', '9007199254740993', 1, 0.1],
      ['b', '12345678901234567890.5', '12345678901234567890.5', '-9223372036854775808', 100, 0.00001],
    ]);
  });

  it('a nested jsonb value lands as sent; a missing path is NULL and an unmapped column keeps its default', async () => {
    const rows = await load(
      [
        `{"id":"1","last_modified_at":"${TS}","data":{"k":"a","o":{"arr":[1, 12345678901234567890, {"z":"\\u00e9"}]}}}`,
        `{"id":"2","last_modified_at":"${TS}","data":{"k":"b","o":{"arr":null}}}`,
        `{"id":"3","last_modified_at":"${TS}","data":{"k":"c","o":"a string"}}`,
        `{"id":"4","last_modified_at":"${TS}","data":{"k":"d"}}`,
      ],
      ['k=data.k', 'js=data.o.arr', 'deep=data.o.arr[2].z', 'missing=data.o.arr[9]', 'txt=data.o.arr.length'],
    );
    const { rows: exact } = await db.pool.query(`SELECT '[1, 12345678901234567890, {"z": "é"}]'::jsonb AS j`);
    expect(rows.map((r) => [r.k, r.js, r.deep, r.missing, r.txt, r.dflt])).toEqual([
      ['a', exact[0].j, 'é', null, null, 'default kept'],
      ['b', null, null, null, null, 'default kept'],
      ['c', null, null, null, null, 'default kept'],
      ['d', null, null, null, null, 'default kept'],
    ]);
  });

  it('a path reaches nothing outside its value: not a name inside a string, not a prototype, not a neighbour', async () => {
    const rows = await load(
      [
        `{"id":"1","last_modified_at":"${TS}","raw_data":{"note":"{\\"secret\\":\\"x\\"}","secret":"raw"},"data":{"k":"a","note":"{\\"k\\":\\"evil\\"}","inner":{"y":1},"secret":"neighbour"}}`,
        `{"id":"2","last_modified_at":"${TS}","raw_data":[{"secret":"in raw array"}],"data":{"k":"b","inner":{"__proto__":{"polluted":"own"}}}}`,
      ],
      ['k=data.k', 'txt=data.note.k', 'deep=data.inner.secret', 'missing=raw_data.note.secret', 'js=data.inner.__proto__', 'dflt=raw_data[0].secret'],
    );
    expect(rows.map((r) => [r.k, r.txt, r.deep, r.missing, r.js, r.dflt])).toEqual([
      ['a', null, null, null, null, null],
      ['b', null, null, null, { polluted: 'own' }, 'in raw array'],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
