import { randomUUID } from 'node:crypto';
import type { Destination } from '../destination.js';
import { PglandError } from '../errors.js';
import { readLines, type Line } from '../input/lines.js';
import type { Logger } from '../log.js';
import type { ConfiguredStream } from './catalog.js';
import type { ProtocolOptions } from './config.js';
import { cursorTime, envelopeLine, isDeletedBy, OrderClock, recordId, rejectedRecord, valueAt } from './envelope.js';
import { normaliseName } from '../sql/ident.js';
import { AIRBYTE_GENERATION_COLUMN, AIRBYTE_META_COLUMN } from './generations.js';
import { memberText } from '../input/json-text.js';
import { Fields, isPlainObject, parseMessage, ProtocolError, tooLongRecord, type Message } from './messages.js';
import { landBeforeFailing, StreamWriter, type StreamTotals } from './streams.js';

/*
 * The Airbyte destination protocol's `write` (docs/protocols.md): RECORD,
 * STATE, TRACE and LOG messages on the input, each STATE echoed on the output
 * with destinationStats once the records before it are committed.
 */

/** Set by CDC sources on a record deleted at the source. */
const AIRBYTE_DELETED_FIELD = '_ab_cdc_deleted_at';

/** A stream's identity on the wire: its namespace and name. */
function streamKey(namespace: unknown, name: unknown): string {
  return `${typeof namespace === 'string' ? namespace : ''}\u0000${String(name)}`;
}

/**
 * The STATE message to echo: the state as received, with destinationStats.
 * recordCount is written with a decimal point, as the protocol asks.
 */
export function stateLine(state: Record<string, unknown>, recordCount: number): string {
  const { destinationStats: _ignored, ...rest } = state;
  const json = JSON.stringify(rest);
  const stats = `"destinationStats":{"recordCount":${recordCount}.0}`;
  return `{"type":"STATE","state":${json === '{}' ? `{${stats}}` : `${json.slice(0, -1)},${stats}}`}}`;
}

/** What a stream lands as, and what it retires at its end (docs/protocols.md, "Generations"). */
interface AirbyteStream {
  configured: ConfiguredStream;
  key: string;
  keys: string[][];
  generation: number | null;
  /** Rows with a generation below this (or none) are deleted once the stream completes. */
  retireBelow: number | undefined;
  retireAbove: number | undefined;
  completed: boolean;
  retired: boolean;
}

function planStream(c: ConfiguredStream, syntheticGeneration: number): AirbyteStream {
  const dedup = c.mode.endsWith('_dedup');
  const overwrite = c.mode.startsWith('overwrite');
  // Before refreshes, the platform sent no generation ids: an overwrite then
  // gets one of its own (the sync's start in ms), and retires every row
  // delivered before it.
  const synthetic = c.generationId === undefined && overwrite;
  const generation = c.generationId ?? (synthetic ? syntheticGeneration : null);
  const minimum = synthetic ? syntheticGeneration : c.minimumGenerationId;
  return {
    configured: c,
    key: streamKey(c.namespace, c.name),
    keys: dedup ? c.primaryKey : [],
    generation,
    retireBelow: minimum !== undefined && minimum > 0 ? minimum : undefined,
    // A real generation also retires rows left by a synthetic one (a larger number).
    retireAbove: !synthetic && minimum !== undefined && minimum > 0 && generation !== null ? generation : undefined,
    completed: false,
    retired: false,
  };
}

export interface AirbyteIo {
  input: AsyncIterable<Buffer | string>;
  /** Writes one Airbyte message line to the destination's output. */
  emit: (line: string) => void | Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

function notInCatalog(lineNumber: number, namespace: string | undefined, name: string): ProtocolError {
  return new ProtocolError(
    lineNumber,
    `RECORD for stream "${namespace ? `${namespace}.` : ''}${name}", which is not in the configured catalog`,
    'the records and the catalog must come from the same sync',
  );
}

export interface AirbyteResult {
  streams: StreamTotals[];
  records: number;
  statesEmitted: number;
}

const LOG_LEVELS: Record<string, 'error' | 'warn' | 'info' | 'debug'> = {
  FATAL: 'error',
  ERROR: 'error',
  WARN: 'warn',
  INFO: 'info',
  DEBUG: 'debug',
  TRACE: 'debug',
};

/** Lands an Airbyte `write`: resolves when the input ends, everything is committed and every STATE echoed. */
export async function runAirbyteWrite(dest: Destination, catalog: ConfiguredStream[], io: AirbyteIo, options: ProtocolOptions): Promise<AirbyteResult> {
  const { log } = io;
  const writer = new StreamWriter(dest, {
    protocol: 'airbyte',
    provider: options.provider,
    customerId: options.customerId,
    kind: options.kind,
    providerPrefix: options.providerPrefix,
    flushIntervalMs: options.flushIntervalMs,
    generationColumn: AIRBYTE_GENERATION_COLUMN,
    metaColumn: AIRBYTE_META_COLUMN,
    emit: io.emit,
    log,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  const started = Date.now();
  const clock = new OrderClock(started);
  const streams = new Map<string, AirbyteStream>();
  for (const c of catalog) {
    const s = planStream(c, started);
    streams.set(s.key, s);
    // As Airbyte's own Postgres destination: the stream's name is the table's, its namespace the schema's.
    await writer.define(s.key, {
      name: c.namespace ? `${c.namespace}.${c.name}` : c.name,
      object: c.name,
      declared: c.jsonSchema,
      keys: s.keys,
      cursor: c.cursorField.length > 0 ? c.cursorField : undefined,
      ...(c.namespace ? { schema: normaliseName(c.namespace) } : {}),
    });
  }
  const sinceState = new Map<string, number>();
  let sinceGlobal = 0;
  let records = 0;
  let statusesSeen = false;

  const find = (namespace: unknown, name: unknown): AirbyteStream | undefined => {
    const exact = streams.get(streamKey(namespace, name));
    if (exact || namespace !== undefined) return exact;
    // A record without a namespace: the one catalog stream of that name, if there is exactly one.
    const byName = [...streams.values()].filter((s) => s.configured.name === name);
    return byName.length === 1 ? byName[0] : undefined;
  };

  async function retire(s: AirbyteStream): Promise<void> {
    if (s.retired || s.retireBelow === undefined) return;
    s.retired = true;
    await writer.retire(s.key, s.retireBelow, s.retireAbove);
  }

  async function handle(m: Message): Promise<void> {
    const f = new Fields(m);
    switch (m.type) {
      case 'RECORD': {
        const body = f.object('record');
        const rf = new Fields({ ...m, type: 'RECORD', body });
        const name = rf.string('stream');
        const namespace = rf.optionalString('namespace');
        const data = rf.object('data');
        const s = find(namespace, name);
        if (!s) throw notInCatalog(m.line.lineNumber, namespace, name);
        records++;
        sinceGlobal++;
        sinceState.set(s.key, (sinceState.get(s.key) ?? 0) + 1);
        const recordText = memberText(m.line.text, 'record');
        const dataText = recordText === undefined ? undefined : memberText(recordText, 'data');
        const keyed = s.keys.length > 0;
        const key = keyed ? recordId(data, dataText, s.keys) : { id: randomUUID() };
        const label = `${namespace ? `${namespace}.` : ''}${name}`;
        const problem = 'missing' in key ? `primary key field "${key.missing}" of stream "${label}" ${key.isNull ? 'is null' : 'is missing'}` : undefined;
        if (problem !== undefined && options.missingKey === 'fail') {
          throw new ProtocolError(
            m.line.lineNumber,
            problem,
            'the source must send every primary key field; or set "missing_key": "reject" to keep such records in _pgland_rejects',
          );
        }
        const meta = rf.optionalObject('meta');
        const cursor = s.configured.cursorField;
        const line = envelopeLine({
          id: 'id' in key ? key.id : undefined,
          lastModifiedAt: cursor.length > 0 ? cursorTime(valueAt(data, cursor)) : clock.tick(),
          isDeleted: keyed && isDeletedBy(data, AIRBYTE_DELETED_FIELD),
          generationColumn: AIRBYTE_GENERATION_COLUMN,
          generation: s.generation,
          // Changes the source made to the record (a value nulled or truncated, and why), kept as sent.
          meta: { [AIRBYTE_META_COLUMN]: meta ?? { changes: [] } },
          record: data,
          recordText: dataText,
          ...(problem !== undefined ? { problem: `line ${m.line.lineNumber}: ${problem}`, messageLine: m.line.lineNumber } : {}),
        });
        await writer.add(s.key, line);
        return;
      }
      case 'STATE': {
        const state = f.object('state');
        let count: number;
        if (state.type === 'STREAM') {
          const descriptor = isPlainObject(state.stream) && isPlainObject(state.stream.stream_descriptor) ? state.stream.stream_descriptor : undefined;
          if (!descriptor || typeof descriptor.name !== 'string') {
            throw new ProtocolError(m.line.lineNumber, 'STATE message of type STREAM: "stream.stream_descriptor.name" is missing');
          }
          const s = find(descriptor.namespace ?? undefined, descriptor.name);
          const key = s?.key ?? streamKey(descriptor.namespace, descriptor.name);
          count = sinceState.get(key) ?? 0;
          sinceState.set(key, 0);
        } else {
          // GLOBAL, LEGACY, or no type (legacy): the records of every stream since the last one.
          count = sinceGlobal;
          sinceGlobal = 0;
        }
        await writer.state(stateLine(state, count));
        return;
      }
      case 'TRACE': {
        const trace = f.object('trace');
        if (trace.type === 'STREAM_STATUS' && isPlainObject(trace.stream_status)) {
          statusesSeen = true;
          const st = trace.stream_status;
          const d = isPlainObject(st.stream_descriptor) ? st.stream_descriptor : {};
          const s = find(d.namespace ?? undefined, d.name);
          log.info({ stream: d.name, namespace: d.namespace, status: st.status }, 'stream status');
          if (s && st.status === 'COMPLETE') {
            s.completed = true;
            await retire(s);
          }
        } else if (trace.type === 'ERROR') {
          const e = isPlainObject(trace.error) ? trace.error : {};
          log.error({ trace: { message: e.message, failure_type: e.failure_type, stream: e.stream_descriptor } }, 'the source reported an error');
        } else {
          log.debug({ trace }, 'trace message');
        }
        return;
      }
      case 'LOG': {
        const l = isPlainObject(m.body.log) ? m.body.log : {};
        log[LOG_LEVELS[String(l.level)] ?? 'info']({ source: 'airbyte' }, typeof l.message === 'string' ? l.message : JSON.stringify(l.message ?? ''));
        return;
      }
      case 'CONTROL':
      case 'SPEC':
      case 'CATALOG':
      case 'CONNECTION_STATUS':
        log.debug({ type: m.type }, 'message ignored by the destination');
        return;
      default:
        throw new ProtocolError(
          m.line.lineNumber,
          `unknown message type "${m.type.slice(0, 40)}"`,
          'a destination reads RECORD, STATE, TRACE and LOG messages',
        );
    }
  }

  /** A RECORD too long to read: a reject of its stream, kept with its line, length and first bytes; it counts as received. */
  async function rejectTooLong(line: Line): Promise<void> {
    const { stream: name, namespace, problem } = tooLongRecord(line, 'Airbyte', 'record.stream');
    const s = find(namespace, name);
    if (!s) throw notInCatalog(line.lineNumber, namespace, name);
    records++;
    sinceGlobal++;
    sinceState.set(s.key, (sinceState.get(s.key) ?? 0) + 1);
    await writer.add(s.key, rejectedRecord(line, problem, AIRBYTE_GENERATION_COLUMN, clock));
  }

  for await (const line of readLines(io.input, { maxLineBytes: dest.config.max_record_bytes })) {
    if (io.signal?.aborted) throw new PglandError('cancelled', 'the sync was cancelled: what was buffered is not landed and no later STATE was echoed');
    try {
      if (line.tooLong) await rejectTooLong(line);
      else await handle(parseMessage(line, 'Airbyte'));
    } catch (err) {
      if (err instanceof ProtocolError) await landBeforeFailing(writer, log);
      throw err;
    }
  }
  if (io.signal?.aborted) throw new PglandError('cancelled', 'the sync was cancelled: what was buffered is not landed and no later STATE was echoed');
  const totals = await writer.finish();
  for (const s of streams.values()) {
    if (s.retired || s.retireBelow === undefined) continue;
    // A platform that sends stream statuses says which streams completed; one
    // that does not (older ones) ends the input only after a successful read.
    if (statusesSeen && !s.completed) {
      log.warn({ stream: s.configured.name }, 'the stream did not report COMPLETE: rows of older generations are kept');
      continue;
    }
    await retire(s);
  }
  return { streams: totals, records, statesEmitted: writer.statesEmitted };
}
