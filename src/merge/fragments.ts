import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { LINE_COLUMN, STAGE_TABLE } from '../stage/stage.js';

export interface SqlQuery {
  text: string;
  values: unknown[];
}

export type WriteMode = 'upsert' | 'insert' | 'update' | 'delete';
export type DeleteMode = 'soft' | 'hard';

/** Everything a merge statement depends on. Parameters: $1 provider, $2 customer, $3 run id. */
export interface MergeOptions {
  schema: string;
  def: ObjectDef;
  provider: string;
  customerId: string;
  runId: string;
  write: WriteMode;
  deleteMode: DeleteMode;
  /** Records flagged deleted are skipped instead of applied (Grouparoo's Additive). */
  ignoreDeletes: boolean;
  /** update and delete modes match landed rows on this column ("id" by default). */
  matchColumn: string;
  /** A full refresh remembers every id it delivers, to delete the rest at the end. */
  trackSeen: boolean;
  /**
   * Where the batch was staged: the session's temp table by default; a run
   * that spans several requests (service mode) stages into a table of its own,
   * qualified by the caller (already quoted).
   */
  stageTable?: string;
  /**
   * The caller knows that no two staged records share an id: the batch needs
   * no "one version per key" step (a sort of every staged row).
   */
  distinctIds?: boolean;
}

/** The one row every merge statement returns. */
export interface MergeCounts {
  distinct_records: string;
  inserted: string;
  updated: string;
  deleted: string;
  undeleted: string;
  skipped: string;
  duplicates: string;
  max_lm: Date | null;
}

export const target = (o: MergeOptions): string => qualify(o.schema, o.def.table);
export const tenant = (alias: string): string => `${alias}.${q(P.provider)} = $1::text AND ${alias}.${q(P.customerId)} = $2::text`;
export const typedColumns = (o: MergeOptions): string[] => o.def.columns.map((c) => q(c.name));
/**
 * The columns whose change makes a row "updated"; landed-at and run id are not
 * content. The version's timestamp is: a newer but otherwise identical version
 * must still advance it, or a version from in between could later overwrite
 * the newest one (issue 2 regression).
 */
export const contentColumns = (o: MergeOptions): string[] => [...typedColumns(o), q(P.lastModifiedAt), q(P.isDeleted), q(P.rawData)];

/**
 * The staged batch, one version per key: the newest last-modified time, and on
 * a tie the later input line. A batch known to hold each id once is read as
 * it is, and not materialized: every reference scans the staging table, which
 * costs less than copying it.
 */
export function srcCte(o: MergeOptions, key: string): string {
  const stage = o.stageTable ?? q(STAGE_TABLE);
  if (o.distinctIds && key === 'id') return `src AS NOT MATERIALIZED (SELECT * FROM ${stage})`;
  return `src AS (
  SELECT DISTINCT ON (${q(key)}) *
  FROM ${stage}
  ORDER BY ${q(key)}, ${q(P.lastModifiedAt)} DESC, ${q(LINE_COLUMN)} DESC
)`;
}

/**
 * What the merge reports of the staged batch, in one pass over it: each
 * scalar subquery over src would scan the staging table again (two extra
 * scans per batch for count and max alone).
 */
export function stagedCte(): string {
  return `staged AS MATERIALIZED (
  SELECT count(*) AS records,
         count(*) FILTER (WHERE ${q(P.isDeleted)}) AS deleted_records,
         max(${q(P.lastModifiedAt)}) AS max_lm
  FROM src
)`;
}

/** INSERT INTO target (…) SELECT … FROM src (or another CTE of staged rows): a new landed row from a staged one. */
export function insertFromSrc(o: MergeOptions, where: string, from = 'src'): string {
  const business = ['id', ...o.def.columns.map((c) => c.name)].map(q);
  return `INSERT INTO ${target(o)} AS landed (
    ${q(P.provider)}, ${q(P.customerId)}, ${business.join(', ')},
    ${q(P.landedAt)}, ${q(P.lastModifiedAt)}, ${q(P.isDeleted)}, ${q(P.deletedAt)}, ${q(P.runId)}, ${q(P.rawData)}
  )
  SELECT $1::text, $2::text, ${business.join(', ')},
    now(), ${q(P.lastModifiedAt)}, ${q(P.isDeleted)},
    CASE WHEN ${q(P.isDeleted)} THEN now() END, $3::uuid, ${q(P.rawData)}
  FROM ${from}
  WHERE ${where}`;
}

/** SET list that makes a landed row the staged version (`from` is EXCLUDED or src). */
export function setFrom(o: MergeOptions, from: string): string {
  const cols = [...typedColumns(o), q(P.lastModifiedAt), q(P.isDeleted), q(P.rawData)];
  return [
    ...cols.map((c) => `${c} = ${from}.${c}`),
    `${q(P.landedAt)} = now()`,
    `${q(P.runId)} = $3::uuid`,
    // Keep the first deletion time when a deleted row is deleted again.
    `${q(P.deletedAt)} = CASE WHEN ${from}.${q(P.isDeleted)} THEN coalesce(landed.${q(P.deletedAt)}, now()) END`,
  ].join(',\n    ');
}

/** The guard on every change: never older over newer, never a no-op write. */
export function changeGuard(o: MergeOptions, from: string): string {
  const cols = contentColumns(o);
  return `landed.${q(P.lastModifiedAt)} <= ${from}.${q(P.lastModifiedAt)}
    AND (${cols.map((c) => `landed.${c}`).join(', ')})
        IS DISTINCT FROM (${cols.map((c) => `${from}.${c}`).join(', ')})`;
}

/** Which staged records a mode applies: with ignoreDeletes (or hard-delete upserts), deleted ones are handled apart. */
export function isDeleted(alias = ''): string {
  return `${alias ? alias + '.' : ''}${q(P.isDeleted)}`;
}
