import { api, query } from '../api.js';
import { h, replace, type Child } from '../dom.js';
import { count, duration, when } from '../format.js';
import type { Route } from '../router.js';
import { act, badge, button, link, notice, table } from '../ui.js';
import { destinationNames, type Evolution, type Run } from './data.js';

/** A run: counts, error, rejects and problems (paged), its evolution report and the webhooks it sent. */
const PAGE = 20;

interface Page<T> {
  total: number;
  offset: number;
  items: T[];
}

/** A table of a paged list with Previous / Next. */
function paged<T>(label: string, path: string, headers: string[], cells: (item: T) => Child[]): HTMLElement {
  const body = h('div', { 'aria-live': 'polite' });
  const status = h('p', { class: 'muted' });
  const prev = button('Previous', () => void load(offset - PAGE), { 'aria-label': `Previous ${label}` });
  const next = button('Next', () => void load(offset + PAGE), { 'aria-label': `Next ${label}` });
  const pager = h('div', { class: 'pager' }, prev, next);
  let offset = 0;
  const load = (at: number): Promise<void> =>
    act(null, body, async () => {
      const page = await api<Page<T>>('GET', `${path}${query({ offset: Math.max(0, at), limit: PAGE })}`);
      offset = page.offset;
      status.textContent =
        page.total === 0
          ? `No ${label}.`
          : `${label[0]!.toUpperCase() + label.slice(1)} ${page.offset + 1}–${page.offset + page.items.length} of ${page.total}.`;
      prev.disabled = page.offset === 0;
      next.disabled = page.offset + page.items.length >= page.total;
      pager.hidden = prev.disabled && next.disabled;
      replace(body, page.total === 0 ? null : table(headers, page.items.map(cells)));
    });
  void load(0);
  return h('div', { class: 'paged' }, status, body, pager);
}

interface Webhook {
  message_id: string;
  event_type: string;
  created_at: string;
  data: Record<string, any>;
  deliveries: { id: string; endpoint_id: string; status: string; attempts: number; last_error: string | null }[];
}

/**
 * The run's evolution report, kept with the run. A pgland from before it was
 * kept there (no `evolution` field) has it only in the schema.evolved webhook.
 */
function evolution(run: Run, hooks: Webhook[]): HTMLElement {
  const d = run.evolution !== undefined ? run.evolution : (hooks.find((w) => w.event_type === 'schema.evolved')?.data as Evolution | undefined);
  if (!d) return notice(run.finished_at ? 'This run changed no table.' : 'No schema change yet: the run is not finished.');
  return h(
    'div',
    null,
    h('p', null, 'Table ', h('code', null, `${d.schema}.${d.table}`), ': ', badge(d.change)),
    h(
      'ul',
      null,
      d.reasons.map((r) => h('li', null, r)),
    ),
    d.problems
      ? h(
          'p',
          { class: 'warn-text' },
          `${d.problems} landed value${d.problems === 1 ? '' : 's'} no longer fit their column and are NULL now: see the problems above.`,
        )
      : null,
    d.full_refresh_required ? h('p', { class: 'warn-text' }, 'The next sync must be a full refresh: ', d.full_refresh_required) : null,
    d.not_restored.length
      ? h(
          'div',
          null,
          h('p', null, 'Your objects that could not be recreated:'),
          h(
            'ul',
            null,
            d.not_restored.map((n) => h('li', null, h('code', null, n.label), `: ${n.error}`)),
          ),
        )
      : null,
  );
}

export async function runPage(route: Route): Promise<HTMLElement> {
  const id = route.params.id!;
  const [run, hooks, names] = await Promise.all([
    api<Run>('GET', `/runs/${id}`),
    api<{ webhooks: Webhook[] }>('GET', `/runs/${id}/webhooks`),
    destinationNames(),
  ]);
  const c = run.counts ?? {};
  const summary: [string, Child][] = [
    ['Status', badge(run.status)],
    ['Destination', run.destination_id ? link(`#/destinations/${run.destination_id}/edit`, names.get(run.destination_id) ?? run.destination_id) : '—'],
    ['Tenant', `${run.provider} / ${run.customer_id}`],
    ['Object', `${run.object} (${run.kind})`],
    ['Mode', `${run.mode}, write ${run.write}`],
    [
      'Origin',
      run.schedule_id
        ? h('span', null, 'schedule ', link('#/schedules', run.schedule_id))
        : run.inbound_id
          ? h('span', null, 'sync.requested webhook ', h('code', null, run.inbound_id))
          : run.origin,
    ],
    ['Started', when(run.created_at)],
    ['Finished', when(run.finished_at)],
    ['Duration', duration(run.created_at, run.finished_at)],
    ['Watermark', when(run.watermark)],
  ];
  const countKeys = [
    'batches',
    'rows_read',
    'inserted',
    'updated',
    'unchanged',
    'superseded',
    'deleted',
    'undeleted',
    'skipped',
    'rejected',
    'problems',
    'nul_stripped',
  ];
  const actions = h('div', { 'aria-live': 'polite' });
  const canAbort = run.status === 'open';
  return h(
    'section',
    null,
    h('h1', null, `Run of ${run.object}`, ' ', badge(run.status)),
    h('p', { class: 'muted' }, 'Run ', h('code', null, run.id)),
    run.error ? h('div', { class: 'error', role: 'alert' }, h('p', null, h('strong', null, 'Error: '), run.error)) : null,
    h(
      'dl',
      { class: 'summary' },
      summary.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
    ),
    canAbort
      ? h(
          'div',
          { class: 'buttons' },
          button(
            'Abort this run',
            (e) => {
              if (!confirm('Abort this run? Nothing of it lands.')) return;
              void act(e.currentTarget as HTMLButtonElement, actions, async () => {
                await api('POST', `/runs/${id}/abort`);
                location.reload();
              });
            },
            { class: 'danger' },
          ),
          actions,
        )
      : null,
    h('h2', null, 'Counts'),
    run.counts ? table(countKeys, [countKeys.map((k) => count(c[k]))]) : notice('No counts yet: the run is not finished.'),
    h('h2', null, 'Rejects'),
    h('p', { class: 'muted' }, 'Input lines that could not land at all; nothing of them was written.'),
    paged<{ line_number: number; record_id: string | null; reason: string; raw_text: string }>(
      'rejects',
      `/runs/${id}/rejects`,
      ['Line', 'Record id', 'Reason', 'Line text'],
      (r) => [String(r.line_number), r.record_id ?? '—', r.reason, h('code', { class: 'clip' }, r.raw_text)],
    ),
    h('h2', null, 'Problems'),
    h('p', { class: 'muted' }, 'Values that did not fit their column; the record landed without them.'),
    paged<{ line_number: number; record_id: string; field: string; column_name: string; reason: string; value_excerpt: string | null }>(
      'problems',
      `/runs/${id}/problems`,
      ['Line', 'Record id', 'Field', 'Column', 'Reason', 'Value'],
      (p) => [String(p.line_number), p.record_id, p.field, h('code', null, p.column_name), p.reason, h('code', { class: 'clip' }, p.value_excerpt ?? '')],
    ),
    h('h2', null, 'Schema evolution'),
    evolution(run, hooks.webhooks),
    h('h2', null, 'Webhooks sent'),
    table(
      ['Event', 'Webhook id', 'Created', 'Deliveries'],
      hooks.webhooks.map((w) => [
        w.event_type,
        h('code', null, w.message_id),
        when(w.created_at),
        w.deliveries.length === 0
          ? '—'
          : h(
              'ul',
              { class: 'plain' },
              w.deliveries.map((d) =>
                h(
                  'li',
                  null,
                  badge(d.status),
                  ` ${d.attempts} attempt${d.attempts === 1 ? '' : 's'} `,
                  link(`#/webhooks?message_id=${encodeURIComponent(w.message_id)}`, 'deliveries'),
                  d.last_error ? ` — ${d.last_error}` : '',
                ),
              ),
            ),
      ]),
    ),
  );
}
