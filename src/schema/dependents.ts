import type pg from 'pg';
import { qualify } from '../sql/ident.js';
import { captureRowSecurity } from './row-security.js';

/** A view or materialized view built on a landed table (directly or through other views). */
export interface DependentView {
  schema: string;
  name: string;
  kind: 'view' | 'materialized view';
  definition: string;
  owner: string;
  /** pg_class.reloptions ("security_invoker=true", "check_option=local", a materialized view's storage parameters), or null. */
  options: string[] | null;
  /** False for a materialized view created or left WITH NO DATA: it is recreated so. */
  populated: boolean;
  comment: string | null;
  /** GRANT statements that restore its privileges. */
  grants: string[];
  /** For a materialized view: its indexes (CREATE INDEX statements). */
  indexes: string[];
}

/** What the customer built on a table, captured before a rebuild drops it. */
export interface Dependents {
  /** In creation order: a view comes after the views it reads. */
  views: DependentView[];
  /** Indexes on the table other than its primary key. */
  indexes: string[];
  /** GRANT statements of the table itself. */
  tableGrants: string[];
  tableComment: string | null;
  /** The table's storage options, row-level security and policies, as statements for the rebuilt table. */
  tableSecurity: string[];
  /** The session's role and search_path when captured, restored after each view is recreated as its owner. */
  session: { role: string; searchPath: string };
}

/**
 * Definitions and index statements are read with only pg_catalog (and pg_temp,
 * last) on the search_path, so every other name in them comes out
 * schema-qualified: recreated under the owner's role, whose "$user" differs
 * from pgland's, they still name the same functions and tables.
 */
export const PINNED_SEARCH_PATH = 'pg_catalog, pg_temp';

// Privileges as GRANT statements, from the relation's ACL. The grantor is not
// kept: the statements run as pgland's role.
const GRANTS_SQL = `
  SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, $1::text,
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS stmt
    FROM pg_class c, aclexplode(c.relacl) a
   WHERE c.oid = $2 AND a.grantee <> c.relowner
   ORDER BY 1`;

async function grantsOf(client: pg.ClientBase, oid: number, qualified: string): Promise<string[]> {
  const { rows } = await client.query<{ stmt: string }>(GRANTS_SQL, [qualified, oid]);
  return rows.map((r) => r.stmt);
}

/**
 * Reads the views and materialized views that depend on the table, recursively
 * (views on views), through pg_depend and pg_rewrite; the customer's indexes;
 * and the table's own grants and comment.
 */
export async function captureDependents(client: pg.ClientBase, schema: string, table: string): Promise<Dependents> {
  const { rows } = await client.query<{ role: string; path: string }>(`SELECT current_setting('role') AS role, current_setting('search_path') AS path`);
  const session = { role: rows[0]!.role, searchPath: rows[0]!.path };
  await client.query(`SELECT set_config('search_path', $1, false)`, [PINNED_SEARCH_PATH]);
  try {
    return { ...(await readDependents(client, schema, table)), session };
  } finally {
    // Inside a transaction that failed, this fails too, and the rollback restores the path.
    await client.query(`SELECT set_config('search_path', $1, false)`, [session.searchPath]).catch(() => undefined);
  }
}

async function readDependents(client: pg.ClientBase, schema: string, table: string): Promise<Omit<Dependents, 'session'>> {
  const { rows } = await client.query<{
    oid: number;
    schema: string;
    name: string;
    relkind: string;
    definition: string;
    owner: string;
    options: string[] | null;
    populated: boolean;
    comment: string | null;
    depth: number;
  }>(
    `WITH RECURSIVE deps(oid, depth) AS (
       SELECT DISTINCT r.ev_class, 1
         FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::regclass AND r.ev_class <> $1::regclass
       UNION
       SELECT DISTINCT r.ev_class, deps.depth + 1
         FROM deps JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
         JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> deps.oid AND deps.depth < 50
     )
     SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
            pg_get_viewdef(c.oid) AS definition, pg_get_userbyid(c.relowner) AS owner,
            c.reloptions AS options, c.relispopulated AS populated, obj_description(c.oid, 'pg_class') AS comment, max(deps.depth) AS depth
       FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
      GROUP BY c.oid, n.nspname, c.relname, c.relkind, c.relowner, c.reloptions, c.relispopulated
      ORDER BY max(deps.depth), c.oid`,
    [qualify(schema, table)],
  );
  const views: DependentView[] = [];
  for (const r of rows) {
    const qualified = qualify(r.schema, r.name);
    const indexes =
      r.relkind === 'm'
        ? (
            await client.query<{ def: string }>(`SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = $1 ORDER BY indexrelid`, [r.oid])
          ).rows.map((x) => x.def)
        : [];
    views.push({
      schema: r.schema,
      name: r.name,
      kind: r.relkind === 'm' ? 'materialized view' : 'view',
      definition: r.definition,
      owner: r.owner,
      options: r.options,
      populated: r.populated,
      comment: r.comment,
      grants: await grantsOf(client, r.oid, qualified),
      indexes,
    });
  }
  const t = await client.query<{ oid: number; comment: string | null }>(
    `SELECT c.oid, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c WHERE c.oid = $1::regclass`,
    [qualify(schema, table)],
  );
  const oid = t.rows[0]!.oid;
  const idx = await client.query<{ def: string }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
      WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY i.indexrelid`,
    [oid],
  );
  return {
    views,
    indexes: idx.rows.map((r) => r.def),
    tableGrants: await grantsOf(client, oid, qualify(schema, table)),
    tableComment: t.rows[0]!.comment,
    tableSecurity: await captureRowSecurity(client, oid, qualify(schema, table)),
  };
}
