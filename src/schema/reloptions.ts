import { escapeLiteral } from 'pg';
import { quoteIdent as q } from '../sql/ident.js';

// A view's options (security_barrier, security_invoker, check_option) and a
// table's storage parameters are kept as pg_class has them, and given back
// verbatim when the relation is created again.

/** `name = 'value', …` from pg_class.reloptions entries ("name=value"), for WITH (…) or SET (…). */
export function reloptionList(options: string[]): string {
  return options
    .map((o) => {
      const eq = o.indexOf('=');
      return `${q(o.slice(0, eq))} = ${escapeLiteral(o.slice(eq + 1))}`;
    })
    .join(', ');
}
