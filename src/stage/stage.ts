import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { quoteIdent } from '../sql/ident.js';

/** The staging table lives in the session's temp schema and is dropped at commit. */
export const STAGE_TABLE = '_pgland_stage';
/** The input line a staged row came from: ties within a batch go to the later line. */
export const LINE_COLUMN = '_pgland_line';

function stageColumns(def: ObjectDef): { name: string; type: string }[] {
  return [
    { name: LINE_COLUMN, type: 'bigint' },
    { name: 'id', type: 'text' },
    { name: P.lastModifiedAt, type: 'timestamptz' },
    { name: P.isDeleted, type: 'boolean' },
    { name: P.rawData, type: 'jsonb' },
    ...def.columns.map((c) => ({ name: c.name, type: c.type })),
  ];
}

/** CREATE TEMP TABLE … ON COMMIT DROP, in the column order that encodeRecord writes. */
export function createStageSql(def: ObjectDef): string {
  const cols = stageColumns(def).map((c) => `${quoteIdent(c.name)} ${c.type}`);
  return `CREATE TEMP TABLE ${quoteIdent(STAGE_TABLE)} (\n  ${cols.join(',\n  ')}\n) ON COMMIT DROP`;
}

export function copyStageSql(def: ObjectDef): string {
  const cols = stageColumns(def).map((c) => quoteIdent(c.name));
  return `COPY ${quoteIdent(STAGE_TABLE)} (${cols.join(', ')}) FROM STDIN`;
}
