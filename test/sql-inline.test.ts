import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inlineParams } from '../src/sql/inline.js';
import { beginWith } from '../src/sql/transaction.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await freshDatabase('sql_inline');
  client = new pg.Client(db.url);
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await db?.drop();
});

// Values a run writes into SQL text (run ids, tenants, error messages): hostile ones.
const HOSTILE = ["it's", 'back\\slash', "\\' OR 1=1 --", '$1 $2 $10', "E'x'", '"; DROP TABLE x; --', 'ünïcode ✓', '', ' '];

describe('values written into SQL text (inlineParams)', () => {
  it('mean what they meant as parameters, hostile strings included', async () => {
    for (const v of HOSTILE) {
      const q = {
        text: "SELECT $1::text AS t, $2::int AS n, $3::boolean AS b, $4 * interval '1 millisecond' AS i, $5::text AS z",
        values: [v, 42, true, 1500, null],
      };
      const inlined = await client.query(inlineParams(q));
      const bound = await client.query(q);
      expect(inlined.rows).toEqual(bound.rows);
      expect(inlined.rows[0].t).toBe(v);
    }
  });

  it('keep the literal form whatever standard_conforming_strings says', async () => {
    await client.query('SET standard_conforming_strings = off');
    try {
      const { rows } = await client.query(inlineParams({ text: 'SELECT $1::text AS t', values: ["a\\b'c"] }));
      expect(rows[0].t).toBe("a\\b'c");
    } finally {
      await client.query('RESET standard_conforming_strings');
    }
  });

  it('refuse what cannot be written: NUL, arrays, objects, NaN', () => {
    expect(() => inlineParams({ text: 'SELECT $1', values: ['a\0b'] })).toThrow(/NUL/);
    expect(() => inlineParams({ text: 'SELECT $1', values: [['a']] })).toThrow(/\$1 cannot be written/);
    expect(() => inlineParams({ text: 'SELECT $1', values: [{ a: 1 }] })).toThrow(/cannot be written/);
    expect(() => inlineParams({ text: 'SELECT $1', values: [Number.NaN] })).toThrow(/cannot be written/);
  });

  it('beginWith opens the transaction and answers the statement sent with BEGIN; a failure leaves it to roll back', async () => {
    const r = await beginWith<{ n: number }>(client, 'SELECT 7 AS n');
    expect(r.rows).toEqual([{ n: 7 }]);
    await client.query('SAVEPOINT inside'); // refused outside a transaction block
    await client.query('ROLLBACK');
    await expect(client.query('SAVEPOINT outside')).rejects.toThrow(/transaction block/);
    await expect(beginWith(client, 'SELECT 1/0')).rejects.toThrow(/division by zero/);
    await expect(client.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
    await client.query('ROLLBACK');
  });
});
