import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { qualify, quoteIdent } from '../sql/ident.js';

/**
 * The landed table: the key first (provider, customer, id), then the object's
 * typed columns, then pgland's own bookkeeping columns. Every name goes
 * through quoteIdent: object and field names come from the platform and may
 * be anything (docs/landed-tables.md, "Names").
 */
export function createLandedTableSql(schema: string, def: ObjectDef): string {
  const lines = [
    `${quoteIdent(P.provider)} text NOT NULL`,
    `${quoteIdent(P.customerId)} text NOT NULL`,
    `${quoteIdent('id')} text NOT NULL`,
    ...def.columns.map((c) => `${quoteIdent(c.name)} ${c.type}`),
    `${quoteIdent(P.landedAt)} timestamptz NOT NULL DEFAULT now()`,
    `${quoteIdent(P.lastModifiedAt)} timestamptz NOT NULL`,
    `${quoteIdent(P.isDeleted)} boolean NOT NULL DEFAULT false`,
    `${quoteIdent(P.deletedAt)} timestamptz`,
    `${quoteIdent(P.runId)} uuid`,
    `${quoteIdent(P.rawData)} jsonb`,
    `PRIMARY KEY (${quoteIdent(P.provider)}, ${quoteIdent(P.customerId)}, ${quoteIdent('id')})`,
  ];
  return `CREATE TABLE IF NOT EXISTS ${qualify(schema, def.table)} (\n  ${lines.join(',\n  ')}\n)`;
}
