import type { Child } from './dom.js';

/**
 * Hash routes (#/runs/…): the server serves one page at /, and a link or the
 * Back button never reloads it (so the token held in this tab stays).
 */
export interface Route {
  params: Record<string, string>;
  query: URLSearchParams;
}
export type Page = (route: Route) => Promise<Child> | Child;

const routes: { pattern: RegExp; keys: string[]; title: string; page: Page }[] = [];

export function route(path: string, title: string, page: Page): void {
  const keys: string[] = [];
  const pattern = new RegExp('^' + path.replace(/:(\w+)/g, (_m, k: string) => (keys.push(k), '([^/]+)')) + '$');
  routes.push({ pattern, keys, title, page });
}

export function resolve(hash: string): { page: Page; title: string; route: Route } | undefined {
  const raw = hash.replace(/^#/, '') || '/destinations';
  const [path = '/', qs = ''] = raw.split('?', 2);
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1] ?? '')]));
    return { page: r.page, title: r.title, route: { params, query: new URLSearchParams(qs) } };
  }
  return undefined;
}

export function go(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
