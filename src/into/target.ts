import type pg from 'pg';
import { PglandError } from '../errors.js';
import { qualify } from '../sql/ident.js';

/**
 * The customer's own table as the catalog describes it: what pgland needs to
 * check a mapping before reading any record. pgland never creates, alters or
 * drops such a table; it only reads its catalog entries.
 */

export interface TableName {
  schema: string;
  table: string;
}

export interface TableColumn {
  name: string;
  attnum: number;
  /** The type, schema-qualified and quoted part by part (for casts). */
  castType: string;
  /** format_type's spelling, for messages. */
  display: string;
  typname: string;
  /** pg_type.typcategory: N numeric, S string, B boolean, D date/time, A array, U user (json, uuid), E enum, … */
  category: string;
  notNull: boolean;
  /** 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT, '' not an identity. */
  identity: string;
  generated: boolean;
  hasDefault: boolean;
  canInsert: boolean;
  canUpdate: boolean;
  canSelect: boolean;
}

export interface UniqueKey {
  name: string;
  columns: string[];
  primary: boolean;
}

export interface TableInfo extends TableName {
  oid: number;
  relkind: string;
  qualified: string;
  columns: TableColumn[];
  /** Unique indexes that ON CONFLICT can use: valid, not partial, no expressions, not deferrable. */
  uniqueKeys: UniqueKey[];
  canDelete: boolean;
  schemaUsage: boolean;
  /** Foreign keys of this table: local column → referenced table oid and column. */
  foreignKeys: { name: string; columns: string[]; refOid: number; refColumns: string[] }[];
}

/**
 * Reads SCHEMA.TABLE as SQL does: a part in double quotes is taken exactly
 * ("" stands for one quote), an unquoted part is folded to lower case. A name
 * without a schema is in public.
 */
export function parseTableName(text: string, what = '--into'): TableName {
  const parts: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new PglandError('target_invalid', `${what} ${JSON.stringify(text)}: ${why}`, {
      hint: 'give SCHEMA.TABLE, e.g. public.leads; quote a part that has capitals, dots or spaces: \'"My Schema"."Leads"\'',
    });
  };
  while (i <= text.length) {
    let part = '';
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) fail('a quoted name is not closed');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i++;
            continue;
          }
          i++;
          break;
        }
        part += text[i];
      }
    } else {
      const end = text.indexOf('.', i);
      part = text.slice(i, end === -1 ? text.length : end).toLowerCase();
      if (part.includes('"')) fail('a double quote may only open or close a quoted part');
      i = end === -1 ? text.length : end;
    }
    if (part.length === 0) fail('a name part is empty');
    if (part.includes('\0')) fail('a name contains a NUL character');
    parts.push(part);
    if (i >= text.length) break;
    if (text[i] !== '.') fail('expected a dot after a quoted part');
    i++;
    if (i >= text.length) fail('the name ends with a dot');
  }
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length !== 2) fail('expected SCHEMA.TABLE');
  return { schema: parts[0]!, table: parts[1]! };
}

export function displayName(t: TableName): string {
  return qualify(t.schema, t.table);
}

/** The table's catalog entries, or undefined when there is no such table. */
export async function describeTable(client: pg.ClientBase, name: TableName): Promise<TableInfo | undefined> {
  const { rows } = await client.query<{ oid: number; relkind: string; usage: boolean; can_delete: boolean }>(
    `SELECT c.oid::int AS oid, c.relkind::text AS relkind, has_schema_privilege(n.oid, 'USAGE') AS usage,
            has_table_privilege(c.oid, 'DELETE') AS can_delete
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [name.schema, name.table],
  );
  const rel = rows[0];
  if (!rel) return undefined;
  const columns = await client.query(
    `SELECT a.attnum::int AS attnum, a.attname AS name, a.attnotnull AS not_null, a.attidentity::text AS identity,
            a.attgenerated::text <> '' AS generated, a.atthasdef AS has_default,
            t.typname, tn.nspname AS typschema, t.typcategory::text AS category, format_type(a.atttypid, a.atttypmod) AS display,
            has_column_privilege(a.attrelid, a.attnum, 'INSERT') AS can_insert,
            has_column_privilege(a.attrelid, a.attnum, 'UPDATE') AS can_update,
            has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS can_select
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [rel.oid],
  );
  const cols: TableColumn[] = columns.rows.map((r) => ({
    name: r.name,
    attnum: r.attnum,
    castType: qualify(r.typschema, r.typname),
    display: r.display,
    typname: r.typname,
    category: r.category,
    notNull: r.not_null,
    identity: r.identity,
    generated: r.generated,
    hasDefault: r.has_default,
    canInsert: r.can_insert,
    canUpdate: r.can_update,
    canSelect: r.can_select,
  }));
  const byNum = new Map(cols.map((c) => [c.attnum, c.name]));
  const keys = await client.query<{ name: string; keys: number[]; primary: boolean }>(
    `SELECT ic.relname AS name, i.indkey::int2[]::int[] AS keys, i.indisprimary AS primary
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = $1 AND i.indisunique AND i.indimmediate AND i.indisvalid
        AND i.indpred IS NULL AND i.indexprs IS NULL
      ORDER BY i.indisprimary DESC, ic.relname`,
    [rel.oid],
  );
  const fks = await client.query<{ name: string; conkey: number[]; confrelid: number; ref_columns: string[] }>(
    `SELECT con.conname AS name, con.conkey::int[] AS conkey, con.confrelid::int AS confrelid,
            ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS ref_columns
       FROM pg_constraint con WHERE con.conrelid = $1 AND con.contype = 'f'`,
    [rel.oid],
  );
  return {
    ...name,
    oid: rel.oid,
    relkind: rel.relkind,
    qualified: displayName(name),
    columns: cols,
    uniqueKeys: keys.rows.map((k) => ({ name: k.name, columns: k.keys.map((n) => byNum.get(n) ?? '?'), primary: k.primary })),
    canDelete: rel.can_delete,
    schemaUsage: rel.usage,
    foreignKeys: fks.rows.map((f) => ({ name: f.name, columns: f.conkey.map((n) => byNum.get(n) ?? '?'), refOid: f.confrelid, refColumns: f.ref_columns })),
  };
}
