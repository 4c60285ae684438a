/**
 * Turns a request's schema error (ajv's, through fastify) into a sentence a
 * developer can act on: the unknown key with the known one it resembles, an
 * enum's allowed values. Never the refused value itself: it may be a secret.
 */

interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  parentSchema?: { properties?: Record<string, unknown> };
}

/** Edit distance, for "did you mean": keys are short, a table per call is cheap. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The known key nearest to `key`, when it is near enough to be a typo. */
export function nearest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

const shown = (text: string): string => JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);

/** One sentence for the first schema error of a request's `where` (body, querystring, params). */
export function describeSchemaError(where: string, errors: readonly SchemaError[]): string | undefined {
  const e = errors[0];
  if (!e) return undefined;
  const at = `${where}${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'additionalProperties') {
    const key = String(e.params.additionalProperty);
    const known = Object.keys(e.parentSchema?.properties ?? {});
    const near = nearest(key, known);
    if (near) return `unknown key ${shown(key)} in ${at}; did you mean ${shown(near)}?`;
    return `unknown key ${shown(key)} in ${at}${known.length ? `; known keys: ${known.join(', ')}` : ''}`;
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params.allowedValues as unknown[] | undefined) ?? [];
    return `${at} must be one of: ${allowed.map((v) => String(v)).join(', ')}`;
  }
  return `${at} ${e.message ?? 'is not valid'}`;
}
