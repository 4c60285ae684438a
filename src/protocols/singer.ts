import { randomUUID } from 'node:crypto';
import type { DeclaredSchema } from '../catalog/declared.js';
import type { Destination } from '../destination.js';
import { PglandError } from '../errors.js';
import { readLines, type Line } from '../input/lines.js';
import type { Logger } from '../log.js';
import type { ProtocolOptions } from './config.js';
import { cursorTime, envelopeLine, isDeletedBy, OrderClock, recordId, rejectedRecord, valueAt } from './envelope.js';
import { SINGER_VERSION_COLUMN } from './generations.js';
import { memberText } from '../input/json-text.js';
import { Fields, parseMessage, ProtocolError, tooLongRecord, type Message } from './messages.js';
import { schemaProblem } from './schema-check.js';
import { landBeforeFailing, StreamWriter, type StreamTotals } from './streams.js';

/*
 * A Singer target (docs/protocols.md): SCHEMA, RECORD, STATE and
 * ACTIVATE_VERSION messages on the input, the value of each STATE on the
 * output once everything before it is committed.
 */

/** Set by taps on a record deleted at the source (log-based replication). */
const SINGER_DELETED_FIELD = '_sdc_deleted_at';

export interface SingerIo {
  input: AsyncIterable<Buffer | string>;
  /** Writes one line (a STATE's value) to the target's output. */
  emit: (line: string) => void | Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

export interface SingerResult {
  streams: StreamTotals[];
  records: number;
  statesEmitted: number;
}

interface SingerStream {
  declared: DeclaredSchema;
  keys: string[][];
  cursor: string[] | undefined;
  /** Versions of RECORDs seen in this run, and versions announced by an ACTIVATE_VERSION before any of their records. */
  versions: Set<number>;
  announced: Set<number>;
  /** The highest version whose older rows were retired in this run. */
  retired: number | undefined;
  /** Whether the warning that ACTIVATE_VERSION is ignored was logged. */
  warnedIgnored: boolean;
}

/** A later SCHEMA adds to the properties of the earlier ones (docs/protocols.md, "Schema changes"); schemaProblem has checked `next`. */
function mergeDeclared(old: DeclaredSchema | undefined, next: Record<string, unknown>): DeclaredSchema {
  const properties = { ...(old?.properties ?? {}), ...((next.properties ?? {}) as DeclaredSchema['properties']) };
  return { type: 'object', properties };
}

/** Lands a Singer message stream; resolves when the input ends and everything is committed and every STATE written out. */
export async function runSinger(dest: Destination, io: SingerIo, options: ProtocolOptions): Promise<SingerResult> {
  const { log } = io;
  const writer = new StreamWriter(dest, {
    protocol: 'singer',
    provider: options.provider,
    customerId: options.customerId,
    kind: options.kind,
    providerPrefix: options.providerPrefix,
    flushIntervalMs: options.flushIntervalMs,
    generationColumn: SINGER_VERSION_COLUMN,
    emit: io.emit,
    log,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  const clock = new OrderClock();
  const streams = new Map<string, SingerStream>();
  let records = 0;

  const known = (m: Message, stream: string): SingerStream => {
    const s = streams.get(stream);
    if (!s) {
      throw new ProtocolError(
        m.line.lineNumber,
        `${m.type} for stream "${stream}" comes before any SCHEMA message for it`,
        "a Singer tap sends a stream's SCHEMA before its first RECORD; check the tap, or the catalog selection",
      );
    }
    return s;
  };

  async function retire(stream: string, s: SingerStream, version: number): Promise<void> {
    await writer.retire(stream, version);
    s.retired = Math.max(s.retired ?? version, version);
  }

  async function handle(m: Message): Promise<void> {
    const f = new Fields(m);
    switch (m.type) {
      case 'SCHEMA': {
        const stream = f.string('stream');
        const schema = f.object('schema');
        const problem = schemaProblem(schema);
        if (problem) {
          throw new ProtocolError(
            m.line.lineNumber,
            `SCHEMA of stream "${stream}": ${problem}`,
            'the tap sent a schema that is not valid JSON Schema; fix the tap (or its catalog) and run it again',
          );
        }
        const keyProps = f.strings('key_properties');
        const bookmarks = f.strings('bookmark_properties');
        const old = streams.get(stream);
        const declared = mergeDeclared(old?.declared, schema);
        const keys = options.appendOnly ? [] : keyProps.map((k) => [k]);
        const cursor = bookmarks[0] === undefined ? undefined : [bookmarks[0]];
        streams.set(stream, {
          declared,
          keys,
          cursor,
          versions: old?.versions ?? new Set(),
          announced: old?.announced ?? new Set(),
          retired: old?.retired,
          warnedIgnored: old?.warnedIgnored ?? false,
        });
        await writer.define(stream, { name: stream, object: stream, declared, keys, cursor });
        return;
      }
      case 'RECORD': {
        const stream = f.string('stream');
        const s = known(m, stream);
        const record = f.object('record');
        const version = f.optionalInteger('version');
        if (version !== undefined) s.versions.add(version);
        records++;
        const recordText = memberText(m.line.text, 'record');
        const keyed = s.keys.length > 0;
        const key = keyed ? recordId(record, recordText, s.keys) : { id: randomUUID() };
        // The Singer SDK's targets stop on a record without its key; `missing_key: reject` keeps it in the rejects instead.
        const problem = 'missing' in key ? `key property "${key.missing}" of stream "${stream}" ${key.isNull ? 'is null' : 'is missing'}` : undefined;
        if (problem !== undefined && options.missingKey === 'fail') {
          throw new ProtocolError(
            m.line.lineNumber,
            problem,
            'the tap must send every key property in every record; to keep such records in _pgland_rejects and go on, set "missing_key": "reject" in the config',
          );
        }
        const lastModifiedAt = s.cursor ? cursorTime(valueAt(record, s.cursor)) : clock.tick();
        const line = envelopeLine({
          id: 'id' in key ? key.id : undefined,
          lastModifiedAt,
          isDeleted: keyed && isDeletedBy(record, SINGER_DELETED_FIELD),
          generationColumn: SINGER_VERSION_COLUMN,
          generation: version ?? null,
          record,
          recordText,
          ...(problem !== undefined ? { problem: `line ${m.line.lineNumber}: ${problem}`, messageLine: m.line.lineNumber } : {}),
        });
        await writer.add(stream, line);
        return;
      }
      case 'STATE': {
        if (!Object.hasOwn(m.body, 'value')) throw new ProtocolError(m.line.lineNumber, 'STATE message: "value" is missing');
        // A target writes out the state's value; Meltano keeps the last one.
        await writer.state(JSON.stringify(m.body.value));
        return;
      }
      case 'ACTIVATE_VERSION': {
        const stream = f.string('stream');
        const version = f.integer('version');
        const s = known(m, stream);
        if (!options.activateVersion) {
          if (!s.warnedIgnored) log.warn({ stream, version }, 'ACTIVATE_VERSION ignored (activate_version is false): rows of older versions are kept');
          s.warnedIgnored = true;
          return;
        }
        // Taps send ACTIVATE_VERSION before a full-table sync's first RECORD
        // and again after its last one. The first announces the version:
        // deleting then would empty the table until the new rows land.
        if (!s.versions.has(version) && !s.announced.has(version)) {
          s.announced.add(version);
          log.debug({ stream, version }, 'ACTIVATE_VERSION announces a version: nothing is deleted before its records land');
          return;
        }
        await retire(stream, s, version);
        return;
      }
      case 'BATCH':
        throw new ProtocolError(m.line.lineNumber, 'BATCH messages are not supported', 'turn off batch_config in the tap, so that it sends RECORD messages');
      default:
        throw new ProtocolError(
          m.line.lineNumber,
          `unknown message type "${m.type.slice(0, 40)}"`,
          'a Singer message is SCHEMA, RECORD, STATE or ACTIVATE_VERSION',
        );
    }
  }

  /** A RECORD too long to read: a reject of its stream, kept with its line, length and first bytes. */
  async function rejectTooLong(line: Line): Promise<void> {
    const { stream, problem } = tooLongRecord(line, 'Singer', 'stream');
    known({ line, type: 'RECORD', body: {} }, stream);
    records++;
    await writer.add(stream, rejectedRecord(line, problem, SINGER_VERSION_COLUMN, clock));
  }

  for await (const line of readLines(io.input, { maxLineBytes: dest.config.max_record_bytes })) {
    if (io.signal?.aborted) throw new PglandError('cancelled', 'the sync was cancelled: what was buffered is not landed and no later STATE was written');
    try {
      if (line.tooLong) await rejectTooLong(line);
      else await handle(parseMessage(line, 'Singer'));
    } catch (err) {
      if (err instanceof ProtocolError) await landBeforeFailing(writer, log);
      throw err;
    }
  }
  if (io.signal?.aborted) throw new PglandError('cancelled', 'the sync was cancelled: what was buffered is not landed and no later STATE was written');
  const totals = await writer.finish();
  // A version announced with no record after it, to the end of the input: the
  // full-table sync found nothing, so every row of an older version goes (as
  // MeltanoLabs' target does). One with records but no closing message is
  // not activated: that sync may have stopped early.
  for (const [stream, s] of streams) {
    const empty = [...s.announced].filter((v) => !s.versions.has(v));
    if (empty.length === 0) continue;
    const version = Math.max(...empty);
    if (s.retired !== undefined && s.retired >= version) continue;
    await retire(stream, s, version);
  }
  return { streams: totals, records, statesEmitted: writer.statesEmitted };
}
