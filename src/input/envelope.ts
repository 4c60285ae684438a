import { isTimestampBytes, isTimestampText, jsonNestsDeeper, MAX_JSON_DEPTH } from '../encode/values.js';
import { mayLoseDigits, memberTexts } from './json-text.js';
import { scanEnvelope, type MemberTexts } from './envelope-scan.js';
import { leadingStrings } from './excerpt.js';
import { BytesLine, type Line } from './lines.js';
import { BytesRecord } from './bytes-record.js';
import { scanEnvelopeBytes, type ScanScratch } from './envelope-bytes.js';

/** One record of a sync run, as the input envelope defines it (docs/input.md). */
export interface RecordEnvelope {
  lineNumber: number;
  id: string;
  lastModifiedAt: string;
  isDeleted: boolean;
  /** raw_data's value (null when absent); parsed on first use when the line was scanned (envelope-scan.ts). */
  readonly rawData: unknown;
  /** data's value ({} when absent or null); parsed on first use, likewise. */
  readonly data: Record<string, unknown>;
  /** raw_data's and data's JSON text as sent (json-text.ts), when found: landed instead of re-serialising the parsed values. */
  rawText: string | undefined;
  dataText: string | undefined;
  /** data's members' texts as sent, by name, when the line was scanned: typed columns read these, not `data`. */
  dataMembers?: MemberTexts | undefined;
  /** raw_data's members' texts as sent, by name, when it is an object sent as text; found on first use. */
  readonly rawMembers?: MemberTexts | undefined;
  /** The line's JSON texts are COPY fields as they stand (ScannedEnvelope.asIs); false or absent: check each. */
  readonly asIs?: boolean;
  /**
   * The input line itself, as sent (decoded on first use from a line read as
   * bytes): what a load into an own table keeps for a record the table
   * refuses (src/into/stage.ts). Absent for records not read from a line.
   */
  readonly lineText?: string;
}

const UNPARSED = Symbol('unparsed');

/**
 * A record of an input line. raw_data and data are kept as the texts they
 * were sent as and parsed only if something asks for the values (a mapping
 * into raw_data, a reject's text): a load that passes them through to jsonb
 * never builds them.
 */
class LineRecord implements RecordEnvelope {
  #rawData: unknown;
  #data: Record<string, unknown> | typeof UNPARSED;
  #rawMembers: Map<string, string> | undefined | typeof UNPARSED = UNPARSED;

  constructor(
    readonly lineNumber: number,
    readonly id: string,
    readonly lastModifiedAt: string,
    readonly isDeleted: boolean,
    readonly rawText: string | undefined,
    readonly dataText: string | undefined,
    readonly dataMembers: MemberTexts | undefined,
    parsed: { rawData: unknown; data: Record<string, unknown> } | undefined,
    readonly asIs: boolean,
    readonly lineText: string,
  ) {
    this.#rawData = parsed ? parsed.rawData : UNPARSED;
    this.#data = parsed ? parsed.data : UNPARSED;
  }

  get rawData(): unknown {
    if (this.#rawData === UNPARSED) this.#rawData = this.rawText === undefined ? null : JSON.parse(this.rawText);
    return this.#rawData;
  }

  get rawMembers(): Map<string, string> | undefined {
    if (this.#rawMembers === UNPARSED) this.#rawMembers = this.rawText?.charCodeAt(0) === 0x7b ? memberTexts(this.rawText) : undefined;
    return this.#rawMembers;
  }

  get data(): Record<string, unknown> {
    if (this.#data === UNPARSED) this.#data = ((this.dataText === undefined ? null : JSON.parse(this.dataText)) as Record<string, unknown> | null) ?? {};
    return this.#data;
  }
}

/** A line that cannot be landed at all, kept with its reason. */
export interface Reject {
  lineNumber: number;
  recordId: string | null;
  reason: string;
  rawText: string;
}

/** Ids are keys: they are bounded so that an index entry always fits. */
export const MAX_ID_BYTES = 1024;
/** How much of a rejected line is kept in the rejects table. */
export const MAX_REJECT_TEXT = 64 * 1024;

export type Parsed = { record: RecordEnvelope } | { reject: Reject };

function reject(line: Line, reason: string, recordId: string | null = null): Parsed {
  const rawText = line.text.length > MAX_REJECT_TEXT ? line.text.slice(0, MAX_REJECT_TEXT) : line.text;
  return { reject: { lineNumber: line.lineNumber, recordId, reason, rawText } };
}

/** Why a line longer than max_record_bytes was not read; its text is then only its first bytes. */
export function tooLongReason(t: NonNullable<Line['tooLong']>): string {
  return `the line is ${t.bytes} bytes, more than max_record_bytes (${t.limit}): it was skipped unread, and only its first bytes are kept here`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The envelope's own fields, from the scan or from JSON.parse. */
interface Fields {
  id: unknown;
  lastModifiedAt: unknown;
  isDeleted: unknown;
  problem: unknown;
}

/**
 * Parses and checks one input line. Everything that makes a record impossible
 * to land (bad JSON, a missing or oversize id, a missing version timestamp) is
 * a reject with a reason that names the field and the fix; everything else is
 * the record.
 *
 * A line is scanned (envelope-scan.ts) rather than parsed; a line the scan
 * does not accept is parsed with JSON.parse, which gives the reason it is
 * rejected (or, should the scan decline a valid line, the record as before).
 *
 * With `scratch` (one per reader), the scans of successive lines reuse their
 * member arrays: a record is then valid only until the next line is parsed
 * with it.
 */
export function parseEnvelope(line: Line, rawMembers = false, scratch?: ScanScratch): Parsed {
  if (line.tooLong) {
    const id = leadingStrings(line.text).get('id') ?? null;
    return reject(line, `${tooLongReason(line.tooLong)}; split the record, or raise max_record_bytes`, id === null ? null : id.slice(0, 200));
  }
  if (line instanceof BytesLine && line.utf8) {
    const parsed = parseBytes(line, rawMembers, scratch);
    if (parsed !== undefined) return parsed;
  }
  const scanned = scanEnvelope(line.text);
  if (scanned === undefined) return parseWithJsonParse(line);
  const checked = checkFields(line, scanned);
  if (typeof checked !== 'string') return checked;
  const isDeleted = (scanned.isDeleted ?? false) as boolean;
  const dataText = scanned.dataText;
  if (scanned.dataMembers === undefined && dataText !== undefined && dataText !== 'null') return reject(line, DATA_NOT_OBJECT, checked);
  return {
    record: new LineRecord(
      line.lineNumber,
      checked,
      scanned.lastModifiedAt as string,
      isDeleted,
      scanned.rawText,
      dataText,
      scanned.dataMembers,
      undefined,
      scanned.asIs,
      line.text,
    ),
  };
}

/**
 * The line read from its bytes (envelope-bytes.ts), never decoded whole;
 * undefined when the byte scan does not accept it, and its text must be read.
 */
function parseBytes(line: BytesLine, rawMembers: boolean, scratch: ScanScratch | undefined): Parsed | undefined {
  const { buf, start, end } = line;
  const scanned = scanEnvelopeBytes(buf, start, end, rawMembers, scratch);
  if (scanned === undefined) return undefined;
  // A version sent as a string without escapes is checked on its bytes (the same answer as on its text).
  const { lmStart, lmEnd } = scanned;
  const checked = checkFields(line, scanned, lmStart >= 0 && buf[lmStart] === 0x22 && isTimestampBytes(buf, lmStart + 1, lmEnd - 1));
  if (typeof checked !== 'string') return checked;
  if (scanned.members === undefined && scanned.dataStart >= 0 && buf[scanned.dataStart] !== 0x6e) return reject(line, DATA_NOT_OBJECT, checked);
  const isDeleted = (scanned.isDeleted ?? false) as boolean;
  return { record: new BytesRecord(line.lineNumber, checked, scanned.lastModifiedAt as string, isDeleted, buf, scanned, start, end - start) };
}

const DATA_NOT_OBJECT = 'field "data" must be a JSON object when present';

/** The id when the envelope's fields are usable (what is checked of data aside), else the reject. */
function checkFields(line: Line, value: Fields, timestampChecked = false): string | Parsed {
  let id = value.id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) id = String(id);
  if (typeof id !== 'string' || id.length === 0) {
    // A protocol record without its key comes with the reason in the sender's terms (src/protocols/envelope.ts).
    if (typeof value.problem === 'string' && id === undefined) return reject(line, value.problem.slice(0, 1000));
    return reject(line, 'field "id" is missing or not a non-empty string; every record needs its source id');
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: a short id needs no counting.
  if (id.length * 3 > MAX_ID_BYTES && Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) {
    return reject(line, `field "id" is longer than ${MAX_ID_BYTES} bytes; ids are keys and must stay short`, id.slice(0, 200));
  }
  if (id.includes('\0')) return reject(line, 'field "id" contains a NUL character, which PostgreSQL cannot store', id.replace(/\0/g, '\\0'));

  const lastModifiedAt = value.lastModifiedAt;
  if (typeof lastModifiedAt !== 'string' || (!timestampChecked && !isTimestampText(lastModifiedAt))) {
    return reject(line, 'field "last_modified_at" is missing or not an RFC 3339 timestamp (e.g. 2026-01-15T10:30:00Z); it orders versions of a record', id);
  }

  const isDeleted = value.isDeleted ?? false;
  if (typeof isDeleted !== 'boolean') return reject(line, 'field "is_deleted" must be true or false when present', id);
  return id;
}

/**
 * The line read with JSON.parse, as every line was before the scan: the
 * reason of a line the scan did not accept (and what the scan is tested
 * against, test/envelope-scan.test.ts).
 */
export function parseWithJsonParse(line: Line): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch (err) {
    return reject(line, `invalid JSON: ${(err as Error).message}; each line must be one JSON object`);
  }
  if (!isPlainObject(value)) return reject(line, 'a line must be a JSON object with at least "id" and "last_modified_at"');
  const id = checkFields(line, { id: value.id, lastModifiedAt: value.last_modified_at, isDeleted: value.is_deleted, problem: value.problem });
  if (typeof id !== 'string') return id;

  const data = value.data ?? {};
  if (!isPlainObject(data)) return reject(line, DATA_NOT_OBJECT, id);

  if (jsonNestsDeeper(line.text)) return reject(line, `the JSON nests deeper than ${MAX_JSON_DEPTH} levels, more than pgland can encode`, id);

  // JSON.parse has validated the line; the scan only finds where the two values'
  // texts are, and only on a line whose numbers JSON.parse may have changed.
  const members = mayLoseDigits(line.text) ? memberTexts(line.text) : undefined;
  return {
    record: new LineRecord(
      line.lineNumber,
      id,
      value.last_modified_at as string,
      (value.is_deleted ?? false) as boolean,
      members?.get('raw_data'),
      members?.get('data'),
      undefined,
      {
        rawData: value.raw_data ?? null,
        data,
      },
      false,
      line.text,
    ),
  };
}
