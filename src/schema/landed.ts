import { PGLAND_COLUMNS as P, type ObjectDef } from '../catalog/definition.js';
import { fitIdent, qualify, quoteIdent } from '../sql/ident.js';

/**
 * The landed table: the key first (provider, customer, id), then the object's
 * typed columns, then pgland's own bookkeeping columns. Every name goes
 * through quoteIdent: object and field names come from the platform and may
 * be anything (docs/landed-tables.md, "Names").
 */
export function createLandedTableSql(schema: string, def: ObjectDef, table: string = def.table): string {
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
    // Named, not left to the server: a rebuild renames it along with the table.
    `CONSTRAINT ${quoteIdent(primaryKeyName(table))} PRIMARY KEY (${quoteIdent(P.provider)}, ${quoteIdent(P.customerId)}, ${quoteIdent('id')})`,
  ];
  return `CREATE TABLE IF NOT EXISTS ${qualify(schema, table)} (\n  ${lines.join(',\n  ')}\n)`;
}

/** The primary key constraint's name for a table, within 63 bytes. */
export function primaryKeyName(table: string): string {
  return fitIdent(`${table}_pkey`);
}
