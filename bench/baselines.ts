import { PGLAND_COLUMNS as P } from '../src/catalog/definition.js';
import { createLandedTableSql } from '../src/schema/landed.js';
import { qualify, quoteIdent as q } from '../src/sql/ident.js';
import { CONTACTS, CSV_COLUMNS } from './csv.js';
import { literal } from './psql.js';

/** Provider, customer and run id that every contender lands under. */
export const TENANT = { provider: 'salesforce', customerId: 'bench', runId: '00000000-0000-4000-8000-000000000000' };

/** SQL that (re)creates a schema holding an empty table shaped like pgland's landed crm_contacts. */
export function landedTableSql(schema: string): string[] {
  return [`DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`, `CREATE SCHEMA ${q(schema)}`, createLandedTableSql(schema, CONTACTS)];
}

/** For A: provider and customer come from column defaults, so the CSV holds exactly what the NDJSON holds. */
export function tenantDefaultsSql(schema: string): string {
  return (
    `ALTER TABLE ${qualify(schema, CONTACTS.table)} ALTER COLUMN ${q(P.provider)} SET DEFAULT ${literal(TENANT.provider)},` +
    ` ALTER COLUMN ${q(P.customerId)} SET DEFAULT ${literal(TENANT.customerId)}`
  );
}

/** A: the physical limit. One \copy of the CSV into the landed-shaped table (same columns, same primary key). */
export function copyScriptA(schema: string, csvPath: string): string {
  return `\\copy ${qualify(schema, CONTACTS.table)} (${CSV_COLUMNS.map(q).join(', ')}) FROM ${literal(csvPath)} WITH (FORMAT csv)\n`;
}

function stageColumns(): string {
  const types = new Map<string, string>([
    ['id', 'text'],
    ...CONTACTS.columns.map((c) => [c.name, c.type] as [string, string]),
    [P.lastModifiedAt, 'timestamptz'],
    [P.isDeleted, 'boolean'],
    [P.rawData, 'jsonb'],
  ]);
  return CSV_COLUMNS.map((c) => `${q(c)} ${types.get(c)!}`).join(', ');
}

/**
 * INSERT … SELECT … ON CONFLICT DO UPDATE from a staging table into the
 * landed-shaped table, with pgland's update rule: only a version at least as
 * new, and only when something differs. With `dedupBy` (a column ordering the
 * input), one row per id is kept first, as pgland's merge does.
 */
export function mergeStatement(schema: string, stage: string, dedupBy?: string): string {
  const table = qualify(schema, CONTACTS.table);
  const typed = CONTACTS.columns.map((c) => q(c.name));
  const business = ['"id"', ...typed];
  const compared = [...typed, q(P.isDeleted), q(P.rawData)];
  const updated = [...typed, q(P.landedAt), q(P.lastModifiedAt), q(P.isDeleted), q(P.runId), q(P.rawData)];
  const source = dedupBy ? `(SELECT DISTINCT ON ("id") * FROM ${q(stage)} ORDER BY "id", ${q(P.lastModifiedAt)} DESC, ${q(dedupBy)} DESC) AS s` : q(stage);
  return `INSERT INTO ${table} AS landed (
  ${q(P.provider)}, ${q(P.customerId)}, ${business.join(', ')},
  ${q(P.landedAt)}, ${q(P.lastModifiedAt)}, ${q(P.isDeleted)}, ${q(P.deletedAt)}, ${q(P.runId)}, ${q(P.rawData)})
SELECT ${literal(TENANT.provider)}, ${literal(TENANT.customerId)}, ${business.join(', ')},
  now(), ${q(P.lastModifiedAt)}, ${q(P.isDeleted)}, CASE WHEN ${q(P.isDeleted)} THEN now() END, ${literal(TENANT.runId)}::uuid, ${q(P.rawData)}
FROM ${source}
ON CONFLICT (${q(P.provider)}, ${q(P.customerId)}, "id") DO UPDATE SET
  ${updated.map((c) => `${c} = EXCLUDED.${c}`).join(', ')},
  ${q(P.deletedAt)} = CASE WHEN EXCLUDED.${q(P.isDeleted)} THEN coalesce(landed.${q(P.deletedAt)}, EXCLUDED.${q(P.deletedAt)}) END
WHERE landed.${q(P.lastModifiedAt)} <= EXCLUDED.${q(P.lastModifiedAt)}
  AND (${compared.map((c) => `landed.${c}`).join(', ')}) IS DISTINCT FROM (${compared.map((c) => `EXCLUDED.${c}`).join(', ')})`;
}

/**
 * B: the SQL-only floor for stage-and-merge. One transaction: \copy the whole
 * CSV into a temporary table, then one INSERT … SELECT … ON CONFLICT DO UPDATE
 * (mergeStatement). Unlike pgland it does not batch and does not dedup ids
 * within the input (the file has none to dedup).
 */
export function mergeScriptB(schema: string, csvPath: string): string {
  return `BEGIN;
CREATE TEMP TABLE bench_stage (${stageColumns()}) ON COMMIT DROP;
\\copy bench_stage FROM ${literal(csvPath)} WITH (FORMAT csv)
${mergeStatement(schema, 'bench_stage')};
COMMIT;
`;
}
