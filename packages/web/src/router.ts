/** Hash routes (#/hosts/ID…): the hub serves one page, and links work without server rewrites. */
import { useEffect, useState } from 'react';

export interface Route {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

/**
 * Every page of the console, as a hash path with `:name` for a variable part. App.tsx must render
 * each (its table is typed over this list) and test/console/layout.test.ts reads this list and
 * visits every page at phone and desktop width, so a page added here without a visit fails there.
 * Listed from the most specific: the first that matches wins.
 */
export const PAGES = [
  '/',
  '/exec',
  '/jobs',
  '/jobs/:id',
  '/hosts/:id',
  '/hosts/:id/files',
  '/hosts/:id/terminal',
  '/hosts/:id/:tab',
  '/alerts',
  '/alerts/rules',
  '/alerts/channels',
  '/alerts/silences',
  '/enroll',
  '/audit',
  '/terminals',
  '/terminals/:id',
  '/users',
  '/profile',
] as const;
export type Page = (typeof PAGES)[number];

/**
 * The tabs of a host page (`#/hosts/ID/TAB`; the first is the default), so reload and back keep
 * the tab. The layout test visits each of them too.
 */
export const HOST_TABS = ['charts', 'processes', 'connections', 'hardware', 'sensors', 'runs', 'docker', 'services', 'cron', 'power', 'hosts-file'] as const;
export type HostTab = (typeof HOST_TABS)[number];

/** The page a path shows and its variable parts, or undefined for an unknown path. */
export function matchPage(parts: string[]): { page: Page; params: Record<string, string> } | undefined {
  for (const page of PAGES) {
    const pat = page.split('/').filter(Boolean);
    if (pat.length !== parts.length) continue;
    const params: Record<string, string> = {};
    if (pat.every((p, n) => (p.startsWith(':') ? ((params[p.slice(1)] = parts[n]!), true) : p === parts[n]))) return { page, params };
  }
  return undefined;
}

function parse(): Route {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, q] = h.split('?') as [string, string | undefined];
  return { path, parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q ?? '') };
}

export function useRoute(): Route {
  const [r, setR] = useState(parse);
  useEffect(() => {
    const on = () => setR(parse());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return r;
}

export function go(path: string): void {
  location.hash = '#' + path;
}

export const href = (path: string) => '#' + path;
