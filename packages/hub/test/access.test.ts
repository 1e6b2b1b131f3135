/**
 * The route × role matrix: every route the hub serves (read from the app itself, so routes added
 * later are covered without touching this file) is called by every kind of caller, and must allow
 * or deny exactly as its declaration and docs/access.md say.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { ENGINES } from './db.js';
import { startApp, type TestApp } from './hub.js';
import { renderAccessDoc } from '../src/access-doc.js';
import type { RouteAccess } from '../src/http.js';
import type { Role, TokenScope } from '../src/modules/auth/store.js';

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 } as const;
const SCOPE_RANK = { read: 0, write: 1, execute: 2 } as const;
const DENIALS = new Set(['unauthorized', 'forbidden', 'insufficient_scope', 'session_required', 'step_up_required', 'csrf_failed']);

interface Caller {
  name: string;
  role?: Role;
  token?: TokenScope;
  stale?: boolean;
  /** a fresh credential for each call, so that calls like logout cannot spoil the next */
  make?: () => Promise<string>;
}

/** The documented rule, written out independently of the hub's implementation. */
function expected(a: RouteAccess | undefined, c: Caller): string | undefined {
  if (!a) return undefined;
  if (!c.make) return 'unauthorized';
  if (ROLE_RANK[c.role!] < ROLE_RANK[a.role]) return 'forbidden';
  if (c.token && a.sessionOnly) return 'session_required';
  if (c.token && SCOPE_RANK[c.token] < SCOPE_RANK[a.scope]) return 'insufficient_scope';
  if (a.stepUp && (c.token ? c.token !== 'execute' : c.stale)) return 'step_up_required';
  return undefined;
}

for (const engine of ENGINES) {
  describe(`route × role matrix (${engine})`, () => {
    let app: TestApp;
    const callers: Caller[] = [{ name: 'no credential' }];
    before(async () => {
      app = await startApp(engine);
      for (const role of ['viewer', 'operator', 'admin'] as const) {
        const u = await app.user(`m-${role}`, role);
        callers.push({ name: `${role} session, stepped up`, role, make: () => app.session(u.id) });
        callers.push({ name: `${role} session, not stepped up`, role, stale: true, make: () => app.session(u.id, null) });
        callers.push({ name: `${role} session, step-up expired`, role, stale: true, make: () => app.session(u.id, Date.now() - 11 * 60_000) });
        for (const scope of ['read', 'write', 'execute'] as const) callers.push({ name: `${role} API token ${scope}`, role, token: scope, make: () => app.apiToken(u.id, scope) });
      }
    });
    after(() => app.cleanup());

    test('every route declares access or says why it is public', () => {
      assert.ok(app.hub.routes.length > 30, `${app.hub.routes.length} routes`);
      for (const r of app.hub.routes) assert.ok(r.access || r.public !== undefined, `${r.method} ${r.url}`);
    });

    test('every route allows and denies every caller exactly as declared', async () => {
      let allowed = 0;
      let denied = 0;
      for (const r of app.hub.routes) {
        if (r.url.startsWith('/api/docs')) continue;
        const url = r.url.replace(/:(\w+)/g, 'matrix-none').replace(/\*$/, 'x');
        for (const c of callers) {
          const token = c.make ? await c.make() : undefined;
          const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {};
          const res = await app.call(token, r.method, url, body);
          const want = expected(r.access, c);
          const what = `${r.method} ${r.url} as ${c.name}: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`;
          if (want) {
            assert.equal(res.status, want === 'unauthorized' ? 401 : 403, what);
            assert.equal(res.json.error, want, what);
            denied++;
          } else {
            allowed++;
            assert.ok(res.status !== 401 && !(res.status === 403 && DENIALS.has(res.json?.error)), `allowed, but ${what}`);
          }
        }
      }
      assert.ok(allowed > 150 && denied > 250, `allowed ${allowed}, denied ${denied}`);
    });

    test('docs/access.md is the table made from these declarations', () => {
      const file = resolve(fileURLToPath(import.meta.url), '../../../../../docs/access.md');
      assert.equal(readFileSync(file, 'utf8'), renderAccessDoc(app.hub.routes), 'docs/access.md is stale: run `npm run build && node packages/hub/dist/src/tools/access-doc.js`');
    });
  });
}
