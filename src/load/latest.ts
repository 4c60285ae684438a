/**
 * The newest last-modified time of a batch that skips the staging table (a
 * first load COPYed straight into the landed table), found while the rows are
 * encoded, since no merge statement computes it.
 *
 * Timestamps of the form `YYYY-MM-DD[T ]HH:MM:SS[.fraction]<zone>` with the
 * same zone text (`Z`, `+00`, `-05:00`...) compare as text: the fields are
 * fixed-width and one zone is one offset, so the later text is the later
 * time (the fraction compared digit by digit). One candidate is kept per zone
 * text; any other form (no seconds, a date alone, no zone, lower-case
 * letters) is kept aside, as a copy, and compared by the server, in the
 * session's time zone, as the merge would.
 *
 * Per zone, not per value: a reader's output (`2025-12-28 23:59:00+00`,
 * PostgreSQL's own form) once put every value of a batch aside, and each kept
 * value, a slice of its input line, kept the whole line alive.
 */
export class LatestTimestamp {
  private readonly bestByZone = new Map<string, string>();
  private readonly others = new Set<string>();

  observe(text: string): void {
    const zone = zoneOf(text);
    if (zone === undefined) {
      if (!this.others.has(text)) this.others.add(copyOf(text));
      return;
    }
    const best = this.bestByZone.get(zone);
    if (best === undefined || later(text, best, zone.length)) this.bestByZone.set(zone, copyOf(text));
  }

  /** Every candidate for the newest: one per zone text, and all the others. */
  candidates(): string[] {
    return [...this.bestByZone.values(), ...this.others];
  }
}

/**
 * The zone text of a timestamp in the form above, or undefined for another
 * form. isTimestampText has already checked the digits and ranges.
 */
function zoneOf(text: string): string | undefined {
  if (text.length < 20) return undefined;
  const sep = text.charCodeAt(10);
  if (sep !== 84 /* T */ && sep !== 32 /* space */) return undefined;
  if (text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined;
  let i = 19;
  if (text.charCodeAt(i) === 46 /* . */) {
    i++;
    while (i < text.length && isDigit(text.charCodeAt(i))) i++;
  }
  const zone = text.slice(i);
  return zone === 'Z' || /^[+-]\d\d(:?\d\d)?$/.test(zone) ? zone : undefined;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Whether a is later than b, both in the form above with the same zone text of `zoneLength` characters. */
function later(a: string, b: string, zoneLength: number): boolean {
  const headA = a.substring(11, 19);
  const headB = b.substring(11, 19);
  const dayA = a.substring(0, 10);
  const dayB = b.substring(0, 10);
  if (dayA !== dayB) return dayA > dayB;
  if (headA !== headB) return headA > headB;
  return fraction(a, zoneLength) > fraction(b, zoneLength);
}

/** The fraction of a second as 9 digits ("" for none). */
function fraction(text: string, zoneLength: number): string {
  const end = text.length - zoneLength;
  return end <= 20 ? '' : text.slice(20, end).padEnd(9, '0');
}

/** A string of its own: not a slice that keeps its input line alive. */
function copyOf(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
