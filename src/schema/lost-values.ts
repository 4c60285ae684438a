import { escapeLiteral } from 'pg';
import { PGLAND_COLUMNS as P, type ColumnDef } from '../catalog/definition.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';

/**
 * The run an evolution belongs to, read by the statements of the lost-values
 * step. A session setting rather than a literal, so that `pgland plan` prints
 * the statements the run executes, word for word; evolveTable sets it.
 */
export const RUN_SETTING = 'pgland.run_id';
const RUN_ID = `current_setting(${escapeLiteral(RUN_SETTING)})::uuid`;

/** One typed column an evolution recomputes with a `_pgland_cast_*` function. */
export interface Recomputed {
  column: ColumnDef;
  /** The value re-landed, as jsonb, from the old row `old`. */
  value: string;
  /** Whether the raw payload keeps the value (declared objects) or the old column was its only copy (common objects). */
  inRaw: boolean;
  /** The old row's column of that name, when the table had one. */
  oldColumn: string | null;
  /** The cast function that returns NULL for a value that does not fit. */
  cast: string;
}

/** At most 60 characters, as valueExcerpt() writes them at load time. */
const EXCERPT = `CASE WHEN length(lost.v_text) > 60 THEN left(lost.v_text, 57) || '...' ELSE lost.v_text END`;

/**
 * The statements that note, before a rebuild re-lands the rows (or a new
 * column is backfilled), every value that its column's type cannot take: one
 * row of _pgland_problems each, for the run, with the tenant in the reason
 * (a rebuild re-lands every tenant's rows), and the run's problems counter.
 * Set-based: one INSERT … SELECT that reads the old table once, each row
 * turned into one candidate per recomputed column.
 *
 * Noted: a value present (not JSON null, not "", which load as NULL without a
 * problem) whose cast gives NULL, unless the old column already held NULL for
 * it (that value did not fit before either and was noted by its own run).
 * jsonb columns take any value. The line numbers are -1, -2, …: these values
 * are not lines of the run's input.
 */
export function lostValuesStatements(schema: string, table: string, recomputed: Recomputed[], what: string): string[] {
  const checked = recomputed.filter((r) => r.column.type !== 'jsonb');
  if (checked.length === 0) return [];
  const candidates = checked.map((r) => {
    const kept = r.inRaw ? 'the raw payload keeps it' : 'it was in the old column only: a full refresh sends it again';
    const why = `${what}: the value does not fit the column's type ${r.column.type}; ${kept}`;
    return `(${escapeLiteral(r.column.source.key.replace(/\0/g, ''))}, ${escapeLiteral(r.column.name)}, ${escapeLiteral(why)}, ${r.value})`;
  });
  // Per column: its cast, and whether the old column held a value.
  const fits = checked.map(
    (r) => `WHEN ${escapeLiteral(r.column.name)} THEN ${r.cast}(cand.v) IS NULL${r.oldColumn ? ` AND old.${q(r.oldColumn)} IS NOT NULL` : ''}`,
  );
  return [
    `INSERT INTO ${qualify(schema, '_pgland_problems')} (run_id, line_number, record_id, field, column_name, reason, value_excerpt)
SELECT ${RUN_ID}, -row_number() OVER (ORDER BY lost.column_name, lost.provider, lost.customer_id, lost.record_id),
       lost.record_id, lost.field, lost.column_name,
       lost.why || format(' (provider %s, customer %s)', lost.provider, lost.customer_id), ${EXCERPT}
FROM (
  SELECT old."id" AS record_id, old.${q(P.provider)} AS provider, old.${q(P.customerId)} AS customer_id, cand.field, cand.column_name, cand.why,
         CASE jsonb_typeof(cand.v) WHEN 'string' THEN cand.v #>> '{}' ELSE cand.v::text END AS v_text
    FROM ${qualify(schema, table)} AS old
   CROSS JOIN LATERAL (VALUES
     ${candidates.join(',\n     ')}
   ) AS cand (field, column_name, why, v)
   WHERE jsonb_typeof(cand.v) <> 'null' AND cand.v <> '""'::jsonb
     AND CASE cand.column_name
       ${fits.join('\n       ')}
     END
) AS lost`,
    `UPDATE ${qualify(schema, '_pgland_runs')}
   SET problems = problems + (SELECT count(*) FROM ${qualify(schema, '_pgland_problems')} WHERE run_id = ${RUN_ID} AND line_number < 0)
 WHERE run_id = ${RUN_ID}`,
  ];
}
