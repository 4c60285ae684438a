import { api, setToken } from '../api.js';
import { h } from '../dom.js';
import { go, type Route } from '../router.js';
import { act, field } from '../ui.js';

/** Sign-in with the API token (PGLAND_API_TOKEN), checked by one call before it is kept for this tab. */
export function signInPage(route: Route): HTMLElement {
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'narrow',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const value = (form.elements.namedItem('token') as HTMLInputElement).value.trim();
        void act(submit, out, async () => {
          await api('GET', '/destinations', undefined, { tokenOverride: value });
          setToken(value);
          const next = route.query.get('next');
          go(next && next.startsWith('#/') && !next.startsWith('#/signin') ? next : '#/destinations');
        });
      },
    },
    field('token', 'API token', {
      type: 'password',
      required: true,
      autocomplete: 'current-password',
      help: 'The PGLAND_API_TOKEN the service was started with. It is kept in this browser tab only (session storage), and sent to this server alone.',
    }),
    submit,
  );
  return h('section', null, h('h1', null, 'Sign in'), form, out);
}
