import { api, query } from '../api.js';
import { h, replace } from '../dom.js';
import { whenIn } from '../format.js';
import { go } from '../router.js';
import { act, badge, button, errorBox, field, formValues, link, select, table, textArea } from '../ui.js';
import { destinations } from './data.js';

/** Schedules: cron with its next run times, pause and resume, run now; and a form to add one. */
interface Schedule {
  id: string;
  destination_id: string;
  provider: string;
  customer_id: string;
  object: string;
  kind: string;
  mode: string;
  write?: string;
  match_column?: string;
  ignore_deletes?: boolean;
  declared?: Record<string, unknown>;
  cron: string;
  timezone: string;
  timeout_seconds: number;
  enabled: boolean;
  source: Record<string, any>;
  next_run_at: string | null;
}

const BODY_KEYS = [
  'destination_id',
  'provider',
  'customer_id',
  'object',
  'kind',
  'mode',
  'write',
  'match_column',
  'ignore_deletes',
  'declared',
  'cron',
  'timezone',
  'timeout_seconds',
  'enabled',
  'source',
] as const;

/** The PUT body of a schedule as read, with one change: the source's secrets read "[set]", which keeps them. */
function bodyOf(s: Schedule, change: Partial<Schedule>): Record<string, unknown> {
  const all = { ...s, ...change } as Record<string, unknown>;
  return Object.fromEntries(BODY_KEYS.filter((k) => all[k] !== undefined).map((k) => [k, all[k]]));
}

async function nextRuns(cron: string, timezone: string, n: number): Promise<string[]> {
  return (await api<{ next_runs: string[] }>('GET', `/schedules/next-runs${query({ cron, timezone, count: n })}`)).next_runs;
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

function pairs(text: string, sep: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const l of lines(text)) {
    const i = l.indexOf(sep);
    if (i > 0) out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}

function addForm(dests: { id: string; name: string }[]): HTMLElement {
  const out = h('div', { 'aria-live': 'polite' });
  const preview = h('div', { class: 'preview', 'aria-live': 'polite' });
  const showPreview = (): void => {
    const v = formValues(form);
    if (!v.cron) return replace(preview);
    void nextRuns(String(v.cron), String(v.timezone || 'UTC'), 5).then(
      (times) =>
        replace(
          preview,
          h('p', null, 'Next runs: '),
          h(
            'ul',
            { class: 'next-runs' },
            times.map((t) => h('li', null, h('time', { datetime: t }, whenIn(t, String(v.timezone || 'UTC'))))),
          ),
        ),
      (err: unknown) => replace(preview, errorBox(err)),
    );
  };
  const urlPart = h(
    'div',
    null,
    field('url', 'URL serving NDJSON', {
      placeholder: 'https://platform.example/export?since={watermark}',
      help: "{watermark} is replaced by the object's watermark. Credentials go in headers.",
    }),
    textArea('headers', 'Headers (one "Name: value" a line; values are secrets, never shown again)', { rows: 2 }),
  );
  const commandPart = h(
    'div',
    { hidden: true },
    textArea('command', 'Command (one argument a line; run without a shell, needs PGLAND_ALLOW_COMMAND_SOURCES=1)', { rows: 3 }),
    textArea('env', 'Environment (NAME=value a line; secrets)', { rows: 2 }),
  );
  const submit = h('button', { type: 'submit' }, 'Add schedule');
  const form: HTMLFormElement = h(
    'form',
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = formValues(form) as Record<string, string>;
        const source =
          v.source_type === 'command'
            ? { type: 'command', command: lines(v.command ?? ''), ...(pairs(v.env ?? '', '=') ? { env: pairs(v.env ?? '', '=') } : {}) }
            : { type: 'url', url: v.url, ...(pairs(v.headers ?? '', ':') ? { headers: pairs(v.headers ?? '', ':') } : {}) };
        const body = {
          destination_id: v.destination_id,
          provider: v.provider,
          customer_id: v.customer_id,
          object: v.object,
          kind: v.kind,
          mode: v.mode,
          cron: v.cron,
          timezone: v.timezone || 'UTC',
          ...(v.timeout_seconds ? { timeout_seconds: Number(v.timeout_seconds) } : {}),
          source,
        };
        void act(submit, out, async () => {
          await api('POST', '/schedules', body);
          go('#/schedules?added=1');
        });
      },
    },
    h(
      'div',
      { class: 'row' },
      select(
        'destination_id',
        'Destination',
        dests.map((d): [string, string] => [d.id, d.name]),
      ),
      field('provider', 'Provider', { required: true, placeholder: 'hubspot' }),
      field('customer_id', 'Customer', { required: true, placeholder: 'acme' }),
      field('object', 'Object', { required: true, placeholder: 'crm_contacts' }),
    ),
    h(
      'div',
      { class: 'row' },
      select('kind', 'Kind', [
        ['common', 'common'],
        ['standard', 'standard'],
        ['custom', 'custom'],
      ]),
      select('mode', 'Mode', [
        ['incremental', 'incremental'],
        ['full', 'full refresh'],
      ]),
      field('timeout_seconds', 'Timeout, seconds', { type: 'number', placeholder: '3600' }),
    ),
    h(
      'div',
      { class: 'row' },
      field('cron', 'Cron', { required: true, placeholder: '*/15 * * * *', help: 'Five fields (minute hour day month weekday), or six with seconds first.' }),
      field('timezone', 'Timezone', { placeholder: 'UTC', help: 'An IANA name, e.g. Europe/Paris.' }),
    ),
    preview,
    select(
      'source_type',
      'Source',
      [
        ['url', 'a URL'],
        ['command', 'a command'],
      ],
      {
        onchange: (e: Event) => {
          const cmd = (e.target as HTMLSelectElement).value === 'command';
          urlPart.hidden = cmd;
          commandPart.hidden = !cmd;
        },
      },
    ),
    urlPart,
    commandPart,
    h('div', { class: 'buttons' }, submit),
    out,
  );
  for (const name of ['cron', 'timezone']) (form.elements.namedItem(name) as HTMLInputElement | null)?.addEventListener('change', showPreview);
  return form;
}

export async function schedulesPage(): Promise<HTMLElement> {
  const [dests, { schedules }] = await Promise.all([destinations(), api<{ schedules: Schedule[] }>('GET', '/schedules')]);
  const names = new Map(dests.map((d) => [d.id, d.name]));
  const out = h('div', { 'aria-live': 'polite' });
  const upcoming = await Promise.all(schedules.map((s) => (s.enabled ? nextRuns(s.cron, s.timezone, 3).catch(() => []) : Promise.resolve([] as string[]))));
  const rows = schedules.map((s, i) => {
    const toggle = button(
      s.enabled ? 'Pause' : 'Resume',
      (e) =>
        void act(e.currentTarget as HTMLButtonElement, out, async () => {
          await api('PUT', `/schedules/${s.id}`, bodyOf(s, { enabled: !s.enabled }));
          go('#/schedules');
        }),
      { 'aria-label': `${s.enabled ? 'Pause' : 'Resume'} ${s.object} for ${s.customer_id}` },
    );
    const runNow = button(
      'Run now',
      (e) =>
        void act(e.currentTarget as HTMLButtonElement, out, async () => {
          const job = await api<{ job_id: string | null; queued: boolean }>('POST', `/schedules/${s.id}/run`);
          replace(
            out,
            h(
              'p',
              { class: 'notice notice-ok', role: 'status' },
              job.queued ? `Queued job ${job.job_id}: its run appears under Runs.` : 'Not queued: a run of this schedule is already waiting.',
            ),
          );
        }),
      { 'aria-label': `Run ${s.object} for ${s.customer_id} now` },
    );
    const del = button(
      'Delete',
      (e) => {
        if (!confirm(`Delete the schedule of ${s.object} for ${s.customer_id}?`)) return;
        void act(e.currentTarget as HTMLButtonElement, out, async () => {
          await api('DELETE', `/schedules/${s.id}`);
          go('#/schedules');
        });
      },
      { class: 'danger', 'aria-label': `Delete the schedule of ${s.object} for ${s.customer_id}` },
    );
    return [
      names.get(s.destination_id) ?? s.destination_id,
      `${s.provider} / ${s.customer_id}`,
      link(`#/runs${query({ destination_id: s.destination_id, provider: s.provider, customer_id: s.customer_id, object: s.object })}`, s.object),
      h('span', null, h('code', null, s.cron), ` ${s.timezone}`),
      s.enabled ? badge('enabled') : badge('paused'),
      s.enabled
        ? h(
            'ul',
            { class: 'plain next-runs' },
            upcoming[i]!.map((t) => h('li', null, h('time', { datetime: t }, whenIn(t, s.timezone)))),
          )
        : '—',
      s.source.type === 'url' ? h('code', { class: 'clip' }, String(s.source.url)) : h('code', { class: 'clip' }, (s.source.command as string[]).join(' ')),
      h('span', { class: 'actions' }, toggle, runNow, del),
    ];
  });
  return h(
    'section',
    null,
    h('h1', null, 'Schedules'),
    out,
    table(['Destination', 'Tenant', 'Object', 'Cron', 'State', 'Next runs', 'Source', 'Actions'], rows),
    h('h2', null, 'Add a schedule'),
    dests.length ? addForm(dests) : h('p', null, 'Add a destination first.'),
  );
}
