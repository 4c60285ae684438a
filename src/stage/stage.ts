import { createHash } from 'node:crypto';
import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { qualify, quoteIdent } from '../sql/ident.js';

/** The staging table lives in the session's temp schema and is dropped at commit. */
export const STAGE_TABLE = '_pgland_stage';
/** The input line a staged row came from: ties within a batch go to the later line. */
export const LINE_COLUMN = '_pgland_line';
/** In a staging table filled with landed-format rows: the order the rows came in. */
const ORDINAL_COLUMN = '_pgland_ord';

interface Column {
  name: string;
  type: string;
}

/** The record's own fields in the order encodeRecord writes them, after the lead. */
function recordColumns(def: ObjectDef): Column[] {
  return [
    { name: 'id', type: 'text' },
    { name: P.lastModifiedAt, type: 'timestamptz' },
    { name: P.isDeleted, type: 'boolean' },
    { name: P.rawData, type: 'jsonb' },
    ...def.columns.map((c) => ({ name: c.name, type: c.type })),
  ];
}

/**
 * Staging rows lead with the input line number; landed rows (a first load's
 * COPY straight into the landed table) with the tenant and the run. The
 * landed table fills _pgland_landed_at from its default, now(), as the merge
 * does; _pgland_deleted_at is set after the COPY (see load/batch.ts).
 */
const STAGE_LEAD: Column[] = [{ name: LINE_COLUMN, type: 'bigint' }];
const LANDED_LEAD: Column[] = [
  { name: P.provider, type: 'text' },
  { name: P.customerId, type: 'text' },
  { name: P.runId, type: 'uuid' },
];

export type RowFormat = 'stage' | 'landed';

function columns(def: ObjectDef, format: RowFormat): Column[] {
  return [...(format === 'stage' ? STAGE_LEAD : LANDED_LEAD), ...recordColumns(def)];
}

const columnList = (cols: Column[]): string => cols.map((c) => quoteIdent(c.name)).join(', ');

/**
 * CREATE TEMP TABLE … ON COMMIT DROP for rows of either format. Landed-format
 * rows (a first-load batch replayed through the merge) get their line numbers
 * afterwards from their order (see numberLinesSql), so that the merge reads
 * both kinds of staging table alike.
 */
export function createStageSql(def: ObjectDef, format: RowFormat = 'stage'): string {
  const cols = columns(def, format).map((c) => `${quoteIdent(c.name)} ${c.type}`);
  if (format === 'landed') {
    cols.push(`${quoteIdent(ORDINAL_COLUMN)} integer GENERATED ALWAYS AS IDENTITY`, `${quoteIdent(LINE_COLUMN)} bigint`);
  }
  return `CREATE TEMP TABLE ${quoteIdent(STAGE_TABLE)} (\n  ${cols.join(',\n  ')}\n) ON COMMIT DROP`;
}

/**
 * A staging table a connection keeps from one transaction to the next,
 * emptied at every COMMIT, for small sets landed often (write-through):
 * creating and dropping a temporary table writes the system catalogs, and
 * that was a third of a one-record write-through's time. Named after its
 * columns, so that an object whose columns changed gets another one; created
 * in every transaction if missing (through a transaction-mode pooler the
 * next transaction may run on another server connection). Returns the
 * statement and the table, qualified.
 */
export function reusableStageSql(def: ObjectDef): { text: string; table: string } {
  const cols = columns(def, 'stage').map((c) => `${quoteIdent(c.name)} ${c.type}`);
  const name = `${STAGE_TABLE}_${createHash('sha256').update(cols.join(','), 'utf8').digest('hex').slice(0, 16)}`;
  const table = `pg_temp.${quoteIdent(name)}`;
  return { text: `CREATE TEMP TABLE IF NOT EXISTS ${table} (\n  ${cols.join(',\n  ')}\n) ON COMMIT DELETE ROWS`, table };
}

/** COPY into the staging table (`table`: a run's own, qualified and quoted, instead of the temp table). */
export function copyStageSql(def: ObjectDef, format: RowFormat = 'stage', table = quoteIdent(STAGE_TABLE)): string {
  return `COPY ${table} (${columnList(columns(def, format))}) FROM STDIN`;
}

/**
 * The two staging tables of a pipelined run (load/pipeline.ts, and a load
 * into an own table, into/run.ts), in pgland's schema: regular
 * tables, since a batch is staged on one connection and merged on another,
 * UNLOGGED (a staged batch needs no crash safety: its rows are kept until it
 * commits) and without autovacuum (they are emptied by every merge).
 */
export function pipelineStageTables(schema: string, runId: string): [string, string] {
  const base = `_pgland_pipe_${runId.replace(/-/g, '')}`;
  return [qualify(schema, `${base}_0`), qualify(schema, `${base}_1`)];
}

/** The name pattern of pipelined runs' staging tables, for LIKE (see finish.ts). */
export const PIPELINE_STAGE_PATTERN = '\\_pgland\\_pipe\\_%';

export function createPipelineStageSql(table: string, def: ObjectDef): string {
  return createUnloggedStageSql(
    table,
    columns(def, 'stage').map((c) => `${quoteIdent(c.name)} ${c.type}`),
  );
}

/** A pipelined run's staging table with these column definitions (a load into an own table has its own, src/into/stage.ts). */
export function createUnloggedStageSql(table: string, cols: string[]): string {
  return `CREATE UNLOGGED TABLE ${table} (\n  ${cols.join(',\n  ')}\n) WITH (autovacuum_enabled = false)`;
}

/** COPY of landed-format rows straight into the landed table. */
export function copyLandedSql(schema: string, def: ObjectDef): string {
  return `COPY ${qualify(schema, def.table)} (${columnList(columns(def, 'landed'))}) FROM STDIN`;
}

/** Gives landed-format staged rows their input line numbers ($1: the batch's line numbers in row order). */
export function numberLinesSql(): string {
  return `UPDATE ${quoteIdent(STAGE_TABLE)} SET ${quoteIdent(LINE_COLUMN)} = ($1::bigint[])[${quoteIdent(ORDINAL_COLUMN)}]`;
}
