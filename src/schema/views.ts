import { escapeLiteral } from 'pg';
import { qualify, quoteIdent as q } from '../sql/ident.js';
import { PINNED_SEARCH_PATH, type DependentView, type Dependents } from './dependents.js';
import type { Step } from './plan.js';
import { reloptionList } from './reloptions.js';

/*
 * The customer's views and materialized views around an evolution: set aside
 * (saved, then dropped) before the table changes, recreated after it.
 *
 * A view is the customer's code. Creating a materialized view WITH DATA runs
 * its query, and with it any function the query calls: run as pgland, a
 * function that does `ALTER ROLE … SUPERUSER` when it finds itself a superuser
 * makes its author one. So each view is recreated as its owner (SET LOCAL
 * ROLE); a view whose owner pgland may not become is saved and reported, never
 * created as pgland. DROP and LOCK run no code of the view: only creation and
 * refresh do.
 */

/**
 * Sets the views aside and locks the table, in the order a reader's query
 * takes them: the outermost view first, the table last. Table first, a reader
 * of a view that held the view and waited for the table deadlocked the
 * rebuild (seen in CI: "deadlock detected", the reader test of
 * schema-evolution.test.ts).
 *
 * The views are locked by their DROP, not by LOCK TABLE: LOCK on a view also
 * locks the tables under it, checked against the view owner's rights (its
 * UPDATE, DELETE or TRUNCATE), so an analyst's view with SELECT only made every
 * evolution fail with "permission denied". DROP takes the same ACCESS
 * EXCLUSIVE lock on the view alone; a reader that waited on it finds the
 * recreated view under the same name when it resumes.
 */
export function setViewsAsideSteps(schema: string, table: string, deps: Dependents): Step[] {
  // deps.views is in creation order (a view after the views it reads): reversed, readers' and dependents-first order.
  const drops = [...deps.views].reverse().map((v) => ({ statements: [`DROP ${v.kind.toUpperCase()} ${qualify(v.schema, v.name)}`] }));
  return [
    ...(deps.views.length > 0 ? [saveViewsStep(schema, table, deps.views)] : []),
    ...drops,
    // Taken up front even without views: a share lock (the re-land's read) later upgraded to exclusive could deadlock.
    { statements: [`LOCK TABLE ${qualify(schema, table)} IN ACCESS EXCLUSIVE MODE`] },
  ];
}

function saveViewsStep(schema: string, table: string, views: DependentView[]): Step {
  const literal = (s: string | null): string => (s === null ? 'NULL' : escapeLiteral(s));
  const rows = views.map((v) => {
    const options = v.options === null ? 'NULL' : `ARRAY[${v.options.map(literal).join(', ')}]::text[]`;
    return `(${[table, v.schema, v.name, v.kind, v.definition, v.owner].map(literal).join(', ')}, ${literal(v.comment)}, ${options})`;
  });
  return {
    statements: [
      `INSERT INTO ${qualify(schema, '_pgland_saved_views')} (table_name, view_schema, view_name, view_kind, definition, owner, comment, options)
VALUES ${rows.join(',\n       ')}`,
    ],
  };
}

/** `WITH (name = 'value', …)` from pg_class.reloptions, or nothing. */
function withClause(options: string[] | null): string {
  return options && options.length > 0 ? ` WITH (${reloptionList(options)})` : '';
}

/** The statement that puts the session's role back as it was when the plan was made. */
function restoreRole(role: string): string {
  return role === 'none' ? 'SET LOCAL ROLE NONE' : `SET LOCAL ROLE ${q(role)}`;
}

/**
 * Recreates a captured view as its owner, with its options, grants and comment
 * (and a materialized view's indexes, populated as its owner unless it was
 * unpopulated), inside a savepoint. If pgland may not become the owner, SET
 * ROLE fails, the savepoint is rolled back (role and search_path with it) and
 * the view is reported as not restored.
 */
export function createViewStep(schema: string, table: string, v: DependentView, n: number, session: Dependents['session']): Step {
  const name = qualify(v.schema, v.name);
  const sp = q(`pgland_view_${n}`);
  const body = v.definition.trim().replace(/;$/, '');
  const create =
    v.kind === 'view'
      ? `CREATE VIEW ${name}${withClause(v.options)} AS ${body}`
      : `CREATE MATERIALIZED VIEW ${name}${withClause(v.options)} AS ${body} ${v.populated ? 'WITH DATA' : 'WITH NO DATA'}`;
  const statements = [
    `SAVEPOINT ${sp}`,
    `SET LOCAL ROLE ${q(v.owner)}`,
    `SET LOCAL search_path = ${PINNED_SEARCH_PATH}`,
    create,
    ...v.grants,
    ...(v.comment !== null ? [`COMMENT ON ${v.kind.toUpperCase()} ${name} IS ${escapeLiteral(v.comment)}`] : []),
    ...v.indexes,
    restoreRole(session.role),
    `SELECT set_config('search_path', ${escapeLiteral(session.searchPath)}, true)`,
    `UPDATE ${qualify(schema, '_pgland_saved_views')} SET restored = true
WHERE table_name = ${escapeLiteral(table)} AND view_schema = ${escapeLiteral(v.schema)} AND view_name = ${escapeLiteral(v.name)} AND restored IS NULL`,
    `RELEASE SAVEPOINT ${sp}`,
  ];
  return { statements, tolerant: { label: `${v.kind} ${v.schema}.${v.name}`, view: v } };
}
