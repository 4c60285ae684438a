import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { isRetryable } from '../connection/retry.js';
import { describeError, PglandError } from '../errors.js';
import {
  CancelledError,
  ChunkPool,
  copyBatch,
  InputError,
  newBatchBuffer,
  readAhead,
  type BatchBuffer,
  type FillContext,
  type RecordSource,
} from '../load/copy-writer.js';
import { abandonStaleRuns } from '../load/finish.js';
import { IdSet } from '../load/id-set.js';
import type { Reject } from '../input/envelope.js';
import type { LoaderContext } from '../load/loader.js';
import { lineSource } from '../load/record-source.js';
import {
  addCounts,
  finishRunSql,
  insertRejectsSql,
  insertRunSql,
  readRunCounts,
  recordBatchSql,
  zeroCounts,
  type RunCounts,
  type RunStatus,
} from '../load/runs.js';
import { ObjectLease } from '../load/lease.js';
import { RunSession } from '../load/session.js';
import { begin } from '../sql/transaction.js';
import { PGLAND_VERSION } from '../package.js';
import { qualify } from '../sql/ident.js';
import { applyStaged, type PartCounts } from './bisect.js';
import { groupsOfDeletedSql, setGroupsSql } from './groups.js';
import { evaluate, parseExpr, type Mapping } from './mapping.js';
import { mergeIntoSql, type MergeShape } from './merge-into.js';
import { copyIntoStageSql, createIntoStageSql, intoRowEncoder } from './stage.js';
import { planInto, type GroupsRequest, type IntoPlan, type IntoWrite } from './validate.js';
import { parseTableName, type TableName } from './target.js';

export interface IntoRequest {
  /** The customer's table, "schema.table" (SQL spelling) or its parts. */
  into: string | TableName;
  write: IntoWrite;
  /** The column that identifies a row (update, upsert, delete, the sync modes, groups). */
  match?: string;
  mappings: Mapping[];
  groups?: GroupsRequest;
  /** Recorded with the run; default provider "pgland", customer "" and the table as the object. */
  provider?: string;
  customerId?: string;
  input: AsyncIterable<Buffer | string>;
  onProgress?: (counts: RunCounts) => void;
  signal?: AbortSignal;
}

export interface IntoResult {
  runId: string;
  status: RunStatus;
  /** The target table, quoted and qualified. */
  table: string;
  counts: RunCounts;
  durationMs: number;
  /** insert: the generated key of the one row inserted (the primary key's value, an object for a composite key). */
  insertedId?: unknown;
  groups?: { added: number; removed: number };
  error?: Error;
}

/** The run's statements for one part of a staged batch (bisect.ts). */
function partRunner(client: pg.ClientBase, plan: IntoPlan, shape: MergeShape): (lo: number, hi: number) => Promise<PartCounts> {
  const dedup = !shape.distinctKeys;
  const before = groupsOfDeletedSql(plan, dedup, shape.deletes);
  const merge = mergeIntoSql(plan, shape);
  const after = setGroupsSql(plan, dedup);
  return async (lo, hi) => {
    let removed = 0;
    let added = 0;
    if (before) removed += (await client.query(before, [lo, hi])).rowCount ?? 0;
    const { rows } = await client.query<Record<string, string | null> & { first_key: unknown }>(merge, [lo, hi]);
    if (after) {
      const g = (await client.query<{ removed: string; added: string }>(after, [lo, hi])).rows[0]!;
      removed += Number(g.removed);
      added += Number(g.added);
    }
    const r = rows[0]!;
    return {
      records: Number(r.records),
      inserted: Number(r.inserted),
      updated: Number(r.updated),
      deleted: Number(r.deleted),
      skipped: Number(r.skipped),
      firstKey: r.first_key,
      groupsAdded: added,
      groupsRemoved: removed,
    };
  };
}

interface RunState {
  runId: string;
  schema: string;
  plan: IntoPlan;
  hadRows: boolean;
  counts: RunCounts;
  groups: { added: number; removed: number };
  insertedKey: unknown;
  encoder: ReturnType<typeof intoRowEncoder>;
  /** The table's lease (src/load/lease.ts): its fence ends every batch's transaction. */
  lease: ObjectLease;
}

/** A batch's buffer, and whether two of its records share a matching value. */
interface Batch {
  buf: BatchBuffer;
  repeated: boolean;
  /** The batch was read ahead (readAhead): settles when its records are encoded. */
  ready?: Promise<void>;
}

/** How a batch reads its records: the run's encoder, and the check for repeated matching values. */
function fillContext(
  st: RunState,
  batch: Batch,
  encoder: ReturnType<typeof intoRowEncoder>,
  keys: IdSet,
  limits: { size: number; bytes: number },
): FillContext {
  const matchExpr = st.plan.match?.mapping.expr;
  // One batch is encoded at a time: the previous one's keys are no longer needed.
  keys.clear();
  return {
    batchSize: limits.size,
    batchBytes: limits.bytes,
    landedLead: '',
    encodeRow: (record, b, lead) => {
      const row = encoder.encode(record, b, lead);
      // Keys compared as the text staged; two spellings of one value (01 and 1) are caught by the merge's DISTINCT ON.
      if (row !== '' && matchExpr && !batch.repeated && keys.addRepeats(String(encoder.lastMatch() ?? evaluate(matchExpr, record)))) batch.repeated = true;
      return row;
    },
  };
}

/**
 * One batch in one transaction: stage with COPY, apply (bisecting around the
 * records the table refuses), record rejects, counters and the batch, commit.
 * `staged` is called once the batch's records are staged: the run then reads
 * the next batch while the server merges this one.
 */
async function runBatch(
  client: pg.PoolClient,
  st: RunState,
  batchNo: number,
  source: RecordSource,
  batch: Batch,
  fill: FillContext,
  replay: boolean,
  staged: () => void,
): Promise<void> {
  const buf = batch.buf;
  if (replay) {
    const { rowCount } = await client.query(`SELECT 1 FROM ${qualify(st.schema, '_pgland_run_batches')} WHERE run_id = $1::uuid AND batch_no = $2`, [
      st.runId,
      batchNo,
    ]);
    if (rowCount === 1) return;
  }
  await begin(client);
  try {
    await client.query(createIntoStageSql(st.plan));
    await copyBatch(client, copyIntoStageSql(), fill, source, buf);
    staged();
    // The keys of the part sent before a failure were not seen again.
    const repeated = batch.repeated || replay;
    const shape: MergeShape = { distinctKeys: !repeated, prefilter: st.hadRows, deletes: st.encoder.deletions(buf) > 0 };
    // Records the table refused: kept apart from the encoder's rejects, which a replay does not encode again.
    const refused: Reject[] = [];
    const part = await applyStaged(client, st.plan, partRunner(client, st.plan, shape), refused);
    const rejects = [...buf.rejects, ...refused];
    const counts = zeroCounts();
    counts.batches = 1;
    counts.rowsRead = buf.rowsRead;
    counts.rejected = rejects.length;
    counts.inserted = part.inserted;
    counts.updated = part.updated;
    counts.deleted = part.deleted;
    counts.skipped = part.skipped + st.encoder.skipped(buf);
    counts.superseded = buf.records - part.records - refused.length;
    counts.unchanged = part.records - part.inserted - part.updated - part.deleted - part.skipped;
    counts.nulStripped = buf.stats.nulStripped;
    if (rejects.length > 0) await client.query(insertRejectsSql(st.schema, st.runId, rejects));
    await client.query(recordBatchSql(st.schema, st.runId, counts, null, batchNo, buf.rowsRead));
    await st.lease.fence(client);
    await client.query('COMMIT');
    addCounts(st.counts, counts);
    st.groups.added += part.groupsAdded;
    st.groups.removed += part.groupsRemoved;
    if (st.insertedKey === undefined) st.insertedKey = part.firstKey;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * The generated key as seed 001's actions report it: an integer as a number
 * (as text past 2^53), anything else as text; an object for a composite key.
 */
function keyValue(plan: IntoPlan, texts: (string | null)[]): unknown {
  const values = plan.returning.map((name, i) => {
    const text = texts[i] ?? null;
    const integer = ['int2', 'int4', 'int8'].includes(plan.table.columns.find((c) => c.name === name)?.typname ?? '');
    return integer && text !== null && Number.isSafeInteger(Number(text)) ? Number(text) : text;
  });
  return values.length === 1 ? values[0] : Object.fromEntries(plan.returning.map((name, i) => [name, values[i]]));
}

/** A mapping's group path, parsed like a mapping's value; it must be a path into the record. */
function groupsPath(g: GroupsRequest | undefined): Mapping['expr'] | undefined {
  if (!g) return undefined;
  const e = parseExpr(g.from, `--groups-from ${g.from}`);
  if (e.kind !== 'path')
    throw new PglandError('mapping_invalid', `--groups-from ${JSON.stringify(g.from)} must be a path into the record`, {
      hint: 'e.g. --groups-from data.groups',
    });
  return e;
}

/**
 * A load into the customer's own table: check everything before reading a
 * record (a PglandError, exit code 2, when something is wrong), then land the
 * input batch by batch, recording the run in pgland's schema.
 */
export async function loadInto(ctx: LoaderContext, req: IntoRequest): Promise<IntoResult> {
  const started = Date.now();
  const runId = randomUUID();
  const { schema, pool } = ctx;
  const provider = req.provider ?? 'pgland';
  const customerId = req.customerId ?? '';
  const from = groupsPath(req.groups);
  const name = typeof req.into === 'string' ? parseTableName(req.into) : req.into;
  // Runs into one table take turns, as runs of one landed object do: the groups' add-and-remove reads what it writes.
  const lease = await ObjectLease.take(
    pool,
    { schema, provider: '', customerId: '', object: `into:${JSON.stringify([name.schema, name.table])}` },
    runId,
    ctx.lockTimeoutMs,
    ctx.log,
  );
  const session = new RunSession(pool, lease);
  let client: pg.PoolClient;
  let plan: IntoPlan;
  try {
    client = await session.open();
    plan = await planInto(client, { ...req, into: name, pglandSchema: schema }, from);
  } catch (err) {
    await session.close(false);
    await lease.release();
    throw err;
  }
  const log = ctx.log.child({ runId, table: plan.table.qualified });
  const st: RunState = {
    runId,
    schema,
    plan,
    hadRows: false,
    counts: zeroCounts(),
    groups: { added: 0, removed: 0 },
    insertedKey: undefined,
    encoder: intoRowEncoder(plan),
    lease,
  };
  let status: RunStatus = 'succeeded';
  let error: Error | undefined;
  let broken = false;
  try {
    await client.query(
      insertRunSql(schema, {
        runId,
        provider,
        customerId,
        object: plan.table.qualified,
        objectKind: 'own_table',
        table: plan.table.qualified,
        mode: 'incremental',
        writeMode: req.write,
        version: PGLAND_VERSION,
        options: {
          into: plan.table.qualified,
          match: plan.match?.column.name ?? null,
          mappings: Object.fromEntries(req.mappings.map((m) => [m.column, m.expr.text])),
          ...(req.groups
            ? { groups: { table: plan.groups!.table.qualified, key: req.groups.keyColumn, column: req.groups.nameColumn, from: req.groups.from } }
            : {}),
        },
      }),
    );
    await abandonStaleRuns(client, { schema, provider, customerId, runId }, plan.table.qualified);
    st.hadRows = ((await client.query(`SELECT 1 FROM ${plan.table.qualified} LIMIT 1`)).rowCount ?? 0) > 0;
    const source = lineSource(req.input, { ...(req.signal ? { signal: req.signal } : {}), maxLineBytes: ctx.maxRecordBytes });
    const chunks = new ChunkPool();
    const keys = new IdSet(ctx.batchSize);
    const limits = { size: ctx.batchSize, bytes: ctx.batchBytes };
    const newBatch = (): Batch => ({ buf: newBatchBuffer('stage', chunks), repeated: false });
    let batch = newBatch();
    let next: Batch | undefined;
    try {
      for (let batchNo = 1; ; batchNo++) {
        if (batch.ready) {
          // Read ahead: an input error or a cancellation surfaces here, after the previous batch committed.
          await batch.ready;
          if (batch.buf.rowsRead === 0) break;
        } else if ((await source.peek()) === undefined) break;
        const current = batch;
        const fill = current.ready
          ? ({ batchSize: limits.size, batchBytes: limits.bytes, landedLead: '', encodeRow: st.encoder.encode } satisfies FillContext)
          : fillContext(st, current, st.encoder, keys, limits);
        next = undefined;
        const readNext = (): void => {
          if (next) return;
          next = newBatch();
          next.ready = readAhead(next.buf, fillContext(st, next, st.encoder, keys, limits), source);
          next.ready.catch(() => undefined);
        };
        for (let attempt = 0; ; attempt++) {
          try {
            await runBatch(session.client!, st, batchNo, source, current, fill, attempt > 0, readNext);
            break;
          } catch (err) {
            if (err instanceof InputError || err instanceof CancelledError || !isRetryable(err) || attempt >= ctx.batchRetries) throw err;
            log.warn({ batchNo, attempt: attempt + 1, err: { message: (err as Error).message } }, 'batch failed on a transient error: replaying');
            await session.reopen(attempt + 1);
          }
        }
        chunks.release(current.buf);
        req.onProgress?.(st.counts);
        batch = next ?? newBatch();
      }
    } finally {
      // A run that failed leaves no read-ahead behind it still reading the input.
      await next?.ready?.catch(() => undefined);
    }
    if (st.counts.rejected > 0) status = 'partial';
  } catch (err) {
    status = err instanceof CancelledError ? 'cancelled' : 'failed';
    error = err instanceof Error ? err : new Error(String(err));
    broken = !(err instanceof InputError || err instanceof CancelledError || err instanceof PglandError);
    log.error({ err: { message: error.message } }, `run ${status}`);
  }
  let counts = st.counts;
  try {
    if (broken || !session.client) {
      await session.close(true);
      await session.open();
    }
    await session.client!.query(finishRunSql(schema, runId, status, error ? describeError(error) : null));
    counts = await readRunCounts(session.client!, schema, runId);
  } catch (err) {
    log.warn({ err: { message: (err as Error).message } }, 'could not record the run outcome');
    if (!error) {
      status = 'failed';
      error = err as Error;
    }
  }
  await session.close(false);
  await lease.release();
  const insertedId = counts.inserted === 1 && Array.isArray(st.insertedKey) ? keyValue(plan, st.insertedKey as (string | null)[]) : undefined;
  return {
    runId,
    status,
    table: plan.table.qualified,
    counts,
    durationMs: Date.now() - started,
    ...(insertedId !== undefined ? { insertedId } : {}),
    ...(plan.groups ? { groups: st.groups } : {}),
    ...(error ? { error } : {}),
  };
}
