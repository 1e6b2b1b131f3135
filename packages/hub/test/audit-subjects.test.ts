/**
 * Every mutating route's audit entry names what it touched, checked against the route table: each
 * POST/PUT/PATCH/DELETE under /api is called (a route without a call here fails the first test), and
 * its entry must name every id in its path (hosts with their hostnames, users with their names), the
 * paths and images it was given, and what it made. Issue 21: a user disabled, a file deleted, a
 * command run or a token revoked left entries with no target at all.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { simFacts } from '@tether/testkit';
import { ENGINES } from './db.js';
import { ADMIN_PW, startApp, type TestApp } from './hub.js';
import type { AuditEntry } from '../src/modules/audit/log.js';
import { redact } from '../src/modules/audit/log.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Call {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  /** a subject of this type marked role 'result' when the call succeeds */
  creates?: string;
  /** the call must succeed (so that what it makes is checked, not only its refusal) */
  ok?: boolean;
  /** credentials other than the admin's fresh session */
  token?: string;
  /** sent as this content type (a string or Buffer body) */
  contentType?: string;
  /** subjects expected besides the path's ids: [type, id or name] */
  names?: [string, string][];
}

interface Ctx {
  app: TestApp;
  host: { id: string; hostname: string };
  adminSession: string;
  user: (name: string) => Promise<string>;
  selfSession: () => Promise<string>;
  newHost: (hostname: string) => Promise<string>;
}

/** A script bundle: a tar with manifest.json at its root. */
function bundleTar(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'tether-bundle-'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ entry: ['./run.sh'] }));
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  const tar = execFileSync('tar', ['-C', dir, '-c', 'manifest.json', 'run.sh']);
  rmSync(dir, { recursive: true, force: true });
  return tar;
}

const HOST_ROUTE_PARAMS = { cid: 'web-frontend', unit: 'nginx.service', pid: '4242', entry: 'tether-0123456789abcdef' };

/** What each mutating route is called with. */
const CALLS: Record<string, (c: Ctx) => Promise<Call> | Call> = {
  'POST /api/v1/alerts/channels': () => ({ body: { name: 'ops hook', type: 'webhook', config: { url: 'http://127.0.0.1:9/hook' } }, creates: 'channel', ok: true }),
  'PATCH /api/v1/alerts/channels/:id': async (c) => ({ params: { id: (await c.app.hub.alerts.putChannel({ name: 'p', type: 'webhook', config: { url: 'http://127.0.0.1:9/p' } } as never)).id }, body: { enabled: false } }),
  'DELETE /api/v1/alerts/channels/:id': async (c) => ({ params: { id: (await c.app.hub.alerts.putChannel({ name: 'd', type: 'webhook', config: { url: 'http://127.0.0.1:9/d' } } as never)).id } }),
  'POST /api/v1/alerts/channels/:id/test': async (c) => ({ params: { id: (await c.app.hub.alerts.putChannel({ name: 't', type: 'webhook', config: { url: 'http://127.0.0.1:9/t' } } as never)).id } }),
  'POST /api/v1/alerts/rules': () => ({ body: { name: 'load high', metric: 'load1', op: '>', threshold: 50, forSec: 60 }, creates: 'rule', ok: true }),
  'PATCH /api/v1/alerts/rules/:id': async (c) => ({ params: { id: (await c.app.hub.alerts.createRule({ name: 'r1', metric: 'load1', op: '>', threshold: 9 } as never)).id }, body: { enabled: false } }),
  'DELETE /api/v1/alerts/rules/:id': async (c) => ({ params: { id: (await c.app.hub.alerts.createRule({ name: 'r2', metric: 'load1', op: '>', threshold: 9 } as never)).id } }),
  'POST /api/v1/alerts/rules/reset-presets': () => ({ ok: true }),
  'POST /api/v1/alerts/silences': (c) => ({ body: { hostId: c.host.id, durationSec: 600, reason: 'maintenance' }, creates: 'silence', ok: true, names: [['host', c.host.id]] }),
  'DELETE /api/v1/alerts/silences/:id': async (c) => ({ params: { id: (await c.app.hub.alerts.addSilence({ selector: 'env=lab', endsAt: c.app.hub.clock.now() + 60_000, reason: 'x' }, 'admin')).id }, ok: true }),
  // The host routes that end a host get hosts of their own.
  'DELETE /api/v1/hosts/:id': async (c) => ({ params: { id: await c.newHost('old-1') }, ok: true, names: [['host', 'old-1']] }),
  'POST /api/v1/hosts/:id/revoke': async (c) => ({ params: { id: await c.newHost('stolen-1') }, ok: true, names: [['host', 'stolen-1']] }),
  'POST /api/v1/api-tokens': () => ({ body: { name: 'ci deploys', scope: 'read' }, creates: 'token', ok: true }),
  'DELETE /api/v1/api-tokens/:id': async (c) => ({ params: { id: (await c.app.hub.auth.createApiToken((await c.app.hub.auth.findUser('admin'))!.id, { name: 'old', scope: 'read', hostSelector: null, expiresAt: c.app.hub.clock.now() + 3600_000 }, c.app.hub.clock.now())).id }, ok: true }),
  // Changes nothing (install.sh asks whether a token would be accepted); an unknown token is refused.
  'POST /api/v1/enrollment-tokens/check': () => ({ body: { token: 'not-a-token-at-all' } }),
  'POST /api/v1/auth/login': () => ({ body: { username: 'admin', password: ADMIN_PW }, ok: true, names: [['user', 'admin']] }),
  'POST /api/v1/auth/logout': async (c) => ({ token: await c.selfSession(), ok: true }),
  'POST /api/v1/auth/password': async (c) => ({ token: await c.selfSession(), body: { currentPassword: 'wrong-password', newPassword: 'a-new-long-password' } }),
  'DELETE /api/v1/auth/sessions/:id': async (c) => {
    const tok = await c.selfSession();
    const s = await c.app.hub.auth.authenticate(tok, c.app.hub.clock.now());
    return { params: { id: (s as { sid: string }).sid }, ok: true };
  },
  'POST /api/v1/auth/step-up': async (c) => ({ token: await c.selfSession(), body: { password: 'wrong-password' } }),
  'POST /api/v1/auth/totp': async (c) => ({ token: await c.selfSession() }),
  'POST /api/v1/auth/totp/confirm': async (c) => ({ token: await c.selfSession(), body: { code: '000000' } }),
  'DELETE /api/v1/auth/totp': async (c) => ({ token: await c.selfSession(), body: { password: 'wrong-password' } }),
  'POST /api/v1/bundles': () => ({ body: bundleTar(), contentType: 'application/x-tar', creates: 'bundle', ok: true }),
  'DELETE /api/v1/bundles/:id': () => ({ params: { id: 'bu_none' } }),
  'POST /api/v1/bundles/:id/run': (c) => ({ params: { id: 'bu_none' }, body: { target: { hosts: [c.host.id] } } }),
  'POST /api/v1/enrollment-tokens': () => ({ body: { name: 'rack 4', expiresInSec: 3600 }, creates: 'enroll-token', ok: true }),
  'DELETE /api/v1/enrollment-tokens/:id': async (c) => ({ params: { id: (await c.app.hub.enroll.create({ name: 'r', labels: {}, expiresInSec: 600, singleUse: true, createdBy: 'admin', now: c.app.hub.clock.now() })).record.id }, ok: true }),
  // A version the hub does not hold: refused before any host is touched.
  'POST /api/v1/agents/upgrade': (c) => ({ body: { target: { hosts: [c.host.id] }, version: '99.0.0' } }),
  'POST /api/v1/exec': (c) => ({ body: { target: { hosts: [c.host.id] }, command: ['uname', '-a'], mode: 'async' }, creates: 'job', ok: true, names: [['host', c.host.id]] }),
  // A hub alone refuses to drain (409), and its entry still names the hub asked for.
  'POST /api/v1/cluster/hubs/:id/drain': () => ({ params: { id: 'hub-a-1234' } }),
  'POST /api/v1/jobs/:id/cancel': async (c) => {
    const r = await c.app.call(c.adminSession, 'POST', '/api/v1/exec', { target: { hosts: [c.host.id] }, command: ['sleep', '60'], mode: 'async' });
    return { params: { id: r.json.job.id }, names: [['host', c.host.id]] };
  },
  'POST /api/v1/tasks/:id/kill': async (c) => {
    const r = await c.app.call(c.adminSession, 'POST', '/api/v1/exec', { target: { hosts: [c.host.id] }, command: ['sleep', '60'], mode: 'async' });
    return { params: { id: r.json.tasks[0].id }, body: { signal: 'SIGTERM' }, names: [['host', c.host.id]] };
  },
  'POST /api/v1/users': () => ({ body: { username: 'dana', password: 'a-long-password-for-dana', role: 'viewer' }, creates: 'user', ok: true }),
  'PATCH /api/v1/users/:id': async (c) => ({ params: { id: await c.user('erin') }, body: { disabled: true }, ok: true }),
  'DELETE /api/v1/users/:id': async (c) => ({ params: { id: await c.user('frank') }, ok: true }),
  'POST /api/v1/users/:id/password': async (c) => ({ params: { id: await c.user('gail') }, body: { password: 'another-long-password' }, ok: true }),
  'DELETE /api/v1/users/:id/totp': async (c) => ({ params: { id: await c.user('hugo') }, ok: true }),
  'POST /api/v1/users/:id/unlock': async (c) => ({ params: { id: await c.user('ines') }, ok: true }),
  // Files and images name what they touch in their query or body.
  'DELETE /api/v1/hosts/:id/files': (c) => ({ params: { id: c.host.id }, query: { path: '/srv/www/old.html' }, names: [['path', '/srv/www/old.html']] }),
  'PUT /api/v1/hosts/:id/files/content': (c) => ({ params: { id: c.host.id }, query: { path: '/srv/www/index.html' }, body: 'hello', names: [['path', '/srv/www/index.html']] }),
  'POST /api/v1/hosts/:id/files/fetch': (c) => ({ params: { id: c.host.id }, body: { url: 'http://127.0.0.1:9/a.tar', path: '/srv/a.tar' }, names: [['path', '/srv/a.tar']] }),
  'POST /api/v1/hosts/:id/files/mkdir': (c) => ({ params: { id: c.host.id }, body: { path: '/srv/new' }, names: [['path', '/srv/new']] }),
  'DELETE /api/v1/hosts/:id/docker/images': (c) => ({ params: { id: c.host.id }, query: { ref: 'nginx:1.27' }, names: [['image', 'nginx:1.27']] }),
  'POST /api/v1/hosts/:id/docker/images/pull': (c) => ({ params: { id: c.host.id }, body: { ref: 'nginx:1.27' }, names: [['image', 'nginx:1.27']] }),
};

/** Any other route under /hosts/:id is called with its path ids and an empty body: refused (offline host, bad body) or not, it names them. */
function hostRoute(c: Ctx): Call {
  return { params: { id: c.host.id, ...HOST_ROUTE_PARAMS }, body: {}, names: [['host', c.host.id]] };
}

for (const engine of ENGINES) {
  describe(`audit subjects on ${engine}`, () => {
    let app: TestApp;
    let ctx: Ctx;
    before(async () => {
      app = await startApp(engine);
      const adminId = (await app.hub.auth.findUser('admin'))!.id;
      const h = await app.hub.hosts.create({ facts: simFacts('web-1'), labels: {}, capabilities: ['metrics', 'exec'], publicKey: 'k'.repeat(43), agentVersion: 't', enrolledBy: null, addr: null, now: app.hub.clock.now() });
      const selfUser = await app.user('self-service', 'operator');
      ctx = {
        app,
        host: { id: h.id, hostname: 'web-1' },
        adminSession: await app.session(adminId),
        user: async (name) => (await app.user(name, 'viewer')).id,
        selfSession: () => app.session(selfUser.id),
        newHost: async (hostname) => (await app.hub.hosts.create({ facts: simFacts(hostname), labels: {}, capabilities: ['metrics'], publicKey: 'k'.repeat(43), agentVersion: 't', enrolledBy: null, addr: null, now: app.hub.clock.now() })).id,
      };
    });
    after(() => app.cleanup());

    const mutating = () => app.hub.routes.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && r.url.startsWith('/api/') && !r.websocket);

    test('every mutating route is called by this test', () => {
      const missing = mutating()
        .filter((r) => !CALLS[`${r.method} ${r.url}`] && !r.url.startsWith('/api/v1/hosts/:id'))
        .map((r) => `${r.method} ${r.url}`);
      assert.deepEqual(missing, [], 'add a call for each of these');
    });

    test('each one’s audit entry names every id in its path, the paths and images it was given, and what it made', async () => {
      const problems: string[] = [];
      for (const r of mutating()) {
        const key = `${r.method} ${r.url}`;
        let call: Call;
        try {
          call = await (CALLS[key] ?? hostRoute)(ctx);
        } catch (err) {
          problems.push(`${key}: setting up the call failed: ${(err as Error).message}`);
          continue;
        }
        const params = call.params ?? {};
        const url = r.url.replace(/:([a-z]+)/g, (_, p: string) => encodeURIComponent(params[p] ?? `missing-${p}`)) + (call.query ? `?${new URLSearchParams(call.query)}` : '');
        const raw = typeof call.body === 'string' || Buffer.isBuffer(call.body);
        const res = await app.call(call.token ?? ctx.adminSession, r.method, url, call.body, raw ? { 'content-type': call.contentType ?? 'text/plain' } : {});
        if (call.ok && (res.status < 200 || res.status >= 300)) {
          problems.push(`${key}: answered ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
          continue;
        }
        await app.hub.audit.flush();
        const [e] = (await app.hub.audit.query({ action: key, limit: 1 })) as AuditEntry[];
        if (!e) {
          problems.push(`${key}: no audit entry (status ${res.status})`);
          continue;
        }
        const subjects = e.subjects ?? [];
        if (!subjects.length && e.status! < 400) problems.push(`${key}: no subjects`);
        for (const p of r.url.match(/:([a-z]+)/g) ?? []) {
          const v = params[p.slice(1)]!;
          if (!subjects.some((s) => s.id === v)) problems.push(`${key}: ${p} (${v}) not among ${JSON.stringify(subjects)}`);
        }
        for (const [type, id] of call.names ?? []) {
          const s = subjects.find((x) => x.type === type && (x.id === id || x.name === id));
          if (!s) problems.push(`${key}: no ${type} ${id} among ${JSON.stringify(subjects)}`);
          else if (type === 'host' && !s.name) problems.push(`${key}: host ${id} without its hostname`);
        }
        for (const s of subjects) if (s.type === 'host' && s.id === ctx.host.id && !e.targets.includes(ctx.host.id)) problems.push(`${key}: host not in targets (the host filter would miss it)`);
        if (call.creates && res.status < 300 && !subjects.some((s) => s.type === call.creates && s.role === 'result')) problems.push(`${key}: made a ${call.creates} but names none as its result: ${JSON.stringify(subjects)}`);
        if (JSON.stringify(e.params).includes('[object]')) problems.push(`${key}: params recorded as [object]: ${JSON.stringify(e.params)}`);
      }
      assert.deepEqual(problems, []);
    });

    test('a user disabled, a command run and a file deleted read back with their targets by name', async () => {
      const [disabled] = await app.hub.audit.query({ action: 'PATCH /api/v1/users/:id', limit: 1 });
      assert.deepEqual(disabled!.subjects, [{ type: 'user', id: disabled!.subjects![0]!.id, name: 'erin' }]);
      assert.deepEqual((disabled!.params as { body: unknown }).body, { disabled: true });
      const ran = (await app.hub.audit.query({ action: 'POST /api/v1/exec', limit: 20 })).find((e) => JSON.stringify(e.params).includes('uname'));
      assert.deepEqual(ran!.targets, [ctx.host.id]);
      assert.deepEqual(ran!.subjects!.map((s) => [s.type, s.name ?? s.id, s.role ?? '']), [
        ['host', 'web-1', ''],
        ['job', 'uname -a', 'result'],
      ]);
      const byHost = await app.hub.audit.query({ host: ctx.host.id, action: 'POST /api/v1/exec' });
      assert.ok(byHost.length >= 1, 'the host filter finds the exec');
      const [deleted] = await app.hub.audit.query({ action: 'DELETE /api/v1/hosts/:id/files', limit: 1 });
      assert.deepEqual(deleted!.subjects, [
        { type: 'host', id: ctx.host.id, name: 'web-1' },
        { type: 'path', id: '/srv/www/old.html', host: ctx.host.id },
      ]);
      assert.equal((await app.hub.audit.verify()).ok, true);
    });
  });
}

test('redact keeps records without Object’s prototype (Fastify’s params and query) and summarises class instances', () => {
  const params = Object.assign(Object.create(Object.create(null)) as object, { id: 'h1', path: '/etc' });
  assert.deepEqual(redact({ params, query: Object.assign(Object.create(null) as object, { force: 'true' }) }), { params: { id: 'h1', path: '/etc' }, query: { force: 'true' } });
  assert.equal(redact(new (class Upload {})()), '[Upload]');
  assert.deepEqual(redact({ password: 'x', nested: { apiToken: 'y', name: 'n' } }), { password: '[redacted]', nested: { apiToken: '[redacted]', name: 'n' } });
});
