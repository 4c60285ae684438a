import { api } from '../api.js';
import { h } from '../dom.js';
import { bytes, count, when } from '../format.js';
import type { Route } from '../router.js';
import { badge, copyBlock, errorBox, notice, table } from '../ui.js';
import type { Destination } from './data.js';

/** A destination's landed tables with row counts, and what the next run of each would change (pgland plan). */
interface Table {
  table: string;
  object: string;
  kind: string;
  rows: number;
  rows_exact: boolean;
  bytes: number;
  needs_full_refresh: boolean;
  full_refresh_reason: string | null;
  evolved_at: string;
}
interface Plan {
  table: string;
  object: string;
  action: string;
  reasons: string[];
  full_refresh_reason: string | null;
  statements: string[];
}

function planItem(p: Plan): HTMLElement {
  return h(
    'article',
    { class: 'plan' },
    h('h3', null, p.table, ' ', p.action === 'none' ? badge('no change') : badge(p.action)),
    p.reasons.length
      ? h(
          'ul',
          null,
          p.reasons.map((r) => h('li', null, r)),
        )
      : null,
    p.full_refresh_reason ? h('p', { class: 'warn-text' }, 'The next sync must be a full refresh: ', p.full_refresh_reason) : null,
    p.statements.length && p.action !== 'none' ? copyBlock(`SQL the next run of ${p.object} would execute`, p.statements.join(';\n') + ';') : null,
  );
}

export async function destinationTablesPage(route: Route): Promise<HTMLElement> {
  const id = route.params.id!;
  const dest = await api<Destination>('GET', `/destinations/${id}`);
  const [tables, plans] = await Promise.all([
    api<{ schema: string; tables: Table[] }>('GET', `/destinations/${id}/tables`).catch((err: unknown) => err),
    api<{ plans: Plan[] }>('GET', `/destinations/${id}/plan`).catch((err: unknown) => err),
  ]);
  const tablePart =
    tables instanceof Error
      ? errorBox(tables)
      : table(
          ['Table', 'Object', 'Kind', 'Rows', 'Size', 'Full refresh needed', 'Last evolved'],
          (tables as { tables: Table[] }).tables.map((t) => [
            h('code', null, t.table),
            t.object,
            t.kind,
            t.rows_exact ? count(t.rows) : `about ${count(t.rows)}`,
            bytes(t.bytes),
            t.needs_full_refresh ? h('span', null, badge('partial'), ' ', t.full_refresh_reason ?? 'yes') : 'no',
            when(t.evolved_at),
          ]),
          `Landed tables in schema ${(tables as { schema: string }).schema}`,
        );
  const planPart =
    plans instanceof Error
      ? errorBox(plans)
      : (plans as { plans: Plan[] }).plans.length === 0
        ? notice('No landed tables yet: the first run of an object creates its table.')
        : h('div', null, (plans as { plans: Plan[] }).plans.map(planItem));
  return h(
    'section',
    null,
    h('h1', null, `Tables: ${dest.name}`),
    tablePart,
    h('h2', null, "Next run's evolution plan"),
    h('p', { class: 'muted' }, 'What the next run of each object would change in its table (as pgland plan prints it). Nothing is changed now.'),
    planPart,
  );
}
