import { api, setToken, token, whenUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import { registerPages } from './pages/index.js';
import { go, resolve } from './router.js';
import { errorBox } from './ui.js';

/**
 * The console's shell: a header with the sections, one <main> that each
 * route renders into, focus moved to the new page's heading so keyboard and
 * screen-reader users land on it.
 */
const NAV: [string, string][] = [
  ['#/destinations', 'Destinations'],
  ['#/runs', 'Runs'],
  ['#/schedules', 'Schedules'],
  ['#/webhooks', 'Webhooks'],
  ['#/dead-letters', 'Dead letters'],
];

const main = h('main', { id: 'main', tabindex: '-1' });
const signOut = h(
  'button',
  {
    type: 'button',
    class: 'link-button',
    hidden: true,
    onclick: () => {
      setToken(null);
      go('#/signin');
    },
  },
  'Sign out',
);
const nav = h(
  'nav',
  { 'aria-label': 'Sections' },
  h(
    'ul',
    null,
    NAV.map(([href, text]) => h('li', null, h('a', { href }, text))),
  ),
);
const header = h('header', { class: 'top' }, h('a', { href: '#/destinations', class: 'brand' }, 'pgland'), nav, signOut);

let current = 0;
async function render(): Promise<void> {
  const seq = ++current;
  const found = resolve(location.hash);
  const hash = location.hash || '#/destinations';
  for (const a of Array.from(nav.querySelectorAll('a'))) {
    if (hash.startsWith(a.getAttribute('href')!)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  signOut.hidden = !token();
  main.setAttribute('aria-busy', 'true');
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    if (!found) throw new Error(`no page ${hash}`);
    document.title = `${found.title} · pgland`;
    const content = await found.page(found.route);
    if (seq !== current) return; // another page was asked for meanwhile
    replace(main, content);
  } catch (err) {
    if (seq !== current) return;
    replace(main, h('h1', null, 'Something went wrong'), errorBox(err));
  } finally {
    if (seq === current) main.removeAttribute('aria-busy');
  }
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

async function start(): Promise<void> {
  registerPages();
  document.body.replaceChildren(header, main);
  whenUnauthorized(() => {
    setToken(null);
    if (!location.hash.startsWith('#/signin')) go(`#/signin?next=${encodeURIComponent(location.hash || '#/destinations')}`);
  });
  window.addEventListener('hashchange', () => void render());
  // Without a token configured (loopback only) the API answers at once: no sign-in.
  if (!location.hash.startsWith('#/signin')) {
    try {
      await api('GET', '/destinations');
    } catch {
      // 401: whenUnauthorized moved to the sign-in page; anything else shows on the page itself
    }
  }
  await render();
}

void start();
