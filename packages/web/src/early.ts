/**
 * The first script the page runs, on its own and with no imports, so it starts before the main
 * bundle has even been parsed (about 100 ms on a busy machine): it asks the hub for what the first
 * page needs. The overview snapshot is asked only when the page opens on the fleet overview, and
 * nothing is asked without the CSRF cookie the hub sets beside the session (`maySession` in
 * api.ts): a logged-out page would only be refused. The bundle's first `get` of the same path takes
 * the answer (see `takeEarly` in api.ts).
 */
/** GET answers asked for ahead of their first reader, by path (shared with api.ts through globalThis). */
export type EarlyAnswers = Map<string, { at: number; answer: Promise<Response | undefined> }>;
const early: EarlyAnswers = ((globalThis as { __tetherEarly?: EarlyAnswers }).__tetherEarly ??= new Map());
const route = location.hash.replace(/^#/, '').split('?')[0] || '/';
const loggedIn = /(?:^|;\s*)tether_csrf=[^;]/.test(document.cookie);
for (const p of loggedIn ? ['/api/v1/auth/me', ...(route === '/' ? ['/api/v1/metrics/overview'] : [])] : []) {
  early.set(p, { at: Date.now(), answer: fetch(p, { credentials: 'same-origin' }).catch(() => undefined) });
}
