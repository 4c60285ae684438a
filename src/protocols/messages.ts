import { PglandError } from '../errors.js';
import { tooLongReason } from '../input/envelope.js';
import { leadingStrings } from '../input/excerpt.js';
import type { Line } from '../input/lines.js';

export type Protocol = 'Singer' | 'Airbyte';

/**
 * A line that is not a valid message of the protocol. Fatal in both
 * ecosystems: the run stops, and the message names the line.
 */
export class ProtocolError extends PglandError {
  constructor(
    readonly lineNumber: number,
    message: string,
    hint?: string,
  ) {
    super('protocol_error', `line ${lineNumber}: ${message}`, { ...(hint ? { hint } : {}), context: { line: lineNumber } });
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A parsed message: a JSON object with a string `type`, and the line it came from. */
export interface Message {
  line: Line;
  type: string;
  body: Record<string, unknown>;
}

/** Parses one input line as a message of the protocol, or throws a ProtocolError naming the line. */
export function parseMessage(line: Line, protocol: Protocol): Message {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch (err) {
    throw new ProtocolError(line.lineNumber, `not valid JSON (${(err as Error).message}); every line must be one ${protocol} message`);
  }
  if (!isPlainObject(value)) throw new ProtocolError(line.lineNumber, `a ${protocol} message must be a JSON object`);
  if (typeof value.type !== 'string') {
    throw new ProtocolError(line.lineNumber, `the message has no "type"; every ${protocol} message names its type`);
  }
  return { line, type: value.type, body: value };
}

/** Field readers that name the message, the field and the line when the field is wrong. */
export class Fields {
  constructor(private readonly m: Message) {}

  private fail(field: string, expected: string): never {
    throw new ProtocolError(this.m.line.lineNumber, `${this.m.type} message: "${field}" must be ${expected}`);
  }

  string(field: string): string {
    const v = this.m.body[field];
    if (typeof v !== 'string' || v.length === 0) this.fail(field, 'a non-empty string');
    return v;
  }

  optionalString(field: string): string | undefined {
    const v = this.m.body[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(field, 'a string');
    return v;
  }

  object(field: string): Record<string, unknown> {
    const v = this.m.body[field];
    if (!isPlainObject(v)) this.fail(field, 'a JSON object');
    return v;
  }

  optionalObject(field: string): Record<string, unknown> | undefined {
    const v = this.m.body[field];
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) this.fail(field, 'a JSON object');
    return v;
  }

  optionalInteger(field: string): number | undefined {
    const v = this.m.body[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(field, 'an integer');
    return v;
  }

  integer(field: string): number {
    const v = this.optionalInteger(field);
    if (v === undefined) this.fail(field, 'an integer');
    return v;
  }

  /** A list of strings; absent or null is an empty list. */
  strings(field: string): string[] {
    const v = this.m.body[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) this.fail(field, 'a list of strings');
    return v as string[];
  }
}

/**
 * A line longer than max_record_bytes was skipped unread (src/input/lines.ts):
 * only its first bytes are known. When they show a RECORD and its stream
 * (`path` names where the protocol puts the stream), the record is a reject
 * of that stream and the sync goes on; any other message too long to read (a
 * SCHEMA, a STATE, or one whose start does not say) stops the run, since
 * skipping it would lose a definition or a checkpoint.
 */
export function tooLongRecord(line: Line, protocol: Protocol, streamPath: string): { stream: string; namespace?: string; problem: string } {
  const t = line.tooLong!;
  const head = leadingStrings(line.text);
  const stream = head.get(streamPath);
  const problem = `the ${protocol} message on line ${line.lineNumber}: ${tooLongReason(t)}`;
  if (head.get('type') !== 'RECORD' || stream === undefined) {
    throw new ProtocolError(
      line.lineNumber,
      `the message is ${t.bytes} bytes, more than max_record_bytes (${t.limit}), and its first bytes do not show a RECORD and its stream`,
      'raise max_record_bytes in the config (it bounds the memory one line may take)',
    );
  }
  const namespace = head.get(streamPath.replace(/stream$/, 'namespace'));
  return { stream, ...(namespace !== undefined && streamPath !== 'stream' ? { namespace } : {}), problem };
}
