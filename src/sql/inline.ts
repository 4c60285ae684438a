import { quoteLiteral } from './ident.js';

/**
 * A parameterised statement as SQL text with its values written in, for a
 * simple query that sends several statements in one round trip (the
 * extended protocol takes one statement a message). Every value goes through
 * quoteLiteral as an untyped literal, which takes its type from its context
 * as an untyped $n parameter does: the statement means what it meant with
 * parameters. Only scalars: a value of another kind is a programming error.
 */
export function inlineParams(q: { text: string; values?: readonly unknown[] }): string {
  const values = q.values ?? [];
  return q.text.replace(/\$(\d+)/g, (_, n: string) => literalOf(values[Number(n) - 1], Number(n)));
}

function literalOf(v: unknown, n: number): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return quoteLiteral(v);
  if (typeof v === 'number' && Number.isFinite(v)) return quoteLiteral(String(v));
  if (typeof v === 'boolean') return v ? "'true'" : "'false'";
  if (v instanceof Date) return quoteLiteral(v.toISOString());
  throw new Error(`parameter $${n} cannot be written into SQL text: ${typeof v}`);
}
