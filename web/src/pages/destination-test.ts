import { api } from '../api.js';
import { h, replace } from '../dom.js';
import type { Route } from '../router.js';
import { act, badge, button, copyBlock, errorBox, notice } from '../ui.js';
import type { Destination } from './data.js';

/**
 * Test connection: the check's steps as a checklist (tunnel, reach, TLS,
 * login, database, version, schema, grants, write probe), each failed step
 * with its cause and fix, the permissions checklist, and the
 * least-privilege SQL for this destination ready to copy.
 */
interface Step {
  step: string;
  title: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  ms?: number;
  detail?: string;
  code?: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  target?: Record<string, unknown>;
  steps: Step[];
}
interface Grants {
  role: string;
  database: string;
  schema: string;
  pgland_creates_schema: string;
  schema_precreated: string;
  verify: string;
}

function stepItem(s: Step): HTMLElement {
  return h(
    'li',
    { class: `step step-${s.status}`, 'data-step': s.step },
    h(
      'div',
      { class: 'step-head' },
      badge(s.status),
      ' ',
      h('strong', null, s.title),
      s.ms !== undefined && s.status !== 'skip' ? h('span', { class: 'muted' }, ` ${s.ms} ms`) : null,
    ),
    s.detail ? h('p', { class: 'step-detail' }, s.detail) : null,
    s.status === 'fail' || (s.status === 'warn' && s.fix)
      ? h(
          'dl',
          { class: 'cause-fix' },
          s.code ? [h('dt', null, 'Cause'), h('dd', null, h('code', null, s.code), s.detail ? ` — ${s.detail}` : '')] : null,
          s.fix ? [h('dt', null, 'Fix'), h('dd', { class: 'fix' }, s.fix)] : null,
        )
      : null,
  );
}

function okText(report: Report): string {
  const warned = report.steps.filter((s) => s.status === 'warn').map((s) => s.title);
  return warned.length === 0
    ? 'The connection works: every step passed.'
    : `The connection works; read the warning${warned.length > 1 ? 's' : ''}: ${warned.join(', ')}.`;
}

/** Seed 004's permissions checklist, answered by the check's steps. */
function permissions(report: Report, g: Grants | undefined): HTMLElement {
  const by = new Map(report.steps.map((s) => [s.step, s]));
  const item = (steps: string[], text: string): HTMLElement => {
    const ran = steps.map((k) => by.get(k)).filter((s): s is Step => Boolean(s));
    const status = ran.length === 0 ? 'skip' : ran.some((s) => s.status === 'fail') ? 'fail' : ran.every((s) => s.status === 'skip') ? 'skip' : 'pass';
    return h('li', null, badge(status), ' ', text);
  };
  const role = g?.role ?? 'the user';
  return h(
    'ul',
    { class: 'checklist' },
    item(
      by.has('tunnel') ? ['tunnel'] : ['reach'],
      by.has('tunnel')
        ? 'The bastion accepts pgland on its SSH port, with the pinned host key'
        : 'The firewall or security group lets pgland reach the database port',
    ),
    item(['auth', 'database'], `${role} can log in and connect to the database`),
    item(['schema'], `${role} can create the schema, or has ALL on the schema made for it`),
    item(['temporary'], `${role} has TEMPORARY on the database (every batch is staged in a temporary table)`),
    item(['write'], 'A write (COPY and merge) works, rolled back: nothing is left behind'),
  );
}

export async function destinationTestPage(route: Route): Promise<HTMLElement> {
  const id = route.params.id!;
  const dest = await api<Destination>('GET', `/destinations/${id}`);
  const result = h('div', { class: 'check-result', 'aria-live': 'polite' });
  const grantsBox = h('div');
  const again = button('Test again', () => void run());
  const run = (): Promise<void> =>
    act(again, result, async () => {
      replace(result, h('p', { class: 'loading', role: 'status' }, 'Testing the connection…'));
      const [report, g] = await Promise.all([
        api<Report>('POST', `/destinations/${id}/test`),
        api<Grants>('GET', `/destinations/${id}/grants`).catch(() => undefined),
      ]);
      const failed = report.steps.find((s) => s.status === 'fail');
      replace(
        result,
        report.ok
          ? notice(okText(report), 'ok')
          : h(
              'div',
              { class: 'error', role: 'alert' },
              h('p', null, h('strong', null, 'Failed at: '), failed?.title ?? 'a step'),
              failed?.fix ? h('p', null, h('strong', null, 'Fix: '), failed.fix) : null,
            ),
        h('h2', null, 'Steps'),
        h('ol', { class: 'steps', 'aria-label': 'Connection check steps' }, report.steps.map(stepItem)),
        h('h2', null, 'Permissions checklist'),
        permissions(report, g),
      );
      if (g) {
        replace(
          grantsBox,
          h('h2', null, 'Least-privilege SQL'),
          h(
            'p',
            null,
            `Run as a superuser or the owner of database ${g.database}. pgland needs nothing else: no superuser, no replication, no other schemas. Choose one:`,
          ),
          copyBlock(`Option A: pgland creates schema ${g.schema}`, g.pgland_creates_schema),
          copyBlock(`Option B: you create schema ${g.schema} for pgland`, g.schema_precreated),
          copyBlock('Check what the role holds', g.verify),
        );
      }
    });
  void run().catch((err: unknown) => replace(result, errorBox(err)));
  return h(
    'section',
    null,
    h('div', { class: 'page-head' }, h('h1', null, `Test connection: ${dest.name}`), again),
    h('p', null, h('a', { href: `#/destinations/${id}/edit` }, 'Edit this destination')),
    result,
    grantsBox,
  );
}
