import { api } from '../api.js';
import { h } from '../dom.js';
import { when } from '../format.js';
import { go } from '../router.js';
import { act, button, link, notice, table } from '../ui.js';
import { hasRoute } from './data.js';

/** Scheduled runs that kept failing; retry or discard them where this pgland can. */
interface DeadJob { id: string; data: Record<string, any> | null; created_on: string }

export async function deadLettersPage(): Promise<HTMLElement> {
  const [{ jobs }, canRetry, canDiscard] = await Promise.all([
    api<{ jobs: DeadJob[] }>('GET', '/jobs/dead-letters'),
    hasRoute('post', '/jobs/dead-letters/{id}/retry'),
    hasRoute('delete', '/jobs/dead-letters/{id}'),
  ]);
  const out = h('div', { 'aria-live': 'polite' });
  const rows = jobs.map((j) => {
    const d = j.data ?? {};
    return [
      when(j.created_on),
      d.schedule_id ? link('#/schedules', String(d.schedule_id)) : '—',
      [d.provider, d.customer_id, d.object].filter(Boolean).join(' / ') || '—',
      h('code', { class: 'clip' }, String(d.error ?? d.last_error ?? '')),
      h('span', { class: 'actions' },
        canRetry ? button('Retry', (e) => void act(e.currentTarget as HTMLButtonElement, out, async () => { await api('POST', `/jobs/dead-letters/${j.id}/retry`); go('#/dead-letters'); }), { 'aria-label': `Retry job ${j.id}` }) : null,
        canDiscard ? button('Discard', (e) => {
          if (!confirm('Discard this dead letter?')) return;
          void act(e.currentTarget as HTMLButtonElement, out, async () => { await api('DELETE', `/jobs/dead-letters/${j.id}`); go('#/dead-letters'); });
        }, { class: 'danger', 'aria-label': `Discard job ${j.id}` }) : null),
    ];
  });
  return h(
    'section',
    null,
    h('h1', null, 'Dead letters'),
    h('p', { class: 'muted' }, 'Scheduled runs that failed on every retry (PGLAND_JOBS_RETRY_LIMIT).'),
    canRetry || canDiscard ? null : notice('This pgland cannot retry or discard dead letters over its API yet: fix the cause and use Run now on the schedule.'),
    out,
    table(['Dead since', 'Schedule', 'Tenant / object', 'Error', 'Actions'], rows),
  );
}
