import type pg from 'pg';
import type { Reject } from '../input/envelope.js';
import { sqlState } from '../errors.js';
import { quoteIdent as q } from '../sql/ident.js';
import { LINE, RECORD_ID, staged } from './stage.js';
import type { IntoPlan } from './validate.js';

/**
 * A batch's statements run inside a savepoint. When the table refuses a
 * record (a NOT NULL, CHECK, foreign key or unique constraint, a value its
 * type does not take, a trigger that raises, a row-level security policy),
 * the statement fails as a whole: the batch is then split in halves, each
 * half retried in its own savepoint, down to the single records the table
 * refuses. Those become rejects naming the constraint; every other record
 * lands. A batch with one bad record costs about 2 × log2(batch) extra
 * statements over ever smaller parts; a clean batch, one savepoint.
 */

/** What the statements of one part of a batch did. */
export interface PartCounts {
  records: number;
  inserted: number;
  updated: number;
  deleted: number;
  skipped: number;
  firstKey: unknown;
  groupsAdded: number;
  groupsRemoved: number;
}

export function zeroPart(): PartCounts {
  return { records: 0, inserted: 0, updated: 0, deleted: 0, skipped: 0, firstKey: undefined, groupsAdded: 0, groupsRemoved: 0 };
}

function add(into: PartCounts, p: PartCounts): void {
  into.records += p.records;
  into.inserted += p.inserted;
  into.updated += p.updated;
  into.deleted += p.deleted;
  into.skipped += p.skipped;
  into.groupsAdded += p.groupsAdded;
  into.groupsRemoved += p.groupsRemoved;
  if (into.firstKey === undefined && p.firstKey !== null && p.firstKey !== undefined) into.firstKey = p.firstKey;
}

/**
 * Errors that one record can cause: data exceptions (class 22), integrity
 * violations (class 23), a raise from a trigger (P0001), a row-level
 * security policy refusing a row (42501 with that message), a key met twice
 * after casting (21000). Anything else (a lost connection, a lock timeout,
 * a missing privilege) fails the batch as usual.
 */
export function isRecordError(err: unknown): boolean {
  const state = sqlState(err);
  if (!state) return false;
  if (state.startsWith('22') || state.startsWith('23') || state === 'P0001' || state === '21000') return true;
  return state === '42501' && /row-level security/i.test((err as Error).message);
}

/** The statements of one part: run in order with the part's first and last input line, and how many staged rows it holds. */
export type PartRunner = (lo: number, hi: number, rows: number) => Promise<PartCounts>;

async function inSavepoint<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  await client.query('SAVEPOINT pgland_part');
  try {
    const value = await fn();
    await client.query('RELEASE SAVEPOINT pgland_part');
    return { ok: true, value };
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT pgland_part');
    if (!isRecordError(err)) throw err;
    return { ok: false, err };
  }
}

/** Why the table refused one record, naming the constraint (or the column whose type refused the value). */
async function reason(client: pg.ClientBase, plan: IntoPlan, stage: string, line: number, err: unknown): Promise<string> {
  const e = err as { message: string; constraint?: string; column?: string; detail?: string; table?: string };
  const state = sqlState(err);
  let where = '';
  if (e.constraint) where = ` [constraint ${q(e.constraint)}${e.table ? ` of ${q(e.table)}` : ''}]`;
  else if (e.column) where = ` [column ${q(e.column)}]`;
  else if (state?.startsWith('22')) {
    const column = await refusingColumn(client, plan, stage, line);
    if (column) where = ` [column ${q(column)}]`;
  }
  return `the table refused the record: ${e.message}${where}${e.detail ? `; ${e.detail}` : ''} (SQLSTATE ${state})`;
}

/** The first staged value of the line that its column's type refuses. */
async function refusingColumn(client: pg.ClientBase, plan: IntoPlan, stage: string, line: number): Promise<string | undefined> {
  for (const c of staged(plan)) {
    const probe = await inSavepoint(client, () =>
      client.query(`SELECT s.${q(c.stage!)}::${c.column.castType} FROM ${stage} s WHERE s.${q(LINE)} = $1`, [line]),
    );
    if (!probe.ok) return c.column.name;
  }
  return undefined;
}

/** A refused record's id, as staged. */
async function stagedId(client: pg.ClientBase, stage: string, line: number): Promise<string | null> {
  const { rows } = await client.query<{ id: string }>(`SELECT s.${q(RECORD_ID)} AS id FROM ${stage} s WHERE s.${q(LINE)} = $1`, [line]);
  return rows[0]?.id ?? null;
}

/**
 * Applies the batch staged in `stage`, `rows` rows (the caller knows how
 * many it staged: no scan to count them): whole, or, when the table refuses
 * a record, by halves. Refused records are added to `rejects`, each with its
 * input line (`lineText`).
 */
export async function applyStaged(
  client: pg.ClientBase,
  plan: IntoPlan,
  stage: string,
  rows: number,
  run: PartRunner,
  rejects: Reject[],
  lineText: (line: number) => string | undefined,
): Promise<PartCounts> {
  const total = zeroPart();
  if (rows === 0) return total;
  // The whole batch as one part: every input line (the table holds only the batch).
  const whole = await inSavepoint(client, () => run(0, Number.MAX_SAFE_INTEGER, rows));
  if (whole.ok) return whole.value;
  const lines = (await client.query<{ l: string }>(`SELECT ${q(LINE)} AS l FROM ${stage} ORDER BY 1`)).rows.map((r) => Number(r.l));

  const part = async (i: number, j: number, knownFailing: unknown): Promise<void> => {
    let err = knownFailing;
    if (err === undefined) {
      const r = await inSavepoint(client, () => run(lines[i]!, lines[j - 1]!, j - i));
      if (r.ok) {
        add(total, r.value);
        return;
      }
      err = r.err;
    }
    if (j - i === 1) {
      const line = lines[i]!;
      // The line as it was sent (kept-lines.ts); never the staged values, which are what the table refused, not the record.
      rejects.push({
        lineNumber: line,
        recordId: await stagedId(client, stage, line),
        reason: await reason(client, plan, stage, line, err),
        rawText: lineText(line) ?? '',
      });
      return;
    }
    const mid = (i + j) >> 1;
    await part(i, mid, undefined);
    await part(mid, j, undefined);
  };
  await part(0, lines.length, whole.err);
  return total;
}
