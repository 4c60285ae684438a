import { api, query } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../format.js';
import { go, type Route } from '../router.js';
import { act, badge, button, checkbox, field, formValues, select, table } from '../ui.js';
import { destinations } from './data.js';

/** Webhook endpoints (add, delete), their deliveries (attempts, redeliver) and the inbound webhooks received. */
interface Endpoint {
  id: string;
  url: string;
  description?: string;
  events: string[];
  destination_id: string | null;
  enabled: boolean;
  secret: string;
  created_at: string;
}
interface Delivery {
  id: string;
  message_id: string;
  endpoint_id: string;
  event_type?: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
  created_at: string;
}
interface Attempt {
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_excerpt: string | null;
}
interface Inbound {
  webhook_id: string;
  event_type: string | null;
  payload: unknown;
  signed_at: string;
  received_at: string;
  action?: string | null;
  detail?: string | null;
}

const EVENTS = ['sync.complete', 'sync.error', 'schema.evolved'];

/** A fresh whsec_ secret, made in the browser: pgland keeps it sealed and never shows it again. */
function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return 'whsec_' + btoa(String.fromCharCode(...bytes));
}

function endpointForm(dests: { id: string; name: string }[]): HTMLElement {
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, 'Add endpoint');
  const secret = newSecret();
  const form: HTMLFormElement = h(
    'form',
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = formValues(form);
        const events = EVENTS.filter((t) => v[`event:${t}`]);
        const body = {
          url: v.url,
          secret: v.secret,
          ...(v.description ? { description: v.description } : {}),
          events,
          destination_id: v.destination_id || null,
        };
        void act(submit, out, async () => {
          await api('POST', '/webhooks/endpoints', body);
          go('#/webhooks?added=1');
        });
      },
    },
    field('url', 'URL', {
      required: true,
      placeholder: 'https://platform.example/hooks/pgland',
      help: 'A public address (or one in PGLAND_ALLOW_NETWORKS). Redirects are not followed.',
    }),
    field('secret', 'Signing secret', {
      value: secret,
      help: 'whsec_…, made in this browser: copy it to the receiver now, pgland never shows it again. Requests are signed per Standard Webhooks.',
    }),
    field('description', 'Description'),
    h(
      'fieldset',
      null,
      h('legend', null, 'Events (none ticked: all)'),
      EVENTS.map((t) => checkbox(`event:${t}`, t)),
    ),
    select('destination_id', 'Only the runs of', [['', 'every destination'], ...dests.map((d): [string, string] => [d.id, d.name])]),
    h('div', { class: 'buttons' }, submit),
    out,
  );
  return form;
}

/** A delivery's attempts, shown in the panel below the deliveries (a table too wide to nest in a row). */
function attemptsButton(d: Delivery, url: string, panel: HTMLElement): HTMLButtonElement {
  return button(
    'Attempts',
    (e) =>
      void act(e.currentTarget as HTMLButtonElement, panel, async () => {
        const { attempts } = await api<{ attempts: Attempt[] }>('GET', `/webhooks/deliveries/${d.id}/attempts`);
        replace(
          panel,
          h('h3', { tabindex: '-1' }, `Attempts of ${d.event_type ?? 'webhook'} ${d.message_id} to ${url}`),
          table(
            ['#', 'Started', 'Took', 'HTTP status', 'Error', 'Answer (first bytes)'],
            attempts.map((a) => [
              String(a.attempt),
              when(a.started_at),
              `${a.duration_ms} ms`,
              a.status_code === null ? 'no answer' : String(a.status_code),
              a.error ?? '',
              h('code', { class: 'clip' }, a.response_excerpt ?? ''),
            ]),
          ),
        );
        (panel.querySelector('h3') as HTMLElement).focus();
      }),
    { 'aria-label': `Attempts of delivery ${d.message_id}` },
  );
}

export async function webhooksPage(route: Route): Promise<HTMLElement> {
  const status = route.query.get('status') ?? '';
  const messageId = route.query.get('message_id') ?? '';
  const [dests, { endpoints }, { deliveries }, { webhooks }] = await Promise.all([
    destinations(),
    api<{ endpoints: Endpoint[] }>('GET', '/webhooks/endpoints'),
    api<{ deliveries: Delivery[] }>('GET', `/webhooks/deliveries${query({ status, message_id: messageId, limit: 100 })}`),
    api<{ webhooks: Inbound[] }>('GET', '/webhooks/inbound'),
  ]);
  const names = new Map(dests.map((d) => [d.id, d.name]));
  const urls = new Map(endpoints.map((e) => [e.id, e.url]));
  const out = h('div', { 'aria-live': 'polite' });
  const attemptsPanel = h('div', { id: 'attempts', 'aria-live': 'polite' });
  const filter: HTMLFormElement = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      'aria-label': 'Filter deliveries',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = formValues(filter);
        go(`#/webhooks${query({ status: String(v.status), message_id: String(v.message_id) })}`);
      },
    },
    select(
      'status',
      'Status',
      [
        ['', 'any'],
        ['pending', 'pending'],
        ['delivered', 'delivered'],
        ['failed', 'failed'],
      ],
      { value: status },
    ),
    field('message_id', 'Webhook id', { value: messageId }),
    h('button', { type: 'submit' }, 'Filter'),
  );
  return h(
    'section',
    null,
    h('h1', null, 'Webhooks'),
    out,
    h('h2', null, 'Endpoints'),
    table(
      ['URL', 'Description', 'Events', 'Destination', 'Secret', 'State', 'Actions'],
      endpoints.map((e) => [
        h('code', { class: 'clip' }, e.url),
        e.description ?? '',
        e.events.length ? e.events.join(', ') : 'all',
        e.destination_id ? (names.get(e.destination_id) ?? e.destination_id) : 'every destination',
        e.secret === '[set]' ? 'set' : 'not set',
        e.enabled ? badge('enabled') : badge('paused'),
        button(
          'Delete',
          (ev) => {
            if (!confirm(`Delete the endpoint ${e.url} and its pending deliveries?`)) return;
            void act(ev.currentTarget as HTMLButtonElement, out, async () => {
              await api('DELETE', `/webhooks/endpoints/${e.id}`);
              go('#/webhooks');
            });
          },
          { class: 'danger', 'aria-label': `Delete endpoint ${e.url}` },
        ),
      ]),
    ),
    h('details', null, h('summary', null, 'Add an endpoint'), endpointForm(dests)),
    h('h2', null, 'Deliveries'),
    filter,
    table(
      ['Created', 'Event', 'Endpoint', 'Status', 'Attempts', 'Next attempt', 'Last error', 'Actions'],
      deliveries.map((d) => [
        when(d.created_at),
        d.event_type ?? '',
        h('code', { class: 'clip' }, urls.get(d.endpoint_id) ?? d.endpoint_id),
        badge(d.status),
        String(d.attempts),
        d.status === 'pending' ? when(d.next_attempt_at) : '—',
        d.last_error ?? '',
        h(
          'span',
          { class: 'actions' },
          attemptsButton(d, urls.get(d.endpoint_id) ?? d.endpoint_id, attemptsPanel),
          d.status === 'failed'
            ? button(
                'Redeliver',
                (ev) =>
                  void act(ev.currentTarget as HTMLButtonElement, out, async () => {
                    await api('POST', `/webhooks/deliveries/${d.id}/redeliver`);
                    go('#/webhooks');
                  }),
                { 'aria-label': `Redeliver ${d.message_id}` },
              )
            : null,
        ),
      ]),
    ),
    attemptsPanel,
    h('h2', null, 'Inbound webhooks'),
    h('p', { class: 'muted' }, 'Signed webhooks the platform sent to POST /webhooks/inbound (PGLAND_INBOUND_WEBHOOK_SECRET), and what pgland did with each.'),
    table(
      ['Received', 'Event', 'Webhook id', 'Signed at', 'What pgland did', 'Payload'],
      webhooks.map((w) => [
        when(w.received_at),
        w.event_type ?? '—',
        h('code', null, w.webhook_id),
        when(w.signed_at),
        w.action ? h('span', null, w.action, w.detail ? `: ${w.detail}` : '') : 'recorded',
        h('details', null, h('summary', null, 'Show'), h('pre', { class: 'json' }, JSON.stringify(w.payload, null, 2))),
      ]),
    ),
  );
}
