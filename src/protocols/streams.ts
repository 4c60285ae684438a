import pLimit from 'p-limit';
import { resolveObject, type DeclaredSchema } from '../catalog/declared.js';
import type { ObjectDef } from '../catalog/definition.js';
import type { Destination } from '../destination.js';
import { PglandError } from '../errors.js';
import { load, type LoaderContext } from '../load/loader.js';
import { addCounts, zeroCounts, type RunCounts } from '../load/runs.js';
import type { Logger } from '../log.js';
import { migrate } from '../schema/migrate.js';
import { retireOlder } from './generations.js';
import { refuseChangedKeys } from './keys.js';

/*
 * The buffering between a protocol's message stream and pgland's loader.
 *
 * A protocol interleaves many streams, and the loader lands one object per
 * run. Each stream keeps a buffer of envelope lines; a flush lands a buffer
 * as one run of its own (in batches, each one transaction, as everywhere).
 * A STATE is held until every record that came before it is committed, i.e.
 * until every buffer has been flushed after it arrived; held states are then
 * written out in the order they came. A stream's buffer is flushed when
 * it reaches batch_size records or batch_bytes, all buffers together when a
 * STATE comes (at most every flush_interval_ms) or when their total passes
 * batch_bytes, and at the end of the input.
 */

/** What a stream lands as: its object, declared fields, key and cursor. */
export interface StreamDefinition {
  /** The stream as the protocol names it (with its namespace), for messages and logs. */
  name: string;
  /** The object name: the landed table is named from it (docs/landed-tables.md). */
  object: string;
  declared: DeclaredSchema;
  /** Paths of the key properties; none: every record is appended under a generated id. */
  keys: string[][];
  /** Path of the cursor (bookmark) field, if any. */
  cursor: string[] | undefined;
  /** The PostgreSQL schema of the table (an Airbyte namespace), when not the config's. */
  schema?: string;
}

export interface WriterOptions {
  protocol: 'singer' | 'airbyte';
  provider: string;
  customerId: string;
  kind: 'standard' | 'custom';
  /** Tables named `<provider>_<stream>` rather than `<stream>`. */
  providerPrefix: boolean;
  /** Minimum time between two flushes caused by STATE messages; 0 flushes on every STATE that follows records. */
  flushIntervalMs: number;
  /** The column that keeps each row's version or generation (generations.ts). */
  generationColumn: string;
  /** A jsonb column that keeps the record's metadata as sent (Airbyte's `_airbyte_meta`), taken from the envelope's data. */
  metaColumn?: string;
  /** Writes one line to the protocol's output (stdout). */
  emit: (line: string) => void | Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

/** What landed for one stream over the whole input. */
export interface StreamTotals {
  stream: string;
  /** The PostgreSQL schema of the table. */
  schema: string;
  table: string;
  runs: number;
  counts: RunCounts;
  retired: number;
}

/** Buffers are handed to the loader in pieces of about this size. */
const CHUNK = 256 * 1024;

interface StreamState {
  defn: StreamDefinition;
  fingerprint: string;
  def: ObjectDef;
  ctx: LoaderContext;
  /** Whether the key properties were checked against the table's earlier runs (keys.ts). */
  keysChecked: boolean;
  chunks: string[];
  current: string;
  records: number;
  bytes: number;
  totals: StreamTotals;
}

async function* fromChunks(chunks: readonly string[]): AsyncGenerator<string> {
  for (const c of chunks) yield c;
}

export class StreamWriter {
  private readonly streams = new Map<string, StreamState>();
  private readonly tables = new Map<string, string>();
  private readonly held: string[] = [];
  private readonly ctx: LoaderContext;
  /** Loader contexts of other schemas (Airbyte namespaces), each migrated once. */
  private readonly schemas = new Map<string, Promise<LoaderContext>>();
  private readonly limit: ReturnType<typeof pLimit>;
  private bufferedRecords = 0;
  private bufferedBytes = 0;
  /** Flushes under way: records taken out of a buffer are not committed until theirs ends. */
  private inFlight = 0;
  /** Once a flush failed, no state is ever written out: records before it may be lost. */
  private failed = false;
  private lastFlushAll = Date.now();
  /** States written out so far. */
  statesEmitted = 0;

  constructor(
    private readonly dest: Destination,
    private readonly o: WriterOptions,
  ) {
    const c = dest.config;
    this.ctx = {
      pool: dest.pool,
      schema: dest.schema,
      log: o.log,
      batchSize: c.batch_size,
      batchBytes: c.batch_bytes,
      batchRetries: c.batch_retries,
      lockTimeoutMs: c.lock_timeout_ms,
      deleteMode: c.delete_mode,
      // The envelope lines are built here from messages the protocol's reader
      // already held to max_record_bytes; an envelope adds a few bytes to its
      // record, which must not make the loader reject it.
      maxRecordBytes: Number.MAX_SAFE_INTEGER,
    };
    this.limit = pLimit(c.max_parallel_objects);
  }

  /**
   * Defines (or redefines) a stream. A changed definition first flushes what
   * the stream has buffered, so that every record lands under the key and
   * write mode it was sent with.
   */
  async define(key: string, defn: StreamDefinition): Promise<void> {
    const fingerprint = JSON.stringify(defn);
    const old = this.streams.get(key);
    if (old?.fingerprint === fingerprint) return;
    if (old) await this.flush(key);
    const base = resolveObject({ kind: this.o.kind, object: defn.object, provider: this.o.provider, declared: defn.declared, prefixed: this.o.providerPrefix });
    const own: ObjectDef['columns'] = [{ name: this.o.generationColumn, type: 'bigint', source: { from: 'data', key: this.o.generationColumn } }];
    if (this.o.metaColumn) own.push({ name: this.o.metaColumn, type: 'jsonb', source: { from: 'data', key: this.o.metaColumn } });
    const def: ObjectDef = { ...base, columns: [...base.columns, ...own] };
    const ctx = await this.contextFor(defn.schema);
    const where = `${ctx.schema}.${def.table}`;
    const other = this.tables.get(where);
    if (other !== undefined && other !== key) {
      throw new PglandError('config_invalid', `streams "${this.streams.get(other)?.defn.name}" and "${defn.name}" would land in the same table ${where}`, {
        hint: 'stream names that differ only in case or punctuation normalise to the same table name; rename one of the streams',
        context: { table: def.table },
      });
    }
    this.tables.set(where, key);
    this.streams.set(key, {
      defn,
      fingerprint,
      def,
      ctx,
      keysChecked: false,
      chunks: old?.chunks ?? [],
      current: old?.current ?? '',
      records: old?.records ?? 0,
      bytes: old?.bytes ?? 0,
      totals: old?.totals ?? { stream: defn.name, schema: ctx.schema, table: def.table, runs: 0, counts: zeroCounts(), retired: 0 },
    });
  }

  /** The loader context of a schema: the config's, or another one, created and migrated on first use. */
  private contextFor(schema: string | undefined): Promise<LoaderContext> {
    if (schema === undefined || schema === this.ctx.schema) return Promise.resolve(this.ctx);
    let ctx = this.schemas.get(schema);
    if (!ctx) {
      ctx = (async () => {
        const client = await this.dest.pool.connect();
        try {
          await migrate(client, schema);
        } finally {
          client.release();
        }
        return { ...this.ctx, schema };
      })();
      this.schemas.set(schema, ctx);
    }
    return ctx;
  }

  private stream(key: string): StreamState {
    const s = this.streams.get(key);
    if (!s) throw new Error(`stream ${key} is not defined`);
    return s;
  }

  /** Buffers one envelope line of a stream; flushes when a buffer is full. */
  async add(key: string, line: string): Promise<void> {
    const s = this.stream(key);
    s.current += line + '\n';
    if (s.current.length >= CHUNK) {
      s.chunks.push(s.current);
      s.current = '';
    }
    s.records++;
    s.bytes += line.length + 1;
    this.bufferedRecords++;
    this.bufferedBytes += line.length + 1;
    if (s.records >= this.ctx.batchSize || s.bytes >= this.ctx.batchBytes) await this.flush(key);
    else if (this.bufferedBytes >= this.ctx.batchBytes) await this.flushAll();
  }

  /** A STATE, as the line to write out once everything before it is committed. */
  async state(line: string): Promise<void> {
    this.held.push(line);
    if (this.bufferedRecords === 0) return this.release();
    if (Date.now() - this.lastFlushAll >= this.o.flushIntervalMs) await this.flushAll();
  }

  private async release(): Promise<void> {
    if (this.bufferedRecords > 0 || this.inFlight > 0 || this.failed) return;
    while (this.held.length > 0) {
      await this.o.emit(this.held.shift()!);
      this.statesEmitted++;
    }
  }

  /** Lands one stream's buffer as one run. */
  async flush(key: string): Promise<void> {
    const s = this.stream(key);
    if (s.records === 0) return;
    const chunks = s.current ? [...s.chunks, s.current] : s.chunks;
    const records = s.records;
    s.chunks = [];
    s.current = '';
    s.records = 0;
    this.bufferedRecords -= records;
    this.bufferedBytes -= s.bytes;
    s.bytes = 0;
    this.inFlight++;
    let result: Awaited<ReturnType<typeof load>>;
    try {
      // The loader brings the table to this definition first (schema evolution:
      // new properties become columns, types widen; docs/schema-evolution.md).
      if (!s.keysChecked && s.defn.keys.length > 0) {
        await refuseChangedKeys(s.ctx, { def: s.def, provider: this.o.provider, customerId: this.o.customerId, stream: s.defn.name, keys: s.defn.keys });
        s.keysChecked = true;
      }
      result = await load(s.ctx, {
        provider: this.o.provider,
        customerId: this.o.customerId,
        def: s.def,
        mode: 'incremental',
        write: s.defn.keys.length > 0 ? 'upsert' : 'insert',
        input: fromChunks(chunks),
        ...(s.defn.keys.length > 0 ? { runOptions: { key_properties: s.defn.keys } } : {}),
        ...(this.o.signal ? { signal: this.o.signal } : {}),
      });
      if (result.status === 'failed' || result.status === 'cancelled') this.failed = true;
    } catch (err) {
      this.failed = true;
      throw err;
    } finally {
      this.inFlight--;
    }
    s.totals.runs++;
    addCounts(s.totals.counts, result.counts);
    // The loader may have given the object another table (two objects whose names normalise alike).
    s.def = { ...s.def, table: result.table };
    s.totals.table = result.table;
    const log = { stream: s.defn.name, table: s.def.table, runId: result.runId, records, counts: result.counts };
    if (result.status === 'failed' || result.status === 'cancelled') {
      const err = result.error;
      throw new PglandError(
        err instanceof PglandError ? err.code : result.status === 'cancelled' ? 'cancelled' : 'load_failed',
        `stream "${s.defn.name}": ${result.status === 'cancelled' ? 'cancelled' : `the load into ${s.ctx.schema}.${s.def.table} failed`}: ${err?.message ?? 'unknown error'}`,
        { ...(err instanceof PglandError && err.hint ? { hint: err.hint } : {}), context: { stream: s.defn.name, runId: result.runId }, cause: err },
      );
    }
    if (result.status === 'partial') {
      this.o.log.warn(
        log,
        `stream landed with ${result.counts.rejected} rejected lines and ${result.counts.problems} problems: see ${s.ctx.schema}._pgland_rejects and _pgland_problems for run ${result.runId}`,
      );
    } else {
      this.o.log.debug(log, 'stream flushed');
    }
    await this.release();
  }

  /** Lands every buffer, then writes out the held states. */
  async flushAll(): Promise<void> {
    const keys = [...this.streams.entries()].filter(([, s]) => s.records > 0).map(([k]) => k);
    const results = await Promise.allSettled(keys.map((k) => this.limit(() => this.flush(k))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.lastFlushAll = Date.now();
    await this.release();
  }

  /**
   * Retires a stream's rows delivered with a version below `below` (or none,
   * or above `above`): after the stream's buffered records are committed.
   */
  async retire(key: string, below: number, above?: number): Promise<void> {
    const s = this.stream(key);
    await this.flush(key);
    const r = await retireOlder(
      this.dest.pool,
      s.ctx.schema,
      {
        def: s.def,
        provider: this.o.provider,
        customerId: this.o.customerId,
        column: this.o.generationColumn,
        below,
        ...(above === undefined ? {} : { above }),
        deleteMode: this.ctx.deleteMode,
      },
      { lockTimeoutMs: this.ctx.lockTimeoutMs, protocol: this.o.protocol },
    );
    if (!r) return;
    s.totals.retired += r.deleted;
    this.o.log.info(
      { stream: s.defn.name, table: r.table, runId: r.runId, deleted: r.deleted, below, deleteMode: this.ctx.deleteMode },
      'rows of older versions deleted',
    );
  }

  /** Lands what is left and writes out the held states. */
  async finish(): Promise<StreamTotals[]> {
    await this.flushAll();
    return [...this.streams.values()].map((s) => s.totals);
  }
}

/**
 * A protocol error stops the run; what came before it is still landed (and
 * the states before it written out), so that the next run does not redo it.
 */
export async function landBeforeFailing(writer: StreamWriter, log: Logger): Promise<void> {
  try {
    await writer.finish();
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, 'could not land the records before the bad line');
  }
}
