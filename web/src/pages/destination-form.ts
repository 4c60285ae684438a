import { api } from '../api.js';
import { h, type Child } from '../dom.js';
import { go, type Route } from '../router.js';
import { act, button, checkbox, field, formValues, notice, select, textArea } from '../ui.js';
import type { Destination } from './data.js';

/**
 * Add or edit a destination with every key of its config
 * (docs/configuration.md). A stored secret is never sent to the page: the
 * API shows "[set]", the form says "set", and an empty secret field sends
 * "[set]" back, which keeps the stored value.
 */
const SET = '[set]';

const SSL_MODES: [string, string][] = [
  ['disable', 'disable: no TLS (only on a network you trust)'],
  ['prefer', 'prefer: TLS when the server offers it, not verified'],
  ['require', 'require: TLS always, certificate not verified'],
  ['verify-ca', 'verify-ca: TLS, certificate signed by the CA below'],
  ['verify-full', 'verify-full: TLS, certificate signed by the CA and naming the host (recommended)'],
];

/** Numeric settings with their defaults (src/config/schema.ts). */
const NUMBERS: [string, string, string][] = [
  ['batch_size', 'Records per batch', '50000'],
  ['batch_bytes', 'Largest batch, bytes', '33554432'],
  ['batch_retries', 'Retries of a batch that failed on a transient error', '3'],
  ['lock_timeout_ms', 'Wait for another run of the same object, ms', '60000'],
  ['connect_timeout_ms', 'Connect timeout (TCP, TLS, login, SSH), ms', '15000'],
  ['statement_timeout_ms', 'Statement timeout, ms (0: none)', '0'],
  ['max_parallel_objects', 'Objects loaded in parallel', '2'],
];
const SSH_NUMBERS: [string, string, string][] = [
  ['ssh_tunnel.keepalive_interval_ms', 'Keepalive interval, ms', '10000'],
  ['ssh_tunnel.keepalive_count_max', 'Unanswered keepalives before the tunnel counts as lost', '3'],
  ['ssh_tunnel.reconnect_attempts', 'Reconnect attempts', '5'],
];

function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v as string | number | boolean);
}

/** A secret's field: its state (set / not set, never the value), an input to replace it, and a box to remove it. */
function secretField(name: string, label: string, stored: unknown, options: { multiline?: boolean; help?: Child } = {}): HTMLElement {
  const isSet = stored === SET;
  const state = h(
    'span',
    { class: 'secret-state', 'data-secret': name },
    `${label}: `,
    h('strong', null, isSet ? 'set' : 'not set'),
    isSet ? ' (never shown; leave the field empty to keep it)' : '',
  );
  const help = h('span', null, state, options.help ?? null);
  const input = options.multiline
    ? textArea(name, isSet ? `Replace ${label.toLowerCase()}` : label, { rows: 4, help, placeholder: '-----BEGIN …' })
    : field(name, isSet ? `Replace ${label.toLowerCase()}` : label, { type: 'password', autocomplete: 'new-password', help });
  return h('div', { class: 'secret' }, input, isSet ? checkbox(`remove:${name}`, `Remove the stored ${label.toLowerCase()}`) : null);
}

function numberFields(list: [string, string, string][], read: (key: string) => unknown): HTMLElement[] {
  return list.map(([key, label, def]) => field(key, label, { type: 'number', min: 0, value: str(read(key)), placeholder: `default ${def}` }));
}

/** The config the form describes, secrets left empty sent as "[set]" when one is stored. */
export function configFromForm(values: Record<string, string | boolean>, stored: Record<string, any>): Record<string, unknown> {
  const config: Record<string, any> = {};
  const ssh: Record<string, any> = {};
  const numeric = new Set([...NUMBERS, ...SSH_NUMBERS].map(([k]) => k).concat(['port', 'ssh_tunnel.port']));
  const secrets = ['password', 'url', 'sslkey', 'ssh_tunnel.private_key', 'ssh_tunnel.passphrase', 'ssh_tunnel.password'];
  for (const [key, value] of Object.entries(values)) {
    if (key === 'name' || key === 'use_ssh' || key.startsWith('remove:') || secrets.includes(key)) continue;
    if (value === '' || value === false) continue;
    const v = numeric.has(key) ? Number(value) : value;
    if (key.startsWith('ssh_tunnel.')) ssh[key.slice(11)] = v;
    else config[key] = v;
  }
  for (const key of secrets) {
    const given = values[key];
    const storedValue = key.startsWith('ssh_tunnel.') ? stored.ssh_tunnel?.[key.slice(11)] : stored[key];
    const value = typeof given === 'string' && given !== '' ? given : storedValue === SET && !values[`remove:${key}`] ? SET : undefined;
    if (value === undefined) continue;
    if (key.startsWith('ssh_tunnel.')) ssh[key.slice(11)] = value;
    else config[key] = value;
  }
  if (values.use_ssh) config.ssh_tunnel = ssh;
  return config;
}

export async function destinationFormPage(route: Route): Promise<HTMLElement> {
  const id = route.params.id;
  const dest = id ? await api<Destination>('GET', `/destinations/${id}`) : undefined;
  const c: Record<string, any> = dest?.config ?? {};
  const t: Record<string, any> = c.ssh_tunnel ?? {};
  const read = (key: string): unknown => (key.startsWith('ssh_tunnel.') ? t[key.slice(11)] : c[key]);
  const out = h('div', { 'aria-live': 'polite' });

  const sshBox = h(
    'div',
    { class: 'ssh-fields', hidden: !c.ssh_tunnel },
    h(
      'div',
      { class: 'row' },
      field('ssh_tunnel.host', 'Bastion host', {
        value: str(t.host),
        help: 'The SSH server that can reach the database. Host and port above are then the database as the bastion sees it.',
      }),
      field('ssh_tunnel.port', 'Bastion port', { type: 'number', value: str(t.port), placeholder: '22' }),
      field('ssh_tunnel.user', 'Bastion user', { value: str(t.user) }),
    ),
    secretField('ssh_tunnel.private_key', 'Private key', t.private_key, {
      multiline: true,
      help: "ed25519, ECDSA or RSA, in OpenSSH, PEM or PKCS#8 form. Its .pub line goes in the bastion user's ~/.ssh/authorized_keys.",
    }),
    secretField('ssh_tunnel.passphrase', 'Key passphrase', t.passphrase, { help: 'Only for an encrypted private key.' }),
    secretField('ssh_tunnel.password', 'Bastion password', t.password, { help: 'Instead of a key, when the bastion allows passwords.' }),
    field('ssh_tunnel.host_key_fingerprint', 'Host key pin (SHA256 fingerprint)', {
      value: str(t.host_key_fingerprint),
      placeholder: 'SHA256:…',
      help: h(
        'span',
        null,
        'Required to load. On the bastion run ',
        h('code', null, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'),
        ". Or save without a pin and run Test connection: it shows the bastion's fingerprint and refuses it; compare it with the bastion's own before pinning it here.",
      ),
    }),
    h('details', null, h('summary', null, 'Tunnel settings'), numberFields(SSH_NUMBERS, read)),
  );

  const submit = h('button', { type: 'submit', name: 'save' }, 'Save');
  const saveAndTest = h('button', { type: 'submit', name: 'save-test' }, 'Save and test connection');
  const form = h(
    'form',
    {
      novalidate: true,
      onsubmit: (e: SubmitEvent) => {
        e.preventDefault();
        const testAfter = (e.submitter as HTMLButtonElement | null)?.name === 'save-test';
        const values = formValues(form);
        const body = { name: String(values.name), config: configFromForm(values, c) };
        void act(testAfter ? saveAndTest : submit, out, async () => {
          const saved = dest ? await api<Destination>('PUT', `/destinations/${dest.id}`, body) : await api<Destination>('POST', '/destinations', body);
          go(testAfter ? `#/destinations/${saved.id}/test` : `#/destinations/${saved.id}/edit?saved=1`);
        });
      },
    },
    field('name', 'Name', { required: true, value: dest?.name ?? '', help: 'How this destination is called in the console and the API; unique.' }),
    h(
      'fieldset',
      null,
      h('legend', null, 'Connection'),
      h(
        'div',
        { class: 'row' },
        field('host', 'Host', { value: str(c.host), placeholder: 'db.example.com' }),
        field('port', 'Port', { type: 'number', value: str(c.port), placeholder: '5432' }),
      ),
      h(
        'div',
        { class: 'row' },
        field('database', 'Database', { value: str(c.database) }),
        field('schema', 'Schema', {
          value: str(c.schema),
          placeholder: 'pgland',
          help: "Landed tables and pgland's metadata go here; created on the first load when the user may.",
        }),
      ),
      field('user', 'User', { value: str(c.user), help: 'A role made for pgland: see the least-privilege SQL on the Test connection page.' }),
      secretField('password', 'Password', c.password, { help: 'Any characters work: it is never put into a URL.' }),
      secretField('url', 'Connection URL', c.url, { help: 'Optional: a postgres:// URL instead of the fields above (they win over its parts).' }),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'TLS'),
      select('sslmode', 'SSL mode', SSL_MODES, { value: str(c.sslmode) || 'prefer' }),
      textArea('sslrootcert', 'CA certificate (PEM)', {
        value: str(c.sslrootcert),
        rows: 4,
        placeholder: '-----BEGIN CERTIFICATE----- … or "system" for the public CAs',
        help: "Checks the server's certificate (verify-ca, verify-full).",
      }),
      textArea('sslcert', 'Client certificate (PEM)', {
        value: str(c.sslcert),
        rows: 3,
        placeholder: '-----BEGIN CERTIFICATE-----',
        help: 'When the server asks for one (pg_hba.conf cert).',
      }),
      secretField('sslkey', 'Client key', c.sslkey, { multiline: true }),
      field('sslservername', 'Server name on the certificate', { value: str(c.sslservername), help: 'When the certificate does not carry the host above.' }),
      checkbox('allow_cleartext_password', 'Send the password to a server that asks for it in cleartext over an unencrypted connection', {
        checked: c.allow_cleartext_password === true,
        help: 'Off by default; only on a network you trust.',
      }),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'SSH tunnel'),
      checkbox('use_ssh', 'Reach the database through an SSH bastion', {
        checked: Boolean(c.ssh_tunnel),
        onchange: (e: Event) => (sshBox.hidden = !(e.target as HTMLInputElement).checked),
      }),
      sshBox,
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Batches and locks'),
      h('div', { class: 'grid' }, numberFields(NUMBERS, read)),
      select(
        'delete_mode',
        'Deletes',
        [
          ['', 'soft (default): rows are marked deleted'],
          ['hard', 'hard: rows are removed'],
        ],
        { value: c.delete_mode === 'hard' ? 'hard' : '' },
      ),
      field('work_mem', "work_mem of pgland's sessions", { value: str(c.work_mem), placeholder: '64MB' }),
      field('application_name', 'application_name', { value: str(c.application_name), placeholder: 'pgland' }),
    ),
    h(
      'div',
      { class: 'buttons' },
      submit,
      saveAndTest,
      dest
        ? button(
            'Delete',
            () => {
              if (!confirm(`Delete destination ${dest.name}? Its landed data stays.`)) return;
              void act(null, out, async () => {
                await api('DELETE', `/destinations/${dest.id}`);
                go('#/destinations');
              });
            },
            { class: 'danger' },
          )
        : null,
    ),
    out,
  );
  return h(
    'section',
    null,
    h('h1', null, dest ? `Destination ${dest.name}` : 'Add a destination'),
    route.query.get('saved') ? notice('Saved.', 'ok') : null,
    dest
      ? h(
          'p',
          null,
          h('a', { href: `#/destinations/${dest.id}/test` }, 'Test connection'),
          ' · ',
          h('a', { href: `#/destinations/${dest.id}/tables` }, 'Tables'),
        )
      : null,
    form,
  );
}
