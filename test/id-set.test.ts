import { describe, expect, it } from 'vitest';
import { IdSet } from '../src/load/id-set.js';

describe('IdSet: whether a batch repeats an id (issue 8)', () => {
  it('tells 200,000 distinct ids apart, and sees every one of them again', () => {
    const ids = new IdSet(200_000);
    const all = Array.from({ length: 200_000 }, (_, i) => `003C${String(i).padStart(8, '0')}`);
    expect(all.filter((id) => ids.addRepeats(id))).toEqual([]);
    expect(all.every((id) => ids.addRepeats(id))).toBe(true);
  });

  it('starts empty again after clear(), and ids that differ in one character or in case are distinct', () => {
    const ids = new IdSet(10);
    for (const id of ['a', 'b', 'ab', 'ba', 'A', 'é', 'e\u0301', '']) expect(ids.addRepeats(id)).toBe(false);
    expect(ids.addRepeats('ab')).toBe(true);
    ids.clear();
    expect(ids.addRepeats('ab')).toBe(false);
  });

  it('answers "repeats" once it is full: the merge then sorts, which is always correct', () => {
    const ids = new IdSet(10); // 1,024 slots, half of them usable
    let repeats = 0;
    for (let i = 0; i < 600; i++) if (ids.addRepeats(`id-${i}`)) repeats++;
    expect(repeats).toBe(600 - 512);
  });
});
