import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { describeError, PglandError } from '../errors.js';
import { CancelledError, InputError } from '../load/copy-writer.js';
import { abandonStaleRuns, dropOrphanStages } from '../load/finish.js';
import type { LoaderContext } from '../load/loader.js';
import { lineSource } from '../load/record-source.js';
import { finishRunSql, insertRunSql, readRunCounts, zeroCounts, type RunStatus, type RunCounts } from '../load/runs.js';
import { ObjectLease } from '../load/lease.js';
import { RunSession } from '../load/session.js';
import { PGLAND_VERSION } from '../package.js';
import { landIntoBatches, type RunState } from './land.js';
import { parseExpr, type Mapping } from './mapping.js';
import { intoRowEncoder } from './stage.js';
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
    await dropOrphanStages(client, schema);
    st.hadRows = ((await client.query(`SELECT 1 FROM ${plan.table.qualified} LIMIT 1`)).rowCount ?? 0) > 0;
    const source = lineSource(req.input, { ...(req.signal ? { signal: req.signal } : {}), maxLineBytes: ctx.maxRecordBytes });
    await landIntoBatches({
      st,
      pool,
      session,
      source,
      batchSize: ctx.batchSize,
      batchBytes: ctx.batchBytes,
      batchRetries: ctx.batchRetries,
      log,
      committed: () => req.onProgress?.(st.counts),
    });
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
