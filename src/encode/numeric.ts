/*
 * The limits of PostgreSQL's numeric, checked on number text before it goes
 * to the server: a typed numeric column (values.ts) and a number inside JSON
 * text landed as sent (copy-text.ts) must never fail a COPY.
 */

// Each part is followed by something it cannot contain, so a failed match is
// linear in the length of the text (a 10 MB string of digits ending in "x" must
// not take quadratic time). The exponent is at most 9 digits, so it is exact.
const NUMERIC_TEXT = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,9}))?$/;

/** Digits before the decimal point and after it that numeric can hold. */
const NUMERIC_MAX_WEIGHT = 131072;
const NUMERIC_MAX_SCALE = 16383;
// Older PostgreSQL releases refuse an exponent beyond ±1000 (NUMERIC_MAX_PRECISION)
// even when the value fits; refuse it everywhere, the same on every server.
const NUMERIC_MAX_EXPONENT = 1000;

/** The problem of text that is not written as a number at all (a type mismatch rather than a range problem). */
export const NOT_A_NUMBER = 'is not a number';

/** Index of the first character of `digits` that is not "0", or its length. */
export function firstNonZero(digits: string): number {
  let i = 0;
  while (i < digits.length && digits.charCodeAt(i) === 48) i++;
  return i;
}

/** Why numeric text does not fit PostgreSQL's numeric, or null when it does. */
export function numericProblem(text: string): string | null {
  const m = NUMERIC_TEXT.exec(text);
  const int = m?.[1] ?? '';
  const frac = m?.[2] ?? '';
  if (!m || int.length + frac.length === 0) return NOT_A_NUMBER;
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  if (exp > NUMERIC_MAX_EXPONENT || exp < -NUMERIC_MAX_EXPONENT) return `has an exponent beyond ±${NUMERIC_MAX_EXPONENT}`;
  if (int.length - firstNonZero(int) + exp > NUMERIC_MAX_WEIGHT) return 'is out of range for numeric';
  if (frac.length - exp > NUMERIC_MAX_SCALE) return 'has more decimal places than numeric holds';
  return null;
}
