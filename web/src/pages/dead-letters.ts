import { api, query } from '../api.js';
import { h } from '../dom.js';
import { when } from '../format.js';
import { go } from '../router.js';
import { act, button, link, notice, table } from '../ui.js';
import { hasRoute } from './data.js';

/**
 * Scheduled runs that failed on every retry: which schedule, which slot, and
 * a link to its failed runs (their errors say why). Retry and discard show
 * where this pgland's API has them.
 */
/** A dead letter: what it ran and why it gave up (newer pgland), or pg-boss's job data (older). */
interface DeadJob {
  id: string;
  created_on: string;
  data?: { schedule_id?: string; reason?: string; slot?: string } | null;
  reason?: string | null;
  schedule_id?: string | null;
  inbound_id?: string | null;
  destination_id?: string | null;
  provider?: string | null;
  customer_id?: string | null;
  object?: string | null;
  attempts?: number;
  last_error?: string | null;
}
interface Schedule {
  id: string;
  destination_id: string;
  provider: string;
  customer_id: string;
  object: string;
}

export async function deadLettersPage(): Promise<HTMLElement> {
  const [{ jobs }, { schedules }, canRetry, canDiscard] = await Promise.all([
    api<{ jobs: DeadJob[] }>('GET', '/jobs/dead-letters'),
    api<{ schedules: Schedule[] }>('GET', '/schedules'),
    hasRoute('post', '/jobs/dead-letters/{id}/retry'),
    // Discard may be a POST …/discard or a DELETE of the dead letter, whichever this pgland has.
    hasRoute('post', '/jobs/dead-letters/{id}/discard').then(async (post) =>
      post ? 'POST' : (await hasRoute('delete', '/jobs/dead-letters/{id}')) ? 'DELETE' : undefined,
    ),
  ]);
  const byId = new Map(schedules.map((s) => [s.id, s]));
  const out = h('div', { 'aria-live': 'polite' });
  const rows = jobs.map((j) => {
    const d = { ...(j.data ?? {}), ...j };
    const s = d.schedule_id ? byId.get(d.schedule_id) : undefined;
    const target = d.object ? { destination_id: d.destination_id ?? s?.destination_id, provider: d.provider, customer_id: d.customer_id, object: d.object } : s;
    return [
      when(j.created_on),
      target ? `${target.provider} / ${target.customer_id} / ${target.object}` : d.schedule_id ? `schedule ${d.schedule_id} (deleted)` : '—',
      d.reason === 'manual'
        ? 'Run now'
        : d.reason === 'webhook'
          ? `sync.requested ${d.inbound_id ?? ''}`
          : d.slot
            ? `cron slot ${when(d.slot)}`
            : (d.reason ?? '—'),
      d.attempts === undefined ? '—' : String(d.attempts),
      h(
        'span',
        null,
        d.last_error ? h('span', { class: 'last-error' }, d.last_error) : null,
        target
          ? [
              ' ',
              link(
                `#/runs${query({ destination_id: target.destination_id, provider: target.provider, customer_id: target.customer_id, object: target.object, status: 'failed' })}`,
                'Failed runs',
              ),
            ]
          : null,
      ),
      h(
        'span',
        { class: 'actions' },
        canRetry
          ? button(
              'Retry',
              (e) =>
                void act(e.currentTarget as HTMLButtonElement, out, async () => {
                  await api('POST', `/jobs/dead-letters/${j.id}/retry`);
                  go('#/dead-letters');
                }),
              { 'aria-label': `Retry job ${j.id}` },
            )
          : null,
        canDiscard
          ? button(
              'Discard',
              (e) => {
                if (!confirm('Discard this dead letter? Its run is not retried.')) return;
                void act(e.currentTarget as HTMLButtonElement, out, async () => {
                  await api(canDiscard, canDiscard === 'POST' ? `/jobs/dead-letters/${j.id}/discard` : `/jobs/dead-letters/${j.id}`);
                  go('#/dead-letters');
                });
              },
              { class: 'danger', 'aria-label': `Discard job ${j.id}` },
            )
          : null,
      ),
    ];
  });
  return h(
    'section',
    null,
    h('h1', null, 'Dead letters'),
    h('p', { class: 'muted' }, 'Runs that failed on every retry (PGLAND_JOBS_RETRY_LIMIT): scheduled, run now, or asked for by a sync.requested webhook.'),
    canRetry || canDiscard
      ? null
      : notice('This pgland cannot retry or discard dead letters over its API yet: fix the cause, then use Run now on the schedule.'),
    out,
    table(['Dead since', 'Tenant / object', 'Queued by', 'Attempts', 'Last error', 'Actions'], rows),
  );
}
