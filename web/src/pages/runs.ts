import { api, query } from '../api.js';
import { h } from '../dom.js';
import { count, duration, when } from '../format.js';
import { go, type Route } from '../router.js';
import { badge, field, formValues, link, select, table } from '../ui.js';
import { destinations, type Run } from './data.js';

const STATUSES = ['open', 'committing', 'running', 'succeeded', 'partial', 'failed', 'cancelled'];
const FILTERS = ['destination_id', 'provider', 'customer_id', 'object', 'status'] as const;

/** Runs, newest first, filtered by destination, tenant, object and status. */
export async function runsPage(route: Route): Promise<HTMLElement> {
  const q = Object.fromEntries(FILTERS.map((k) => [k, route.query.get(k) ?? '']));
  const [dests, { runs }] = await Promise.all([destinations(), api<{ runs: Run[] }>('GET', `/runs${query({ ...q, limit: 200 })}`)]);
  const names = new Map(dests.map((d) => [d.id, d.name]));
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      'aria-label': 'Filter runs',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = formValues(form);
        go(`#/runs${query(Object.fromEntries(FILTERS.map((k) => [k, String(v[k] ?? '')])))}`);
      },
    },
    select('destination_id', 'Destination', [['', 'any'], ...dests.map((d): [string, string] => [d.id, d.name])], { value: q.destination_id }),
    field('provider', 'Provider', { value: q.provider }),
    field('customer_id', 'Customer', { value: q.customer_id }),
    field('object', 'Object', { value: q.object }),
    select('status', 'Status', [['', 'any'], ...STATUSES.map((s): [string, string] => [s, s])], { value: q.status }),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const rows = runs.map((r) => {
    const c = r.counts ?? {};
    return [
      link(`#/runs/${r.id}`, when(r.created_at)),
      badge(r.status),
      r.destination_id ? (names.get(r.destination_id) ?? r.destination_id) : '—',
      `${r.provider} / ${r.customer_id}`,
      r.object,
      r.mode,
      count(c.rows_read),
      count(c.inserted),
      count(c.updated),
      count(c.unchanged),
      count(c.deleted),
      count(c.rejected),
      count(c.problems),
      duration(r.created_at, r.finished_at),
    ];
  });
  return h(
    'section',
    null,
    h('h1', null, 'Runs'),
    form,
    h('p', { class: 'muted', role: 'status' }, `${runs.length} run${runs.length === 1 ? '' : 's'}${runs.length === 200 ? ' (the newest 200)' : ''}.`),
    table(
      [
        'Started',
        'Status',
        'Destination',
        'Tenant',
        'Object',
        'Mode',
        'Read',
        'Inserted',
        'Updated',
        'Unchanged',
        'Deleted',
        'Rejected',
        'Problems',
        'Duration',
      ],
      rows,
    ),
  );
}
