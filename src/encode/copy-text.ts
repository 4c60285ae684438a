/**
 * The encoder for COPY's text format: the only place where values become bytes
 * for the server. NULL is `\N`; a backslash, tab, newline and carriage return
 * are escaped; NUL cannot be stored in text or jsonb by PostgreSQL and is
 * stripped (and counted by the caller through `EncodeStats`).
 */

export interface EncodeStats {
  /** NUL characters removed from text and JSON values. */
  nulStripped: number;
  /** Lone UTF-16 surrogates replaced by U+FFFD. */
  surrogatesReplaced: number;
}

// Node 20 has String.prototype.isWellFormed (ES2024); the ES2023 lib this
// project compiles against does not declare it.
declare global {
  interface String {
    isWellFormed(): boolean;
  }
}

export function newEncodeStats(): EncodeStats {
  return { nulStripped: 0, surrogatesReplaced: 0 };
}

const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const ESCAPES = /[\\\t\n\r\0]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Escapes one text value for COPY. Lone surrogates would become U+FFFD when the
 * string is written as UTF-8 anyway; replacing them here lets us count them.
 */
export function copyText(value: string, stats: EncodeStats): string {
  // isWellFormed() is native and much cheaper than the regex on the common path.
  if (!value.isWellFormed()) {
    value = value.replace(LONE_SURROGATE, () => {
      stats.surrogatesReplaced++;
      return '\uFFFD';
    });
  }
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(ESCAPES, (ch) => {
    switch (ch) {
      case '\\':
        return '\\\\';
      case '\t':
        return '\\t';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      default:
        stats.nulStripped++;
        return '';
    }
  });
}

// An escape sequence in JSON text that jsonb refuses: \u0000, or a surrogate
// (JSON.stringify escapes only lone surrogates; pairs are emitted as is). The
// lookbehind makes sure the backslash is not itself escaped (`\\u0000` is a
// backslash followed by "u0000").
const BAD_JSON_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})/g;

/**
 * Serialises a value to JSON text that jsonb accepts: `\u0000` escapes are
 * removed and escaped lone surrogates become U+FFFD.
 */
export function jsonText(value: unknown, stats: EncodeStats): string {
  return fixEscapes(JSON.stringify(value), stats);
}

function fixEscapes(text: string, stats: EncodeStats): string {
  if (!text.includes('\\u')) return text;
  return text.replace(BAD_JSON_ESCAPE, (_m, slashes: string, code: string) => {
    if (code === '0000') {
      stats.nulStripped++;
      return slashes;
    }
    stats.surrogatesReplaced++;
    return slashes + '\\ufffd';
  });
}

/** JSON text needs only its backslashes doubled for COPY: JSON escapes control characters itself. */
export function copyJson(value: unknown, stats: EncodeStats): string {
  const text = JSON.stringify(value);
  // Without a backslash there is no escape to fix nor to double: one scan instead of two.
  if (!text.includes('\\')) return text;
  return fixEscapes(text, stats).replace(/\\/g, '\\\\');
}

/** One COPY row from already-encoded fields (null means SQL NULL), after `lead` (encoded fields ending in a tab). */
export function copyRow(fields: readonly (string | null)[], lead = ''): string {
  let row = lead;
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) row += '\t';
    const f = fields[i];
    row += f === null || f === undefined ? '\\N' : f;
  }
  return row + '\n';
}
