import { describe, expect, it } from 'vitest';
import type { ObjectDef } from '../src/catalog/definition.js';
import { mergeSql, type DeleteMode, type MergeOptions, type WriteMode } from '../src/merge/merge.js';
import { expectGolden, staleGolden } from './support/golden.js';

// Issue 16: the generated merge statement, whole, for every combination of
// write mode, delete mode, ignore-deletes and seen-tracking, so that a change
// to it shows in the diff of test/golden/merge/. PGLAND_UPDATE_GOLDEN=1
// rewrites them.

const DEAL: ObjectDef = {
  kind: 'custom',
  object: 'deal',
  table: 'hubspot_deal',
  version: 1,
  columns: [
    { name: 'amount', type: 'numeric', source: { from: 'raw_data', key: 'amount' } },
    { name: 'email', type: 'text', source: { from: 'raw_data', key: 'email' } },
    { name: 'stages', type: 'jsonb', shape: 'array', source: { from: 'raw_data', key: 'stages' } },
  ],
};

const base: MergeOptions = {
  schema: 'pgland',
  def: DEAL,
  provider: 'hubspot',
  customerId: 'acme',
  runId: '00000000-0000-0000-0000-000000000000',
  write: 'upsert',
  deleteMode: 'soft',
  ignoreDeletes: false,
  matchColumn: 'id',
  trackSeen: false,
};

interface Case {
  name: string;
  options: MergeOptions;
}

/** Every combination a run can ask for: a full refresh (seen-tracking) takes upsert or insert only. */
function cases(): Case[] {
  const list: Case[] = [];
  for (const write of ['upsert', 'insert', 'update', 'delete'] as WriteMode[]) {
    for (const deleteMode of ['soft', 'hard'] as DeleteMode[]) {
      for (const ignoreDeletes of [false, true]) {
        for (const trackSeen of write === 'upsert' || write === 'insert' ? [false, true] : [false]) {
          const name = [write, deleteMode, ...(ignoreDeletes ? ['ignore-deletes'] : []), ...(trackSeen ? ['seen'] : [])].join('-');
          list.push({ name, options: { ...base, write, deleteMode, ignoreDeletes, trackSeen } });
        }
      }
    }
  }
  // The variants beside them: no repeated id in the batch (no sort), a pipelined
  // run's own staging table, and update matching on another column.
  list.push({ name: 'upsert-soft-distinct-ids', options: { ...base, distinctIds: true } });
  list.push({ name: 'upsert-soft-stage-table', options: { ...base, stageTable: '"pgland"."_pgland_stage_1"' } });
  list.push({ name: 'update-soft-match-email', options: { ...base, write: 'update', matchColumn: 'email' } });
  return list;
}

describe('merge statements (issue 16)', () => {
  const all = cases();

  it.each(all.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { text, values } = mergeSql(c.options);
    expect(values).toEqual(['hubspot', 'acme', base.runId]);
    expectGolden(`merge/${c.name}.sql`, `-- ${c.name}: ${JSON.stringify({ ...c.options, def: c.options.def.table })}\n${text}\n`);
  });

  it('has no golden file left from a removed combination', () => {
    expect(
      staleGolden(
        'merge',
        all.map((c) => `merge/${c.name}.sql`),
      ),
    ).toEqual([]);
  });
});
