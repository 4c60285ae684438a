/**
 * The newest last-modified time of a batch that skips the staging table (a
 * first load COPYed straight into the landed table), found while the rows are
 * encoded, since no merge statement computes it.
 *
 * Timestamps in the common form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` compare as
 * text (fixed-width fields, with the fraction compared digit by digit); any
 * other form (an offset, no seconds, a date alone, lower-case letters) is kept
 * aside and compared by the server, in the session's time zone, as the merge
 * would.
 */
export class LatestTimestamp {
  private best: string | undefined;
  private readonly others = new Set<string>();

  observe(text: string): void {
    if (!isCanonical(text)) {
      this.others.add(text);
      return;
    }
    if (this.best === undefined || later(text, this.best)) this.best = text;
  }

  /** Every candidate for the newest: at most one in the common form, and all the others. */
  candidates(): string[] {
    return this.best === undefined ? [...this.others] : [this.best, ...this.others];
  }
}

function isCanonical(text: string): boolean {
  // isTimestampText has already checked the digits and ranges: 20 characters
  // or more, a T and a Z make the form above, seconds included.
  return text.length >= 20 && text.charCodeAt(10) === 84 /* T */ && text.endsWith('Z');
}

/** Whether canonical timestamp a is later than b. */
function later(a: string, b: string): boolean {
  const headA = a.substring(0, 19);
  const headB = b.substring(0, 19);
  if (headA !== headB) return headA > headB;
  return fraction(a) > fraction(b);
}

/** The fraction of a second as 9 digits ("" for none). */
function fraction(text: string): string {
  return text.length === 20 ? '' : text.slice(20, -1).padEnd(9, '0');
}
