import type pg from 'pg';
import { PglandError } from '../errors.js';
import { stagingTables, type HttpRun } from './http-run.js';

/**
 * The ledger's view of held runs (held-run.ts). A batch landed in a holder's
 * open transaction is recorded in the run's ledger (`_batches`) at once, in
 * a committed row carrying the holder's token (`held_by`): the ledger says
 * which batches exist even though their rows are visible to no one until the
 * holder commits. A holder that is gone (its process died, its connection
 * was cut, its run timed out) took its transaction with it: its batches are
 * marked `lost`, and the commit refuses with their numbers until they are
 * sent again. A row without holder was staged the old way, in the stage.
 */

/** The ledger columns of held runs, added to a ledger made by an earlier version (no lock taken when they are there). */
export async function ensureHeldColumns(db: pg.Pool | pg.ClientBase, run: Pick<HttpRun, 'schema' | 'runId'>): Promise<void> {
  const t = stagingTables(run);
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname IN ('held_by', 'lost') AND NOT attisdropped`,
    [t.batches],
  );
  if (rows[0]!.n === 2) return;
  await db.query(`ALTER TABLE ${t.batches} ADD COLUMN IF NOT EXISTS held_by uuid, ADD COLUMN IF NOT EXISTS lost boolean NOT NULL DEFAULT false`);
}

/**
 * The session-level advisory lock a holder's connection keeps while it holds
 * the run: whoever can take it knows that the holder's transaction is gone.
 */
export function holderLockSql(token: string): { text: string; values: unknown[] } {
  return { text: `SELECT pg_advisory_lock(hashtextextended('pgland.held.' || $1::text, 0))`, values: [token] };
}

/** Whether the holder `token` still holds its run: its lock cannot be taken (tried in a statement's own transaction). */
async function holderAlive(pool: pg.Pool | pg.ClientBase, token: string): Promise<boolean> {
  const { rows } = await pool.query<{ free: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtextextended('pgland.held.' || $1::text, 0)) AS free`, [token]);
  return !rows[0]!.free;
}

/** Another serve process holds the run in its open transaction: it alone can commit it. */
export class RunHeldElsewhereError extends PglandError {
  constructor(runId: string) {
    super('run_held_elsewhere', `run ${runId} is held by another serve process, which lands its batches in one open transaction`, {
      hint: 'send the commit again (after Retry-After): it must reach the process that holds the run, or wait until that one lets the run go (idle timeout)',
      context: { runId, retryAfterSeconds: 1 },
    });
  }
}

/** Batches the ledger marks lost: their holder's transaction rolled back. Nothing of the run landed; the run stays open. */
export class BatchesLostError extends PglandError {
  constructor(runId: string, lost: number[]) {
    const list = lost.length > 10 ? `${lost.slice(0, 10).join(', ')} … (${lost.length})` : lost.join(', ');
    super(
      'batches_lost',
      `run ${runId} was not committed: batch${lost.length > 1 ? 'es' : ''} ${list} ${lost.length > 1 ? 'were' : 'was'} held by a serve process that stopped or timed out before the commit, and ${lost.length > 1 ? 'are' : 'is'} lost`,
      {
        hint: 'send those batches again (PUT /runs/{id}/batches/{n}, same numbers) and commit again; nothing of the run landed',
        context: { runId, lost },
      },
    );
  }
}

/** Marks the batches of holder `token` lost (its transaction rolled back); a ledger already dropped has nothing to mark. */
export async function markLost(pool: pg.Pool | pg.ClientBase, run: Pick<HttpRun, 'schema' | 'runId'>, token: string): Promise<void> {
  const t = stagingTables(run);
  const { rows } = await pool.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [t.batches]);
  if (!rows[0]!.ok) return;
  await pool.query(`UPDATE ${t.batches} SET lost = true WHERE held_by = $1::uuid`, [token]);
}

/**
 * Before a commit anywhere but at the holder `except`: a run held by a live
 * holder elsewhere is refused (retryable); the batches of holders that are
 * gone are marked lost; lost batches refuse the commit, naming them.
 */
export async function checkHeldBatches(pool: pg.Pool | pg.ClientBase, run: Pick<HttpRun, 'schema' | 'runId'>, except?: string): Promise<void> {
  const t = stagingTables(run);
  const { rows: exists } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'held_by' AND NOT attisdropped`,
    [t.batches],
  );
  if (exists[0]!.n === 0) return; // no ledger, or one no holder ever used
  const { rows: holders } = await pool.query<{ held_by: string }>(`SELECT DISTINCT held_by FROM ${t.batches} WHERE held_by IS NOT NULL AND NOT lost`);
  for (const { held_by: token } of holders) {
    if (token === except) continue;
    if (await holderAlive(pool, token)) throw new RunHeldElsewhereError(run.runId);
    await markLost(pool, run, token);
  }
  const { rows: lost } = await pool.query<{ batch_no: number }>(`SELECT batch_no FROM ${t.batches} WHERE lost ORDER BY batch_no`);
  if (lost.length > 0)
    throw new BatchesLostError(
      run.runId,
      lost.map((r) => r.batch_no),
    );
}
