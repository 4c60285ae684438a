import type pg from 'pg';
import type { Problem } from '../encode/record.js';
import type { Reject } from '../input/envelope.js';
import { copyStageSql, createPipelineStageSql } from '../stage/stage.js';
import { ChunkPool, copyBatch, newBatchBuffer, type BatchBuffer, type FillContext } from './copy-writer.js';
import { heldBatchTable, lockStage, mergeOptionsOf, RunClosedError, staged, stagingTables, type HttpRun } from './http-run.js';
import { IdSet } from './id-set.js';
import { lineSource } from './record-source.js';
import { begin } from '../sql/transaction.js';

/** What staging one request's records of an HTTP run (http-run.ts) did. */
export interface StagedBatch {
  batchNo: number;
  firstLine: number;
  lastLine: number;
  rowsRead: number;
  records: number;
  rejected: number;
  problems: number;
  /** The batch number was staged before: nothing was read from this input. */
  alreadyStaged: boolean;
}

/** PostgreSQL text cannot hold NUL; metadata keeps what it can of a hostile value. */
function clean(text: string | null): string | null {
  return text === null ? null : text.replace(/\0/g, '\\0');
}

function notesSql(table: string, rejects: Reject[], problems: Problem[]): { text: string; values: unknown[] } {
  return {
    text: `INSERT INTO ${table} (kind, line_number, record_id, field, column_name, reason, value_excerpt, raw_text)
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])`,
    values: [
      [...rejects.map(() => 'reject'), ...problems.map(() => 'problem')],
      [...rejects.map((r) => r.lineNumber), ...problems.map((p) => p.lineNumber)],
      [...rejects.map((r) => clean(r.recordId)), ...problems.map((p) => clean(p.recordId))],
      [...rejects.map(() => null), ...problems.map((p) => clean(p.field))],
      [...rejects.map(() => null), ...problems.map((p) => p.column)],
      [...rejects.map((r) => clean(r.reason)), ...problems.map((p) => clean(p.reason))],
      [...rejects.map(() => null), ...problems.map((p) => clean(p.valueExcerpt))],
      [...rejects.map((r) => clean(r.rawText)), ...problems.map(() => null)],
    ],
  };
}

/**
 * Where a held run (held-run.ts) stages a batch it merges later: a table of
 * the batch's own (heldBatchTable), its ledger row marked as the holder's.
 * The batch's rejects and problems stay with its buffer, for the merge to
 * record in the run's transaction.
 */
export interface HeldStage {
  token: string;
  chunks: ChunkPool;
  ids: IdSet;
}

/** A held batch staged for its merge: its table and its buffer (rows sent, rejects and problems kept). */
export interface StagedForMerge {
  staged: StagedBatch;
  table?: string;
  buf?: BatchBuffer;
}

/**
 * Stages one request's NDJSON records, in one transaction: COPY into the
 * run's stage with the COPY writer of `pgland load` (copy-writer.ts), keep
 * the lines that could not be landed and the values that did not fit, record
 * the batch. A failure anywhere (the input, the connection) destroys the
 * COPY and rolls back: nothing of the batch stays. Given a batch number that
 * is already staged, nothing is read and the earlier result is returned, so a
 * client may resend a batch whose answer it lost.
 */
export async function stageBatch(
  pool: pg.Pool,
  run: HttpRun,
  input: AsyncIterable<Buffer | string>,
  options: { batchNo?: number; maxRecordBytes?: number } = {},
): Promise<StagedBatch> {
  return (await stageOn(pool, run, input, options)).staged;
}

/**
 * The same for a batch of a held run: COPYed into a table of its own,
 * created in the same transaction, and committed there; the holder merges
 * it in the run's transaction afterwards, while the next batch is staged.
 */
export function stageHeldBatch(
  pool: pg.Pool,
  run: HttpRun,
  input: AsyncIterable<Buffer | string>,
  options: { batchNo?: number; maxRecordBytes?: number },
  held: HeldStage,
): Promise<StagedForMerge> {
  return stageOn(pool, run, input, options, held);
}

async function stageOn(
  pool: pg.Pool,
  run: HttpRun,
  input: AsyncIterable<Buffer | string>,
  options: { batchNo?: number; maxRecordBytes?: number },
  held?: HeldStage,
): Promise<StagedForMerge> {
  const t = stagingTables(run);
  const client = await pool.connect();
  if (held && client.listenerCount('error') === 0) client.on('error', () => undefined);
  let broken = false;
  let buf: BatchBuffer | undefined;
  try {
    await begin(client);
    await lockStage(client, run.runId);
    if (!(await staged(client, run))) throw new RunClosedError(run.runId);
    if (options.batchNo !== undefined) {
      const { rows } = await client.query(`SELECT * FROM ${t.batches} WHERE batch_no = $1`, [options.batchNo]);
      // A batch its holder lost (held-ledger.ts) is sent again: it is staged anew.
      if (rows[0]?.lost === true) await client.query(`DELETE FROM ${t.batches} WHERE batch_no = $1`, [options.batchNo]);
      else if (rows[0]) {
        await client.query('ROLLBACK');
        return { staged: { ...batchOf(rows[0] as BatchRow), alreadyStaged: true } };
      }
    }
    const { rows } = await client.query<{ next_no: number; offset: string }>(
      `SELECT coalesce(max(batch_no), 0) + 1 AS next_no, coalesce(max(first_line + lines), 0) AS offset FROM ${t.batches}`,
    );
    const batchNo = options.batchNo ?? rows[0]!.next_no;
    const offset = Number(rows[0]!.offset);
    // A table left by a holder that died with this batch number (its transaction, and the batch, are gone).
    const table = held ? heldBatchTable(run, batchNo) : t.stage;
    if (held) await client.query(`DROP TABLE IF EXISTS ${table}; ${createPipelineStageSql(table, run.def)}`);

    const source = lineSource(input, { lineOffset: offset, ...(options.maxRecordBytes === undefined ? {} : { maxLineBytes: options.maxRecordBytes }) });
    buf = held ? newBatchBuffer('stage', held.chunks, held.ids, false) : newBatchBuffer('stage', new ChunkPool(), new IdSet(0), false);
    const ctx: FillContext = { merge: mergeOptionsOf(run), batchSize: Infinity, batchBytes: Infinity, landedLead: '' };
    await copyBatch(client, copyStageSql(run.def, 'stage', table), ctx, source, buf);

    if (!held && buf.rejects.length + buf.problems.length > 0) await client.query(notesSql(t.notes, buf.rejects, buf.problems));
    const inserted = await client.query<BatchRow>(
      // held_by only when held: a ledger made by an earlier version has no such column (held-ledger.ts adds it when a run is held).
      `INSERT INTO ${t.batches} (batch_no, first_line, lines, rows_read, records, rejected, problems, nul_stripped${held ? ', held_by' : ''})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8${held ? ', $9::uuid' : ''}) RETURNING *`,
      [
        batchNo,
        offset,
        source.lastLine,
        buf.rowsRead,
        buf.records,
        buf.rejects.length,
        buf.problems.length,
        buf.stats.nulStripped,
        ...(held ? [held.token] : []),
      ],
    );
    await client.query('COMMIT');
    const done = { ...batchOf(inserted.rows[0]!), alreadyStaged: false };
    return held ? { staged: done, table, buf } : { staged: done };
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    throw err;
  } finally {
    // Its rows are sent: the chunks go back for the next batch, the rejects and problems stay for the merge.
    if (held && buf) held.chunks.release(buf);
    client.release(broken);
  }
}

export interface BatchRow {
  batch_no: number;
  first_line: string;
  lines: string;
  rows_read: string;
  records: string;
  rejected: string;
  problems: string;
}

export function batchOf(r: BatchRow): Omit<StagedBatch, 'alreadyStaged'> {
  return {
    batchNo: r.batch_no,
    firstLine: Number(r.first_line) + 1,
    lastLine: Number(r.first_line) + Number(r.lines),
    rowsRead: Number(r.rows_read),
    records: Number(r.records),
    rejected: Number(r.rejected),
    problems: Number(r.problems),
  };
}
