/**
 * A host outside a caller's label scope does not exist for that caller: every host route (read
 * from the hub's own route table, so routes added later are covered) answers it exactly as it
 * answers an id no host has, and so do jobs and tasks that touched it. Checked for a scoped user's
 * session and for an API token limited to some hosts, on both databases.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { simFacts } from '@tether/testkit';
import { ENGINES } from './db.js';
import { startApp, type TestApp } from './hub.js';

const UNKNOWN = 'no-such-host-id';
/** Values for the routes' other parameters: the host decides the answer before they matter. */
const SAMPLE: Record<string, string> = { pid: '4242', cid: 'c0ffee', unit: 'nginx.service', entry: 'e1' };
const fill = (url: string, id: string) => url.replace(':id', id).replace(/:(\w+)/g, (_, name: string) => SAMPLE[name] ?? 'x');

async function wsClose(url: string, token: string): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers: { authorization: `Bearer ${token}` } });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('unexpected-response', (_req, res) => resolve({ code: res.statusCode ?? 0, reason: 'http' }));
    ws.on('error', reject);
  });
}

for (const engine of ENGINES) {
  describe(`hosts outside the caller's scope are not found (${engine})`, () => {
    let app: TestApp;
    let admin: string;
    let inside: { id: string };
    let outside: { id: string; hostname: string };
    const callers: { name: string; token: string }[] = [];
    before(async () => {
      app = await startApp(engine);
      admin = await app.session((await app.hub.auth.findUser('admin'))!.id);
      const mk = (name: string, env: string, key: string) =>
        app.hub.hosts.create({ facts: simFacts(name), labels: { env }, capabilities: ['metrics', 'exec', 'files'], publicKey: key, agentVersion: 't', enrolledBy: null, addr: '10.9.8.7', now: Date.now() });
      inside = await mk('stg-web-1', 'staging', 'k1');
      outside = await mk('prod-secret-db', 'prod', 'k2');
      const scoped = await app.user('scoped-op', 'operator', 'env=staging');
      callers.push({ name: 'operator limited to env=staging', token: await app.session(scoped.id) });
      const plain = await app.user('token-op', 'operator');
      callers.push({ name: 'API token (execute) limited to env=staging', token: await app.apiToken(plain.id, 'execute', 'env=staging') });
    });
    after(() => app.cleanup());

    test('every route under /api/v1/hosts/:id answers a host outside the scope exactly as an unknown id: 404 no such host, nothing about the host', async () => {
      const routes = app.hub.routes.filter((r) => r.url === '/api/v1/hosts/:id' || r.url.startsWith('/api/v1/hosts/:id/'));
      assert.ok(routes.length > 40, `${routes.length} host routes`);
      let notFound = 0;
      for (const c of callers) {
        for (const r of routes) {
          const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {};
          const a = await app.call(c.token, r.method, fill(r.url, outside.id), body);
          const b = await app.call(c.token, r.method, fill(r.url, UNKNOWN), body);
          const what = `${r.method} ${r.url} as ${c.name}: ${a.status} ${JSON.stringify(a.json).slice(0, 200)}`;
          assert.equal(a.status, b.status, what);
          assert.deepEqual(a.json, b.json, what);
          const text = JSON.stringify(a.json);
          assert.ok(!text.includes(outside.hostname) && !text.includes('prod') && !text.includes('10.9.8.7'), `leaks the host: ${what}`);
          if (r.access?.role === 'admin') {
            assert.equal(a.status, 403, `role first: ${what}`);
            continue;
          }
          assert.equal(a.status, 404, what);
          assert.deepEqual(a.json, { error: 'not_found', message: 'no such host' }, what);
          notFound++;
        }
      }
      assert.ok(notFound > 80, `${notFound} answers checked`);
    });

    test('a host inside the scope is served as before', async () => {
      for (const c of callers) {
        const r = await app.call(c.token, 'GET', `/api/v1/hosts/${inside.id}`);
        assert.equal(r.status, 200, c.name);
        assert.equal(r.json.hostname, 'stg-web-1');
        assert.equal((await app.call(c.token, 'GET', `/api/v1/hosts/${inside.id}/tasks`)).status, 200, c.name);
      }
    });

    test('a job or task that touched a host outside the scope answers like an unknown id; exec naming that host answers like an unknown name', async () => {
      const created = await app.call(admin, 'POST', '/api/v1/exec', { target: { hosts: [outside.id, inside.id] }, command: ['true'], mode: 'async' });
      assert.equal(created.status, 202, JSON.stringify(created.json));
      const jobId = created.json.job.id as string;
      const outsideTask = created.json.tasks.find((t: { hostId: string }) => t.hostId === outside.id).id as string;
      for (const c of callers) {
        const pairs: [string, string, string][] = [
          ['GET', `/api/v1/jobs/${jobId}`, '/api/v1/jobs/no-such-job'],
          ['POST', `/api/v1/jobs/${jobId}/cancel`, '/api/v1/jobs/no-such-job/cancel'],
          ['GET', `/api/v1/tasks/${outsideTask}`, '/api/v1/tasks/no-such-task'],
          ['POST', `/api/v1/tasks/${outsideTask}/kill`, '/api/v1/tasks/no-such-task/kill'],
        ];
        for (const [method, url, unknown] of pairs) {
          const body = method === 'POST' ? {} : undefined;
          const a = await app.call(c.token, method, url, body);
          const b = await app.call(c.token, method, unknown, body);
          assert.equal(a.status, 404, `${method} ${url} as ${c.name}: ${JSON.stringify(a.json)}`);
          assert.deepEqual(a.json, b.json, `${method} ${url} as ${c.name}`);
        }
        const named = await app.call(c.token, 'POST', '/api/v1/exec', { target: { hosts: [outside.hostname] }, command: ['true'], mode: 'async' });
        const unknown = await app.call(c.token, 'POST', '/api/v1/exec', { target: { hosts: ['no-such-name'] }, command: ['true'], mode: 'async' });
        assert.equal(named.status, 404, c.name);
        assert.deepEqual(named.json, { ...unknown.json, message: unknown.json.message.replace('no-such-name', outside.hostname) }, c.name);
        assert.deepEqual(await wsClose(`${app.hub.url}/api/v1/jobs/${jobId}/stream`, c.token), await wsClose(`${app.hub.url}/api/v1/jobs/no-such-job/stream`, c.token), c.name);
      }
      assert.equal((await app.call(admin, 'POST', `/api/v1/jobs/${jobId}/cancel`)).status, 200, 'the job itself is there');
    });
  });
}
