/**
 * Reads what it can of the start of a JSON object: the string values of its
 * members, by dotted path ("type", "record.stream"), up to where the text is
 * cut. A line longer than max_record_bytes is kept only as its first bytes
 * (src/input/lines.ts); this tells which record or message it was (its id, its
 * type and stream) when the sender wrote those members first, as taps and
 * sources do. Anything it cannot read ends the scan: the caller then knows
 * less, never something wrong.
 */
export function leadingStrings(text: string): Map<string, string> {
  const found = new Map<string, string>();
  // The key each open container sits under ('' for the outermost, '[]' inside an array).
  const stack: { key: string; array: boolean }[] = [];
  let key: string | undefined;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end === -1) break;
      let s: string;
      try {
        s = JSON.parse(text.slice(i, end)) as string;
      } catch {
        break;
      }
      i = skipSpace(text, end);
      const top = stack.at(-1);
      if (text[i] === ':' && top && !top.array) {
        key = s;
        i++;
      } else if (top && !top.array && key !== undefined) {
        found.set([...stack.slice(1).map((e) => e.key), key].join('.'), s);
      }
      continue;
    }
    if (c === '{' || c === '[') {
      const top = stack.at(-1);
      stack.push({ key: top?.array ? '[]' : (key ?? ''), array: c === '[' });
      key = undefined;
    } else if (c === '}' || c === ']') {
      stack.pop();
      key = undefined;
    } else if (c === ',') {
      key = undefined;
    }
    i++;
  }
  return found;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  return i;
}

/** Index just past the string literal whose opening quote is at `i`, or -1 when the text ends first. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j + 1;
  }
  return -1;
}
