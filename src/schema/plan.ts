import { escapeLiteral } from 'pg';
import type pg from 'pg';
import { jsonText, newEncodeStats } from '../encode/copy-text.js';
import { PGLAND_COLUMNS as P, type ColumnDef, type ObjectDef } from '../catalog/definition.js';
import { commonObject } from '../catalog/common.js';
import { fitIdent, qualify, quoteIdent as q } from '../sql/ident.js';
import { catalogType, compare, LANDED_KEY } from './compare.js';
import { captureDependents, type DependentView, type Dependents } from './dependents.js';
import { createViewStep, setViewsAsideSteps } from './views.js';
import { definitionJson, readTable, type LiveColumn, type TableState } from './introspect.js';
import { createLandedTableSql, primaryKeyName } from './landed.js';
import { lostValuesStatements, type Recomputed } from './lost-values.js';

/**
 * One step of an evolution: statements run in order. A tolerant step (a
 * customer's view, index or generated column) runs inside a savepoint; if it
 * fails, the failure is reported and the rest goes on.
 */
export interface Step {
  statements: string[];
  tolerant?: { label: string; view?: DependentView };
  /** The first statement notes values that no longer fit their column (lost-values.ts): its row count is the report's problems. */
  notesProblems?: true;
}

export interface EvolutionPlan {
  schema: string;
  table: string;
  object: string;
  action: 'none' | 'create' | 'alter' | 'rebuild';
  /** Why, in words: one line per change. */
  reasons: string[];
  steps: Step[];
  /** Set when the tenants' data must be re-sent in full, with the reason. */
  fullRefreshReason: string | null;
}

function castFn(schema: string, type: string): string {
  return `${q(schema)}.${q('_pgland_cast_' + type.replace(/ /g, '_'))}`;
}

/** A typed column's value in a stored raw payload, as jsonb. */
function rawValue(column: ColumnDef, raw: string): string {
  return `${raw} -> ${escapeLiteral(rawKey(column))}`;
}

/** The value of a typed column computed from a stored raw payload. */
function fromRaw(schema: string, column: ColumnDef, raw: string): string {
  return `${castFn(schema, column.type)}(${rawValue(column, raw)})`;
}

/** The step that notes the values an evolution cannot re-land, if any column can lose one. */
function lostValuesSteps(schema: string, table: string, recomputed: Recomputed[], what: string): Step[] {
  const statements = lostValuesStatements(schema, table, recomputed, what);
  return statements.length > 0 ? [{ statements, notesProblems: true }] : [];
}

/** A field's key as stored in the raw payload: the encoder strips NUL there too. */
function rawKey(column: ColumnDef): string {
  return column.source.key.replace(/\0/g, '');
}

function recordStep(schema: string, def: ObjectDef): Step {
  // jsonText drops \u0000 escapes, which jsonb refuses (a field name may hold NUL).
  const definition = jsonText(definitionJson(def, LANDED_KEY), newEncodeStats());
  return {
    statements: [
      `INSERT INTO ${qualify(schema, '_pgland_tables')} (table_name, object, object_kind, catalog_version, definition)
VALUES (${escapeLiteral(def.table)}, ${escapeLiteral(def.object)}, ${escapeLiteral(def.kind)}, ${def.version}, ${escapeLiteral(definition)}::jsonb)
ON CONFLICT (table_name) DO UPDATE SET object = EXCLUDED.object, object_kind = EXCLUDED.object_kind,
  catalog_version = EXCLUDED.catalog_version, definition = EXCLUDED.definition, evolved_at = now()`,
    ],
  };
}

/** JSON text with every object's keys sorted, to compare values whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * Whether the recorded columns are the wanted ones. jsonb keeps keys in its
 * own order (shorter first), and the record went through jsonText: compared
 * as written and in canonical key order, or an unchanged table would be
 * recorded again at every run and `pgland plan` would print that as a change.
 */
function sameAsRecorded(recorded: ColumnDef[], wanted: ColumnDef[]): boolean {
  const written = JSON.parse(jsonText(wanted, newEncodeStats())) as unknown;
  return canonicalJson(recorded) === canonicalJson(written);
}

/** Every tenant in the table must re-send its data in full. */
function requireFullRefreshStep(schema: string, table: string, reason: string): Step {
  return {
    statements: [
      `INSERT INTO ${qualify(schema, '_pgland_full_refresh_required')} (table_name, provider, customer_id, reason)
SELECT DISTINCT ${escapeLiteral(table)}, ${q(P.provider)}, ${q(P.customerId)}, ${escapeLiteral(reason)} FROM ${qualify(schema, table)}
ON CONFLICT (table_name, provider, customer_id) DO UPDATE SET reason = EXCLUDED.reason, since = now()`,
    ],
  };
}

function tolerant(label: string, n: number, statements: string[]): Step {
  const sp = q(`pgland_step_${n}`);
  return { statements: [`SAVEPOINT ${sp}`, ...statements, `RELEASE SAVEPOINT ${sp}`], tolerant: { label } };
}

/** The statements of a drop-and-recreate that keeps the customer's objects. */
function rebuildSteps(schema: string, def: ObjectDef, liveCols: LiveColumn[], customer: LiveColumn[], deps: Dependents, hasRaw: boolean): Step[] {
  const table = qualify(schema, def.table);
  const tmpName = fitIdent(`${def.table}_pgland_new`, `${def.table}\u0000new`);
  const tmp = qualify(schema, tmpName);
  const live = new Map(liveCols.map((c) => [c.name, c]));
  const plain = customer.filter((c) => c.generated === null);
  const generated = customer.filter((c) => c.generated !== null);

  // The re-land: pgland's columns copied, typed columns recomputed from the raw
  // payload (declared objects) or cast from the old column (common objects,
  // whose mapped fields are not stored), customer columns copied.
  const keep = (name: string, fallback: string): string => (live.has(name) ? `old.${q(name)}` : fallback);
  const targets: string[] = [];
  const exprs: string[] = [];
  const add = (name: string, expr: string): void => {
    targets.push(q(name));
    exprs.push(expr);
  };
  // Typed columns recomputed by a cast that gives NULL for a value that does not fit.
  const recomputed: Recomputed[] = [];
  const recompute = (c: ColumnDef, value: string, inRaw: boolean): void => {
    const cast = castFn(schema, c.type);
    add(c.name, `${cast}(${value})`);
    recomputed.push({ column: c, value, inRaw, oldColumn: live.has(c.name) ? c.name : null, cast });
  };
  add(P.provider, `old.${q(P.provider)}`);
  add(P.customerId, `old.${q(P.customerId)}`);
  add('id', `old."id"`);
  for (const c of def.columns) {
    const old = live.get(c.name);
    if (c.source.from === 'raw_data' && hasRaw) recompute(c, rawValue(c, `old.${q(P.rawData)}`), true);
    else if (old && old.type === catalogType(c.type)) add(c.name, `old.${q(c.name)}`);
    else if (old) recompute(c, `to_jsonb(old.${q(c.name)})`, false);
  }
  add(P.landedAt, keep(P.landedAt, 'now()'));
  // A version of unknown age loses to any version that comes next.
  add(P.lastModifiedAt, keep(P.lastModifiedAt, "'-infinity'::timestamptz"));
  add(P.isDeleted, keep(P.isDeleted, 'false'));
  add(P.deletedAt, keep(P.deletedAt, 'NULL'));
  add(P.runId, keep(P.runId, 'NULL'));
  add(P.rawData, keep(P.rawData, 'NULL'));
  for (const c of plain) add(c.name, `old.${q(c.name)}`);

  const steps: Step[] = [
    ...setViewsAsideSteps(schema, def.table, deps),
    { statements: [createLandedTableSql(schema, def, tmpName).replace('CREATE TABLE IF NOT EXISTS', 'CREATE TABLE')] },
    ...plain.map((c) => ({ statements: [`ALTER TABLE ${tmp} ADD COLUMN ${q(c.name)} ${c.type}`] })),
    ...lostValuesSteps(schema, def.table, recomputed, 'the table was rebuilt'),
    { statements: [`INSERT INTO ${tmp} AS new (${targets.join(', ')})\nSELECT ${exprs.join(',\n       ')}\nFROM ${table} AS old`] },
    { statements: [`DROP TABLE ${table}`] },
    { statements: [`ALTER TABLE ${tmp} RENAME TO ${q(def.table)}`] },
    { statements: [`ALTER TABLE ${table} RENAME CONSTRAINT ${q(primaryKeyName(tmpName))} TO ${q(primaryKeyName(def.table))}`] },
    ...deps.tableGrants.map((g) => ({ statements: [g] })),
    ...(deps.tableComment !== null ? [{ statements: [`COMMENT ON TABLE ${table} IS ${escapeLiteral(deps.tableComment)}`] }] : []),
  ];
  let n = 0;
  for (const c of generated) {
    steps.push(
      tolerant(`generated column ${c.name}`, ++n, [`ALTER TABLE ${table} ADD COLUMN ${q(c.name)} ${c.type} GENERATED ALWAYS AS (${c.generated}) STORED`]),
    );
  }
  for (const idx of deps.indexes) steps.push(tolerant(`index: ${idx}`, ++n, [idx]));
  // Not tolerant: a policy left behind would widen what its roles see. Before
  // the views: a materialized view is populated as its owner, under them.
  for (const stmt of deps.tableSecurity) steps.push({ statements: [stmt] });
  deps.views.forEach((v, i) => steps.push(createViewStep(schema, def.table, v, i + 1, deps.session)));
  return steps;
}

/**
 * Reads the live table, what pgland recorded and what the customer built on
 * it, and returns the statements that bring the table to the wanted
 * definition. Changes nothing: `pgland plan` prints this, and the apply path
 * runs exactly these statements.
 */
export async function planEvolution(client: pg.ClientBase, schema: string, def: ObjectDef): Promise<EvolutionPlan> {
  return planFromState(client, schema, def, await readTable(client, schema, def.table));
}

/**
 * planEvolution from a table's state already read (readTable). Reads the
 * catalogs again only for a rebuild or a widening (the customer's objects on
 * the table): a table that is up to date is planned from `state` alone.
 */
export async function planFromState(
  client: pg.ClientBase,
  schema: string,
  def: ObjectDef,
  { live, recorded }: Pick<TableState, 'live' | 'recorded'>,
): Promise<EvolutionPlan> {
  const base = { schema, table: def.table, object: def.object };
  if (!live) {
    return {
      ...base,
      action: 'create',
      reasons: ['the table does not exist yet'],
      steps: [{ statements: [createLandedTableSql(schema, def)] }, recordStep(schema, def)],
      fullRefreshReason: null,
    };
  }
  const diff = compare(def, live, recorded);
  const hasRaw = live.columns.some((c) => c.name === P.rawData && c.type === 'jsonb');
  const unchangedRecord = recorded && recorded.catalogVersion === def.version && sameAsRecorded(recorded.columns, def.columns);

  if (diff.breaking.length > 0) {
    const deps = await captureDependents(client, schema, def.table);
    const reason = `table ${def.table} was rebuilt (${diff.breaking.join('; ')})`;
    return {
      ...base,
      action: 'rebuild',
      reasons: diff.breaking,
      steps: [
        ...rebuildSteps(schema, def, live.columns, diff.customer, deps, hasRaw),
        recordStep(schema, def),
        requireFullRefreshStep(schema, def.table, reason),
      ],
      fullRefreshReason: reason,
    };
  }
  if (diff.added.length === 0 && diff.widened.length === 0) {
    return { ...base, action: 'none', reasons: [], steps: unchangedRecord ? [] : [recordStep(schema, def)], fullRefreshReason: null };
  }

  const table = qualify(schema, def.table);
  const steps: Step[] = [];
  const reasons: string[] = [];
  // ALTER COLUMN TYPE is refused while a view uses the column: views are set
  // aside and recreated around it.
  const deps = diff.widened.length > 0 ? await captureDependents(client, schema, def.table) : undefined;
  if (deps) steps.push(...setViewsAsideSteps(schema, def.table, deps));
  for (const { column, from } of diff.widened) {
    reasons.push(`column ${column.name} ${from} -> ${catalogType(column.type)}`);
    steps.push({ statements: [`ALTER TABLE ${table} ALTER COLUMN ${q(column.name)} TYPE ${column.type} USING ${q(column.name)}::${column.type}`] });
  }
  const notBackfilled: string[] = [];
  for (const column of diff.added) {
    reasons.push(`new column ${column.name} ${column.type}`);
    steps.push({ statements: [`ALTER TABLE ${table} ADD COLUMN ${q(column.name)} ${column.type}`] });
    if (column.source.from === 'raw_data' && hasRaw) {
      const value = rawValue(column, `old.${q(P.rawData)}`);
      steps.push(
        ...lostValuesSteps(
          schema,
          def.table,
          [{ column, value, inRaw: true, oldColumn: null, cast: castFn(schema, column.type) }],
          `new column ${column.name} was backfilled`,
        ),
      );
      steps.push({
        statements: [
          `UPDATE ${table} SET ${q(column.name)} = ${fromRaw(schema, column, q(P.rawData))}\nWHERE ${q(P.rawData)} ? ${escapeLiteral(rawKey(column))}`,
        ],
      });
    } else {
      notBackfilled.push(column.name);
    }
  }
  if (deps) deps.views.forEach((v, i) => steps.push(createViewStep(schema, def.table, v, i + 1, deps.session)));
  steps.push(recordStep(schema, def));
  let fullRefreshReason: string | null = null;
  if (notBackfilled.length > 0) {
    // Common objects keep the provider's payload, not the mapped fields: a new
    // mapped column can only be filled by the platform sending the data again.
    fullRefreshReason = `new columns ${notBackfilled.join(', ')} of ${def.table} cannot be filled from stored payloads`;
    steps.push(requireFullRefreshStep(schema, def.table, fullRefreshReason));
  }
  return { ...base, action: 'alter', reasons, steps, fullRefreshReason };
}

/** The plan as SQL text, as `pgland plan` prints it. */
export function planText(plan: EvolutionPlan): string {
  if (plan.steps.length === 0) return `-- ${plan.schema}.${plan.table}: up to date\n`;
  const head = [`-- ${plan.schema}.${plan.table}: ${plan.action}`, ...plan.reasons.map((r) => `--   ${r}`)];
  if (plan.fullRefreshReason) head.push(`--   the next sync of each tenant must be a full refresh`);
  const body = plan.steps.map(
    (s) => (s.tolerant ? `-- ${s.tolerant.label} (if this fails it is reported and the run goes on)\n` : '') + s.statements.map((x) => x + ';').join('\n'),
  );
  return [...head, ...body].join('\n') + '\n';
}

/**
 * Plans for every recorded table: common objects against the current catalog,
 * declared objects against the definition recorded at their last run (so hand
 * edits of the live table show up).
 */
export async function planRecorded(client: pg.ClientBase, schema: string): Promise<EvolutionPlan[]> {
  const { rows } = await client.query<{
    table_name: string;
    object: string;
    object_kind: string;
    catalog_version: number;
    definition: { columns: ColumnDef[] };
  }>(`SELECT table_name, object, object_kind, catalog_version, definition FROM ${qualify(schema, '_pgland_tables')} ORDER BY table_name`);
  const plans: EvolutionPlan[] = [];
  for (const r of rows) {
    const def: ObjectDef = (r.object_kind === 'common' && commonObject(r.object)) || {
      kind: r.object_kind as ObjectDef['kind'],
      object: r.object,
      table: r.table_name,
      version: r.catalog_version,
      columns: r.definition.columns,
    };
    plans.push(await planEvolution(client, schema, def));
  }
  return plans;
}
