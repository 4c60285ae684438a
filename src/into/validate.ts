import type pg from 'pg';
import { PglandError, type ErrorCode } from '../errors.js';
import { quoteIdent as q } from '../sql/ident.js';
import { isDeletedFlag, isLastModified, isServerNow, staticType, type Mapping, type ValueType } from './mapping.js';
import { describeTable, parseTableName, type TableColumn, type TableInfo, type TableName } from './target.js';

/**
 * Everything about a load into the customer's own table that can be checked
 * before a record is read: the table, pgland's privileges on it, every mapped
 * column and its type, the match column and its unique index, the groups
 * table. Each refusal names the column or table and the statement or change
 * that fixes it (exit code 2 on the command line).
 */

/** insert/update/upsert/delete act on every record; sync/additive/enrich are Grouparoo's sync modes. */
export type IntoWrite = 'insert' | 'update' | 'upsert' | 'delete' | 'sync' | 'additive' | 'enrich';

export interface GroupsRequest {
  table: string | TableName;
  /** The groups table's column that refers to a record (a foreign key to the records table). */
  keyColumn: string;
  /** The groups table's column holding a group's name. */
  nameColumn: string;
  /** Path in each record to its list of group names, e.g. data.groups. */
  from: string;
}

/** A mapped column, resolved against the table. */
export interface PlannedColumn {
  column: TableColumn;
  mapping: Mapping;
  /** Column of the staging table holding the mapped value as text (undefined for now(): the server's time). */
  stage?: string;
  /** json, xml, geometric types have no equality operator: compared as text. */
  compareAsText: boolean;
}

export interface GroupsPlan {
  table: TableInfo;
  key: TableColumn;
  name: TableColumn;
  /** The records table's column that the group key refers to. */
  ref: TableColumn;
  /** The path's expression, parsed. */
  from: Mapping['expr'];
  /** additive: group rows are only added; otherwise a record's group rows are made exactly its list. */
  exact: boolean;
}

export interface IntoPlan {
  table: TableInfo;
  write: IntoWrite;
  action: 'insert' | 'update' | 'upsert' | 'delete';
  columns: PlannedColumn[];
  match?: PlannedColumn;
  /** A column mapped from last_modified_at: a row is changed only by a version at least as new. */
  lastModified?: PlannedColumn;
  /** Records flagged is_deleted delete their row (upsert, sync); otherwise they are skipped, unless a column is mapped from is_deleted. */
  applyDeletes: boolean;
  skipDeleted: boolean;
  /** Columns returned for insertedId: the primary key, else the identity columns. */
  returning: string[];
  groups?: GroupsPlan;
}

function refuse(code: ErrorCode, message: string, hint: string, context: Record<string, unknown> = {}): PglandError {
  return new PglandError(code, message, { hint, context });
}

/** Which static value types each type category takes; 'any' (a path into data or raw_data) is checked per record. */
function accepts(category: string, typname: string, t: ValueType): boolean {
  if (t === 'any') return true;
  if (category === 'S' || typname === 'json' || typname === 'jsonb') return true;
  switch (category) {
    case 'N':
      return t === 'number';
    case 'B':
      return t === 'boolean';
    case 'D':
      return t === 'timestamp';
    case 'E':
    case 'U':
      return t === 'text';
    default:
      return t === 'text';
  }
}

const TEXT_COMPARED = new Set(['json', 'xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle']);

function grantHint(privileges: string, table: string, user: string): string {
  return `run as an owner of the table: GRANT ${privileges} ON TABLE ${table} TO ${q(user)};`;
}

async function existing(client: pg.ClientBase, name: TableName, what: string): Promise<TableInfo> {
  const info = await describeTable(client, name);
  if (!info) {
    throw refuse(
      'target_invalid',
      `${what} ${q(name.schema)}.${q(name.table)} does not exist`,
      'pgland writes only into a table you created: create it first, or check the schema and the spelling (unquoted names are folded to lower case)',
    );
  }
  if (info.relkind !== 'r' && info.relkind !== 'p') {
    throw refuse('target_invalid', `${what} ${info.qualified} is not a table (relkind ${info.relkind})`, 'give a table or a partitioned table');
  }
  return info;
}

function columnOf(t: TableInfo, name: string, role: string): TableColumn {
  const c = t.columns.find((x) => x.name === name);
  if (c) return c;
  throw refuse(
    'mapping_invalid',
    `${role} ${JSON.stringify(name)} is not a column of ${t.qualified}`,
    `its columns are: ${t.columns.map((x) => x.name).join(', ')} (names are case-sensitive)`,
    { column: name },
  );
}

const ACTIONS: Record<IntoWrite, IntoPlan['action']> = {
  insert: 'insert',
  update: 'update',
  upsert: 'upsert',
  delete: 'delete',
  sync: 'upsert',
  additive: 'upsert',
  enrich: 'update',
};

export interface IntoRequestShape {
  into: string | TableName;
  write: IntoWrite;
  match?: string;
  mappings: Mapping[];
  groups?: GroupsRequest;
  /** pgland's own schema: never a target. */
  pglandSchema: string;
}

export async function planInto(client: pg.ClientBase, req: IntoRequestShape, groupsFrom?: Mapping['expr']): Promise<IntoPlan> {
  const name = typeof req.into === 'string' ? parseTableName(req.into) : req.into;
  if (name.schema === req.pglandSchema && name.table.startsWith('_pgland_')) {
    throw refuse('target_invalid', `${q(name.schema)}.${q(name.table)} is pgland's own metadata`, 'give one of your tables');
  }
  const table = await existing(client, name, 'table');
  const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
  const user = rows[0]!.user;
  if (!table.schemaUsage) {
    throw refuse(
      'grant_missing',
      `pgland's user ${q(user)} may not use schema ${q(table.schema)}`,
      `run as its owner: GRANT USAGE ON SCHEMA ${q(table.schema)} TO ${q(user)};`,
    );
  }
  const action = ACTIONS[req.write];
  if (req.mappings.length === 0)
    throw refuse('mapping_invalid', 'no mappings given', 'map at least one column: --map column=path (e.g. --map email=data.email) or --mapping FILE');

  const seen = new Set<string>();
  const columns: PlannedColumn[] = req.mappings.map((m, i) => {
    if (seen.has(m.column)) throw refuse('mapping_invalid', `column ${JSON.stringify(m.column)} is mapped twice`, 'map each column once');
    seen.add(m.column);
    const column = columnOf(table, m.column, 'mapped column');
    if (column.generated)
      throw refuse(
        'mapping_invalid',
        `column ${q(column.name)} is a generated column: PostgreSQL computes it`,
        'remove its mapping; generated columns are never written',
      );
    if (column.identity === 'a' && (action === 'insert' || action === 'upsert' || (action === 'update' && column.name !== req.match))) {
      throw refuse(
        'mapping_invalid',
        `column ${q(column.name)} is GENERATED ALWAYS AS IDENTITY: it takes no written value`,
        `remove its mapping (its value comes from the identity), or: ALTER TABLE ${table.qualified} ALTER COLUMN ${q(column.name)} SET GENERATED BY DEFAULT;`,
      );
    }
    const t = staticType(m.expr);
    if (!accepts(column.category, column.typname, t)) {
      throw refuse(
        'mapping_invalid',
        `column ${q(column.name)} is ${column.display} and cannot take ${m.expr.text} (${t === 'number' ? 'a number' : t === 'boolean' ? 'a boolean' : t === 'timestamp' ? 'a timestamp' : 'text'})`,
        `map a value of that type (a path into data or raw_data is checked record by record), or change the column's type`,
        { column: column.name },
      );
    }
    return { column, mapping: m, ...(isServerNow(m.expr) ? {} : { stage: `_s${i}` }), compareAsText: TEXT_COMPARED.has(column.typname) };
  });

  let match: PlannedColumn | undefined;
  const needsMatch = action !== 'insert' || req.groups !== undefined;
  if (req.match !== undefined || needsMatch) {
    if (req.match === undefined)
      throw refuse(
        'mapping_invalid',
        `write mode ${req.write} needs a matching column`,
        'give --match COLUMN, a column mapped to the value that identifies a row (e.g. --match email with --map email=data.email)',
      );
    const col = columnOf(table, req.match, 'match column');
    match = columns.find((c) => c.column.name === col.name);
    if (!match || !match.stage)
      throw refuse('mapping_invalid', `match column ${q(col.name)} is not mapped to a value of the record`, `map it: --map ${col.name}=data.…`);
  }
  if (match && action === 'upsert' && !table.uniqueKeys.some((k) => k.columns.length === 1 && k.columns[0] === match!.column.name)) {
    throw refuse(
      'target_invalid',
      `upsert matches on ${q(match.column.name)}, which has no unique index: ON CONFLICT needs one`,
      `CREATE UNIQUE INDEX ON ${table.qualified} (${q(match.column.name)});`,
      { column: match.column.name },
    );
  }

  // Privileges, per column where PostgreSQL grants them per column.
  const writes = action === 'delete' ? [] : columns.filter((c) => c.column !== match?.column || action === 'insert' || action === 'upsert');
  const missing: string[] = [];
  if ((action === 'insert' || action === 'upsert') && writes.some((c) => !c.column.canInsert)) missing.push('INSERT');
  if ((action === 'update' || action === 'upsert') && writes.some((c) => c.column !== match?.column && !c.column.canUpdate)) missing.push('UPDATE');
  const deletes = action === 'delete' || ((req.write === 'upsert' || req.write === 'sync') && !columns.some((c) => isDeletedFlag(c.mapping.expr)));
  if (deletes && !table.canDelete) missing.push('DELETE');
  if (match && columns.some((c) => !c.column.canSelect)) missing.push('SELECT');
  if (missing.length > 0) {
    throw refuse(
      'grant_missing',
      `pgland's user ${q(user)} may not ${missing.join(', ')} on ${table.qualified}`,
      grantHint(missing.join(', '), table.qualified, user),
      { table: table.qualified },
    );
  }

  if (action === 'insert' || action === 'upsert') {
    const required = table.columns.filter((c) => c.notNull && !c.hasDefault && !c.identity && !c.generated && !seen.has(c.name));
    if (required.length > 0) {
      throw refuse(
        'mapping_invalid',
        `column ${q(required[0]!.name)} is NOT NULL, has no default and is not mapped: every insert would fail`,
        `map it (--map ${required[0]!.name}=…), or give it a default: ALTER TABLE ${table.qualified} ALTER COLUMN ${q(required[0]!.name)} SET DEFAULT …;`,
        { column: required[0]!.name },
      );
    }
  }

  const pk = table.uniqueKeys.find((k) => k.primary)?.columns ?? table.columns.filter((c) => c.identity).map((c) => c.name);
  const flagMapped = columns.some((c) => isDeletedFlag(c.mapping.expr));
  const applyDeletes = !flagMapped && (req.write === 'upsert' || req.write === 'sync');
  const plan: IntoPlan = {
    table,
    write: req.write,
    action,
    columns,
    ...(match ? { match } : {}),
    ...(() => {
      const lm = columns.find((c) => isLastModified(c.mapping.expr));
      return lm ? { lastModified: lm } : {};
    })(),
    applyDeletes,
    skipDeleted: !flagMapped && action !== 'delete' && !applyDeletes,
    returning: action === 'insert' ? pk : [],
  };
  if (req.groups && groupsFrom) plan.groups = await planGroups(client, req.groups, plan, user, groupsFrom);
  return plan;
}

async function planGroups(client: pg.ClientBase, g: GroupsRequest, plan: IntoPlan, user: string, from: Mapping['expr']): Promise<GroupsPlan> {
  const name = typeof g.table === 'string' ? parseTableName(g.table, '--groups-table') : g.table;
  const table = await existing(client, name, 'groups table');
  if (table.oid === plan.table.oid)
    throw refuse('target_invalid', 'the groups table is the records table', 'give the table that holds one row per (record, group)');
  const key = columnOf(table, g.keyColumn, 'group key column');
  const nameCol = columnOf(table, g.nameColumn, 'group column');
  if (!accepts(nameCol.category, nameCol.typname, 'text')) {
    throw refuse(
      'mapping_invalid',
      `group column ${q(nameCol.name)} is ${nameCol.display}; group names are text`,
      'use a text, varchar or enum column for group names',
    );
  }
  const fk = table.foreignKeys.find((f) => f.refOid === plan.table.oid && f.columns.length === 1 && f.columns[0] === key.name);
  const ref = fk ? columnOf(plan.table, fk.refColumns[0]!, 'referenced column') : plan.match!.column;
  if (ref.typname !== key.typname) {
    throw refuse(
      'target_invalid',
      `group key ${q(key.name)} is ${key.display} but refers to ${q(ref.name)} of ${plan.table.qualified}, which is ${ref.display}`,
      `give the group key the referenced column's type, or add the foreign key: ALTER TABLE ${table.qualified} ADD FOREIGN KEY (${q(key.name)}) REFERENCES ${plan.table.qualified} (…);`,
    );
  }
  const missing: string[] = [];
  if (!table.schemaUsage)
    throw refuse('grant_missing', `pgland's user ${q(user)} may not use schema ${q(table.schema)}`, `GRANT USAGE ON SCHEMA ${q(table.schema)} TO ${q(user)};`);
  if (!key.canInsert || !nameCol.canInsert) missing.push('INSERT');
  if (!table.canDelete) missing.push('DELETE');
  if (!key.canSelect || !nameCol.canSelect || !ref.canSelect) missing.push('SELECT');
  if (missing.length > 0)
    throw refuse(
      'grant_missing',
      `pgland's user ${q(user)} may not ${missing.join(', ')} on ${table.qualified}`,
      grantHint(missing.join(', '), table.qualified, user),
    );
  return { table, key, name: nameCol, ref, from, exact: plan.write !== 'additive' && plan.write !== 'insert' };
}
