import type pg from 'pg';
import type { Problem } from '../encode/record.js';
import type { Reject } from '../input/envelope.js';
import { copyStageSql } from '../stage/stage.js';
import { ChunkPool, copyBatch, newBatchBuffer, type FillContext } from './copy-writer.js';
import { lockStage, mergeOptionsOf, RunClosedError, staged, stagingTables, type HttpRun } from './http-run.js';
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
  const t = stagingTables(run);
  const client = await pool.connect();
  let broken = false;
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
        return { ...batchOf(rows[0] as BatchRow), alreadyStaged: true };
      }
    }
    const { rows } = await client.query<{ next_no: number; offset: string }>(
      `SELECT coalesce(max(batch_no), 0) + 1 AS next_no, coalesce(max(first_line + lines), 0) AS offset FROM ${t.batches}`,
    );
    const batchNo = options.batchNo ?? rows[0]!.next_no;
    const offset = Number(rows[0]!.offset);

    const source = lineSource(input, { lineOffset: offset, ...(options.maxRecordBytes === undefined ? {} : { maxLineBytes: options.maxRecordBytes }) });
    const buf = newBatchBuffer('stage', new ChunkPool(), new IdSet(0), false);
    const ctx: FillContext = { merge: mergeOptionsOf(run), batchSize: Infinity, batchBytes: Infinity, landedLead: '' };
    await copyBatch(client, copyStageSql(run.def, 'stage', t.stage), ctx, source, buf);

    if (buf.rejects.length + buf.problems.length > 0) await client.query(notesSql(t.notes, buf.rejects, buf.problems));
    const inserted = await client.query<BatchRow>(
      `INSERT INTO ${t.batches} (batch_no, first_line, lines, rows_read, records, rejected, problems, nul_stripped)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [batchNo, offset, source.lastLine, buf.rowsRead, buf.records, buf.rejects.length, buf.problems.length, buf.stats.nulStripped],
    );
    await client.query('COMMIT');
    return { ...batchOf(inserted.rows[0]!), alreadyStaged: false };
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    throw err;
  } finally {
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
