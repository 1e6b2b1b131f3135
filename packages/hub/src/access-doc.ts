/**
 * docs/access.md, made from the routes' own access declarations (the route × role matrix test
 * checks that the file is current and that the hub enforces exactly what it says).
 */
import type { RouteInfo } from './server.js';

export function renderAccessDoc(routes: RouteInfo[]): string {
  const rows = [...routes]
    .filter((r) => r.access || r.public !== undefined)
    .filter((r) => !r.url.startsWith('/api/docs'))
    .sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  const lines = rows.map((r) => {
    const m = r.websocket ? 'WS' : r.method;
    if (!r.access) return `| ${m} | \`${r.url}\` | public | — | — | ${r.public} |`;
    const a = r.access;
    const notes = [a.sessionOnly ? 'sessions only: API tokens refused' : ''].filter(Boolean).join('; ');
    return `| ${m} | \`${r.url}\` | ${a.role} | ${a.sessionOnly ? '—' : a.scope} | ${a.stepUp ? 'yes' : ''} | ${notes} |`;
  });
  return `# Who may call what

<!-- Generated from the routes' access declarations by \`node packages/hub/dist/src/tools/access-doc.js\`;
     the route × role matrix test (packages/hub/test/access.test.ts) fails when this file is stale. -->

Every route declares the least **role** it needs, the **scope** an API token must have, and whether
it needs a **step-up**; the hub refuses to start with a route that declares nothing. A request
whose \`Host\` is not one of the hub's names gets \`421 host_not_allowed\` before anything else
(agents' routes and health excepted; see \`allowed_hosts\` in the README). The rule, in order:

1. No valid session or API token: \`401 unauthorized\` (public routes excepted).
2. A cookie-authenticated write (POST, PUT, PATCH, DELETE) without the session's CSRF token in
   \`x-csrf-token\`, or from a foreign Origin: \`403 csrf_failed\`. Bearer requests are exempt.
3. Role below the route's (viewer < operator < admin): \`403 forbidden\`.
4. An API token on a sessions-only route: \`403 session_required\`.
5. An API token whose scope is below the route's (read < write < execute; each includes the ones
   before): \`403 insufficient_scope\`.
6. Step-up routes: a session whose last password/one-time-code confirmation is older than the step-up
   window (\`step_up_window\`, default 10 min; logging in counts), or an API token below
   \`execute\`: \`403 step_up_required\`. Confirm with \`POST /api/v1/auth/step-up\` (\`tether stepup\`;
   the CLI asks by itself when a command hits this).

API tokens act with their owner's current role, never more. A user limited to a label selector,
and an API token created with one, see and act on matching hosts only: another host answers every
\`/api/v1/hosts/:id…\` route \`404 no such host\`, exactly like an unknown id (after the rules
above, before the route looks at the request's body), and a job that touched it, or a task on it,
answers 404 like an unknown id.

| method | path | least role | token scope | step-up | notes |
|---|---|---|---|---|---|
${lines.join('\n')}
`;
}
