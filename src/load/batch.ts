import { once } from 'node:events';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ObjectDef } from '../catalog/definition.js';
import { newEncodeStats } from '../encode/copy-text.js';
import { encodeRecord, type Problem } from '../encode/record.js';
import type { Parsed, Reject } from '../input/envelope.js';
import { mergeSql } from '../merge/merge.js';
import { copyStageSql, createStageSql } from '../stage/stage.js';
import { addRunCountsSql, insertProblemsSql, insertRejectsSql, zeroCounts, type RunCounts } from './runs.js';

/** Records come from the input one at a time; a batch takes what fits. */
export interface RecordSource {
  /** The next parsed line, or undefined at the end of input. May throw (the input failed). */
  peek(): Promise<Parsed | undefined>;
  /** Consumes the line that peek() returned. */
  take(): void;
}

export interface BatchContext {
  schema: string;
  def: ObjectDef;
  provider: string;
  customerId: string;
  runId: string;
  batchSize: number;
  batchBytes: number;
}

/** Writes are collected into chunks of about this size before they go to the socket. */
const WRITE_CHUNK = 256 * 1024;

/**
 * One batch, in ONE transaction: stage into a temp table with COPY, merge with
 * one statement, keep the batch's rejects and problems, add to the run's
 * counters, commit. Records stream from the source straight into COPY; when
 * anything fails (the input, the connection, the server) the COPY stream is
 * destroyed so the server aborts it, and the transaction rolls back: nothing
 * of the batch lands.
 */
export async function runBatch(client: pg.PoolClient, ctx: BatchContext, source: RecordSource): Promise<RunCounts> {
  const counts = zeroCounts();
  const stats = newEncodeStats();
  const rejects: Reject[] = [];
  const problems: Problem[] = [];
  let records = 0;
  let bytes = 0;
  let copy: ReturnType<typeof copyFrom> | undefined;

  await client.query('BEGIN');
  try {
    await client.query(createStageSql(ctx.def));
    copy = client.query(copyFrom(copyStageSql(ctx.def)));
    // Errors surface through the awaits below; this listener only keeps an
    // error emitted between them from being unhandled.
    copy.on('error', () => undefined);
    let pending = '';
    for (;;) {
      if (records >= ctx.batchSize || bytes >= ctx.batchBytes) break;
      const item = await source.peek();
      if (item === undefined) break;
      source.take();
      counts.rowsRead++;
      if ('reject' in item) {
        rejects.push(item.reject);
        continue;
      }
      const row = encodeRecord(item.record, ctx.def, stats, problems);
      records++;
      bytes += row.length;
      pending += row;
      if (pending.length >= WRITE_CHUNK) {
        const ok = copy.write(pending);
        pending = '';
        // Respect backpressure: wait for the socket to drain before encoding more.
        if (!ok) await Promise.race([once(copy, 'drain'), once(copy, 'error').then(([e]) => Promise.reject(e))]);
      }
    }
    copy.end(pending);
    await once(copy, 'finish');
    copy = undefined;

    if (records > 0) {
      const merge = mergeSql(ctx.schema, ctx.def, { provider: ctx.provider, customerId: ctx.customerId, runId: ctx.runId });
      const { rows } = await client.query<{ distinct_records: string; inserted: string; updated: string }>(merge);
      const r = rows[0]!;
      counts.inserted = Number(r.inserted);
      counts.updated = Number(r.updated);
      counts.superseded = records - Number(r.distinct_records);
      counts.unchanged = Number(r.distinct_records) - counts.inserted - counts.updated;
    }
    if (rejects.length > 0) await client.query(insertRejectsSql(ctx.schema, ctx.runId, rejects));
    if (problems.length > 0) await client.query(insertProblemsSql(ctx.schema, ctx.runId, problems));
    counts.batches = 1;
    counts.rejected = rejects.length;
    counts.problems = problems.length;
    counts.nulStripped = stats.nulStripped;
    await client.query(addRunCountsSql(ctx.schema, ctx.runId, counts));
    await client.query('COMMIT');
    return counts;
  } catch (err) {
    if (copy) {
      // CopyFail makes the server abort the COPY; wait until the stream settles
      // so that the connection is in a known state before ROLLBACK.
      const settled = once(copy, 'close').catch(() => undefined);
      copy.destroy(err as Error);
      await settled;
    }
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
