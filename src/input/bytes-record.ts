import { rawMemberSpans, type BytesEnvelope } from './envelope-bytes.js';
import type { MemberTexts } from './envelope-scan.js';
import type { RecordEnvelope } from './envelope.js';

/**
 * A record read from its line's bytes (envelope-bytes.ts): the id, version
 * and deletion flag are values; raw_data and data are positions in the input
 * chunk. The byte encoder (encode/record-bytes.ts) copies them from there into
 * the COPY chunk; anything else that asks for their texts or values (the
 * string encoder, a mapping, a problem's excerpt) gets them decoded on first
 * use, as a scanned line's record (envelope.ts) gives them.
 *
 * It holds its input chunk (64 KB, shared by the chunk's lines) while it
 * lives: records are encoded as they are read and not kept.
 */
export class BytesRecord implements RecordEnvelope {
  private rawTextValue: string | undefined;
  private dataTextValue: string | undefined;
  private members: MemberTexts | undefined;
  private rawMembersValue: MemberTexts | undefined;
  private rawDataValue: unknown;
  private dataValue: Record<string, unknown> | undefined;

  constructor(
    readonly lineNumber: number,
    readonly id: string,
    readonly lastModifiedAt: string,
    readonly isDeleted: boolean,
    /** The chunk the line is in, and the scan's positions in it. */
    readonly src: Buffer,
    readonly scan: BytesEnvelope,
    /** Where the line starts in `src`. */
    readonly lineStart: number,
    /** The line's length in bytes: what the encoder needs at most (twice) in the COPY chunk for what it copies. */
    readonly lineBytes: number,
  ) {}

  /** The line, decoded (valid UTF-8: checked before the line was read as bytes). */
  get lineText(): string {
    return this.src.toString('utf8', this.lineStart, this.lineStart + this.lineBytes);
  }

  /** No escape, tab or newline between tokens, nor long exponent in the whole line (valid UTF-8 is checked before). */
  get asIs(): boolean {
    return this.scan.flags === 0;
  }

  get rawText(): string | undefined {
    const { rawStart, rawEnd } = this.scan;
    if (rawStart < 0) return undefined;
    return (this.rawTextValue ??= this.src.toString('utf8', rawStart, rawEnd));
  }

  get dataText(): string | undefined {
    const { dataStart, dataEnd } = this.scan;
    if (dataStart < 0) return undefined;
    return (this.dataTextValue ??= this.src.toString('utf8', dataStart, dataEnd));
  }

  get dataMembers(): MemberTexts | undefined {
    const spans = this.scan.members;
    if (spans === undefined) return undefined;
    return (this.members ??= new BytesMembers(this.src, spans, this.scan.escapedNames));
  }

  /** raw_data's members, looked up in the line's bytes as data's are (the scan found them). */
  get rawMembers(): MemberTexts | undefined {
    const spans = rawMemberSpans(this.src, this.scan);
    if (spans === undefined) return undefined;
    return (this.rawMembersValue ??= new BytesMembers(this.src, spans, this.scan.rawEscapedNames));
  }

  get rawData(): unknown {
    if (this.rawDataValue === undefined) {
      const text = this.rawText;
      this.rawDataValue = text === undefined ? null : JSON.parse(text);
    }
    return this.rawDataValue;
  }

  get data(): Record<string, unknown> {
    if (this.dataValue === undefined) {
      const text = this.dataText;
      this.dataValue = ((text === undefined ? null : JSON.parse(text)) as Record<string, unknown> | null) ?? {};
    }
    return this.dataValue;
  }
}

/** data's members, looked up in the line's bytes (BytesEnvelope.members: five numbers a member). */
export class BytesMembers implements MemberTexts {
  private map: Map<string, string> | undefined;

  constructor(
    private readonly src: Buffer,
    private readonly spans: number[],
    private readonly escapedNames: boolean,
  ) {}

  get(key: string): string | undefined {
    if (this.escapedNames) return this.toMap().get(key);
    const { src, spans } = this;
    for (let k = spans.length - 5; k >= 0; k -= 5) {
      if (isName(src, spans[k]!, spans[k + 1]!, key)) return src.toString('utf8', spans[k + 2], spans[k + 3]);
    }
    return undefined;
  }

  /** Every member, by name (the last of duplicates). */
  toMap(): Map<string, string> {
    if (this.map) return this.map;
    const map = new Map<string, string>();
    const { src, spans } = this;
    for (let k = 0; k < spans.length; k += 5) {
      const name = JSON.parse(src.toString('utf8', spans[k]! - 1, spans[k + 1]! + 1)) as string;
      map.set(name, src.toString('utf8', spans[k + 2], spans[k + 3]));
    }
    return (this.map = map);
  }
}

/** Whether src[start, end) (a name without escapes) is `key`. */
export function isName(src: Buffer, start: number, end: number, key: string): boolean {
  const n = key.length;
  if (end - start === n) {
    // As many bytes as characters: equal only when both are the same ASCII.
    for (let k = 0; k < n; k++) {
      const c = key.charCodeAt(k);
      if (c >= 0x80 || src[start + k] !== c) return false;
    }
    return true;
  }
  // More bytes than characters: a key with non-ASCII characters may match, compared as text.
  return end - start > n && !isAscii(key) && src.toString('utf8', start, end) === key;
}

function isAscii(text: string): boolean {
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) >= 0x80) return false;
  return true;
}
