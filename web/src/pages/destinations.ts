import { api } from '../api.js';
import { h } from '../dom.js';
import { when } from '../format.js';
import { badge, link, table } from '../ui.js';
import { destinations, type Run } from './data.js';

/**
 * Destinations with their health: the last run's outcome, and how many runs
 * failed in the last 24 hours (Test connection checks the way in itself).
 */
export async function destinationsPage(): Promise<HTMLElement> {
  const [list, { runs }] = await Promise.all([destinations(), api<{ runs: Run[] }>('GET', '/runs?limit=1000')]);
  const dayAgo = Date.now() - 24 * 3600_000;
  const rows = list.map((d) => {
    const mine = runs.filter((r) => r.destination_id === d.id);
    const last = mine[0];
    const failed = mine.filter((r) => r.status === 'failed' && new Date(r.created_at).getTime() > dayAgo).length;
    const health = !last ? 'unknown' : failed > 0 || last.status === 'failed' ? 'failed' : last.status === 'partial' ? 'partial' : 'healthy';
    const c = d.config;
    const where = c.host ? `${c.user ?? ''}@${c.host}:${c.port ?? 5432}/${c.database ?? ''}` : c.url ? 'from its URL ([set])' : '—';
    return [
      link(`#/destinations/${d.id}/edit`, d.name),
      where,
      c.schema ?? 'pgland',
      h('span', null, badge(health), failed > 0 ? ` ${failed} failed in 24 h` : ''),
      last ? h('span', null, badge(last.status), ' ', link(`#/runs/${last.id}`, when(last.created_at))) : 'no runs yet',
      h(
        'span',
        { class: 'actions' },
        link(`#/destinations/${d.id}/test`, 'Test connection'),
        link(`#/destinations/${d.id}/tables`, 'Tables'),
        link(`#/runs?destination_id=${d.id}`, 'Runs'),
      ),
    ];
  });
  return h(
    'section',
    null,
    h('div', { class: 'page-head' }, h('h1', null, 'Destinations'), link('#/destinations/new', 'Add a destination', { class: 'button' })),
    table(['Name', 'Connection', 'Schema', 'Health', 'Last run', 'Actions'], rows),
  );
}
