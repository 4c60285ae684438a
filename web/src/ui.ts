import { ApiError } from './api.js';
import { h, uid, type Child } from './dom.js';

/**
 * Pieces every page uses: error boxes, status badges, tables, form fields,
 * copyable SQL. Colours always come with words (a status reads "failed",
 * not only red).
 */

/** An error as the user sees it: the API's message and hint, never a stack trace. */
export function errorBox(err: unknown): HTMLElement {
  const e = err instanceof ApiError ? err : new ApiError(0, 'console_error', err instanceof Error ? err.message : String(err));
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('p', { class: 'error-message' }, h('strong', null, 'Error: '), e.message),
    e.hint ? h('p', { class: 'error-hint' }, h('strong', null, 'Fix: '), e.hint) : null,
    h('p', { class: 'error-code' }, 'code ', h('code', null, e.code), e.status ? ` · HTTP ${e.status}` : ''),
  );
}

export function notice(text: Child, kind: 'info' | 'ok' = 'info'): HTMLElement {
  return h('p', { class: `notice notice-${kind}`, role: 'status' }, text);
}

const STATUS_CLASS: Record<string, string> = {
  succeeded: 'ok',
  delivered: 'ok',
  pass: 'ok',
  enabled: 'ok',
  healthy: 'ok',
  partial: 'warn',
  warn: 'warn',
  pending: 'warn',
  open: 'info',
  committing: 'info',
  running: 'info',
  paused: 'muted',
  skip: 'muted',
  cancelled: 'muted',
  unknown: 'muted',
  failed: 'bad',
  fail: 'bad',
};
const STATUS_ICON: Record<string, string> = { ok: '✓', warn: '!', bad: '✗', info: '…', muted: '–' };

export function badge(status: string): HTMLElement {
  const cls = STATUS_CLASS[status] ?? 'info';
  return h('span', { class: `badge badge-${cls}` }, h('span', { 'aria-hidden': 'true' }, STATUS_ICON[cls] ?? ''), ' ', status);
}

export function table(headers: string[], rows: Child[][], caption?: string): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      caption ? h('caption', null, caption) : null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          headers.map((x) => h('th', { scope: 'col' }, x)),
        ),
      ),
      h(
        'tbody',
        null,
        rows.length === 0
          ? h('tr', null, h('td', { colspan: String(headers.length), class: 'empty' }, 'None yet.'))
          : rows.map((r) =>
              h(
                'tr',
                null,
                r.map((c) => h('td', null, c)),
              ),
            ),
      ),
    ),
  );
}

export function button(label: string, onclick: (e: Event) => void | Promise<void>, props: Record<string, unknown> = {}): HTMLButtonElement {
  // An async handler's rejection is its own to show (each one catches); the click only starts it.
  const handler = (e: Event): void => void onclick(e);
  return h('button', { type: 'button', onclick: handler, ...props }, label);
}

export function link(href: string, text: Child, props: Record<string, unknown> = {}): HTMLAnchorElement {
  return h('a', { href, ...props }, text);
}

interface FieldOptions {
  help?: Child;
  required?: boolean;
  type?: string;
  placeholder?: string;
  value?: string;
  autocomplete?: string;
  min?: number;
  max?: number;
}

/** A control with its label and help text, the help tied to it for screen readers. */
function labelled(id: string, label: string, control: HTMLElement, help: Child | undefined): HTMLElement {
  if (help) control.setAttribute('aria-describedby', `${id}-help`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, help ? h('p', { class: 'help', id: `${id}-help` }, help) : null);
}

/** A labelled input. */
export function field(name: string, label: string, options: FieldOptions = {}): HTMLElement {
  const id = uid(name.replace(/\W/g, '-'));
  const input = h('input', {
    id,
    name,
    type: options.type ?? 'text',
    required: options.required,
    placeholder: options.placeholder,
    value: options.value,
    autocomplete: options.autocomplete ?? 'off',
    spellcheck: 'false',
    min: options.min,
    max: options.max,
  });
  return labelled(id, label, input, options.help);
}

export function textArea(name: string, label: string, options: FieldOptions & { rows?: number } = {}): HTMLElement {
  const id = uid(name.replace(/\W/g, '-'));
  const area = h('textarea', { id, name, rows: String(options.rows ?? 4), placeholder: options.placeholder, spellcheck: 'false' }, options.value ?? '');
  return labelled(id, label, area, options.help);
}

export function select(
  name: string,
  label: string,
  choices: [string, string][],
  options: { value?: string; help?: Child; onchange?: (e: Event) => void } = {},
): HTMLElement {
  const id = uid(name.replace(/\W/g, '-'));
  const el = h(
    'select',
    { id, name, onchange: options.onchange },
    choices.map(([value, text]) => h('option', { value, selected: value === (options.value ?? '') }, text)),
  );
  return labelled(id, label, el, options.help);
}

export function checkbox(name: string, label: string, options: { checked?: boolean; help?: Child; onchange?: (e: Event) => void } = {}): HTMLElement {
  const id = uid(name.replace(/\W/g, '-'));
  return h(
    'div',
    { class: 'field field-check' },
    h('input', { id, name, type: 'checkbox', checked: options.checked, onchange: options.onchange }),
    h('label', { for: id }, label),
    options.help ? h('p', { class: 'help' }, options.help) : null,
  );
}

/** A block of SQL with a Copy button. */
export function copyBlock(label: string, text: string): HTMLElement {
  const pre = h('pre', { class: 'sql', tabindex: '0', 'aria-label': label }, text);
  const status = h('span', { class: 'copy-status', role: 'status' });
  const copy = button(
    'Copy',
    async () => {
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = 'Copied.';
      } catch {
        // No clipboard (an insecure origin): select the text for Ctrl+C instead.
        const range = document.createRange();
        range.selectNodeContents(pre);
        const sel = window.getSelection();
        sel?.removeAllRanges();
        sel?.addRange(range);
        status.textContent = 'Selected: press Ctrl+C to copy.';
      }
    },
    { 'aria-label': `Copy ${label}` },
  );
  return h('div', { class: 'copy-block' }, h('div', { class: 'copy-head' }, h('span', null, label), copy, status), pre);
}

/** Reads a form's named controls: text as trimmed strings, checkboxes as booleans. */
export function formValues(form: HTMLFormElement): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const el of Array.from(form.elements)) {
    const c = el as HTMLInputElement;
    if (!c.name) continue;
    out[c.name] = c.type === 'checkbox' ? c.checked : c.value.trim();
  }
  return out;
}

/** Runs an action from a button: disables it meanwhile and puts the error (or nothing) in `where`. */
export async function act(btn: HTMLButtonElement | null, where: Element, fn: () => Promise<void>): Promise<void> {
  if (btn) btn.disabled = true;
  where.replaceChildren();
  try {
    await fn();
  } catch (err) {
    where.replaceChildren(errorBox(err));
  } finally {
    if (btn) btn.disabled = false;
  }
}
