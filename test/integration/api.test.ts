/**
 * The REST surface of the foundation: what needs a login, what validation says, OpenAPI.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestHub } from '@tether/testkit';

describe('hub REST API', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let id: string;
  before(async () => {
    hub = await TestHub.start();
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { env: 'dev' } }) });
    id = await agent.waitConnected();
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    await hub.cleanup();
  });

  test('health is public and reports the database and online agents', async () => {
    const r = await hub.raw('GET', '/api/v1/health', undefined, false);
    assert.equal(r.status, 200);
    const b = (await r.json()) as { status: string; db: string; agentsOnline: number };
    assert.equal(b.status, 'ok');
    assert.equal(b.db, 'sqlite');
    assert.equal(b.agentsOnline, 1);
  });

  test('every other API route needs a session', async () => {
    for (const [m, p] of [
      ['GET', '/api/v1/hosts'],
      ['GET', `/api/v1/hosts/${id}`],
      ['PATCH', `/api/v1/hosts/${id}`],
      ['POST', `/api/v1/hosts/${id}/revoke`],
      ['DELETE', `/api/v1/hosts/${id}`],
      ['GET', '/api/v1/enrollment-tokens'],
      ['POST', '/api/v1/enrollment-tokens'],
      ['GET', '/api/v1/auth/me'],
    ] as const) {
      const r = await hub.raw(m, p, m === 'GET' || m === 'DELETE' ? undefined : {}, false);
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.deepEqual(Object.keys((await r.json()) as object).sort(), ['error', 'message']);
    }
    const forged = await fetch(hub.url + '/api/v1/hosts', { headers: { authorization: 'Bearer tts_forged' } });
    assert.equal(forged.status, 401);
  });

  test('a wrong password gets the same answer whether or not the user exists', async () => {
    const a = await hub.raw('POST', '/api/v1/auth/login', { username: 'admin', password: 'nope' }, false);
    const b = await hub.raw('POST', '/api/v1/auth/login', { username: 'ghost', password: 'nope' }, false);
    assert.equal(a.status, 401);
    assert.equal(b.status, 401);
    assert.deepEqual(await a.json(), await b.json());
  });

  test('login sets an HttpOnly SameSite cookie that works for the console, and logout (with the CSRF token) ends it', async () => {
    const r = await hub.raw('POST', '/api/v1/auth/login', { username: 'admin', password: 'test-admin-password-1' }, false);
    const { csrfToken } = (await r.json()) as { csrfToken: string };
    const cookies = r.headers.getSetCookie();
    const session = cookies.find((c) => c.startsWith('tether_session='))!;
    assert.match(session, /tether_session=tts_/);
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Strict/);
    const csrfCookie = cookies.find((c) => c.startsWith('tether_csrf='))!;
    assert.doesNotMatch(csrfCookie, /HttpOnly/, 'the console reads the CSRF token');
    const pair = session.split(';')[0]!;
    const me = await fetch(hub.url + '/api/v1/auth/me', { headers: { cookie: pair } });
    assert.equal(((await me.json()) as { username: string }).username, 'admin');
    await fetch(hub.url + '/api/v1/auth/logout', { method: 'POST', headers: { cookie: pair, 'x-csrf-token': csrfToken } });
    assert.equal((await fetch(hub.url + '/api/v1/auth/me', { headers: { cookie: pair } })).status, 401);
  });

  test('invalid input is refused with 400 and a reason; nothing changes', async () => {
    const bad = [
      ['GET', '/api/v1/hosts?selector=' + encodeURIComponent('env in (a')],
      ['GET', '/api/v1/hosts?limit=0'],
      ['PATCH', `/api/v1/hosts/${id}`, { labels: { 'bad key': 'x' } }],
      ['PATCH', `/api/v1/hosts/${id}`, { labels: { env: 'dev' }, extra: 1 }],
      ['POST', '/api/v1/enrollment-tokens', { expiresInSec: 'soon' }],
      ['POST', '/api/v1/enrollment-tokens', { labels: { k: 'has space' } }],
      ['POST', '/api/v1/auth/login', { username: '', password: 'x' }],
    ] as const;
    for (const [m, p, body] of bad) {
      const r = await hub.raw(m, p, body);
      assert.equal(r.status, 400, `${m} ${p} ${JSON.stringify(body)}`);
      const j = (await r.json()) as { error: string; message: string };
      assert.ok(j.message.length > 0);
    }
    assert.deepEqual((await hub.api('GET', `/api/v1/hosts/${id}`)).labels, { env: 'dev' }, 'labels unchanged');
    const notJson = await fetch(hub.url + '/api/v1/enrollment-tokens', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` }, body: '{oops' });
    assert.equal(notJson.status, 400);
    // Bodies are bounded, and the client gets the 413 while it is still sending the body: when the
    // hub closed at once, about 3 uploads in 10 failed with EPIPE instead.
    const hugeBody = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
    for (let i = 0; i < 20; i++) {
      const huge = await fetch(hub.url + '/api/v1/enrollment-tokens', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` }, body: hugeBody });
      assert.equal(huge.status, 413, 'request bodies are bounded');
      assert.equal(((await huge.json()) as { error: string }).error, 'fst_err_ctp_body_too_large');
    }
    assert.equal((await hub.raw('GET', '/api/v1/hosts/does-not-exist')).status, 404);
    assert.equal((await hub.raw('GET', '/api/v1/nothing-here')).status, 404);
  });

  test('labels can be replaced and hosts searched by hostname, IP and MAC', async () => {
    const h = await hub.api('PATCH', `/api/v1/hosts/${id}`, { labels: { env: 'prod', role: 'web' } });
    assert.deepEqual(h.labels, { env: 'prod', role: 'web' });
    const ip = h.facts.ips[0] as string;
    const mac = h.facts.macs[0] as string;
    assert.equal((await hub.hosts(`?q=${encodeURIComponent(h.hostname)}`)).total, 1);
    if (ip) assert.equal((await hub.hosts(`?q=${encodeURIComponent(ip)}`)).total, 1);
    if (mac) assert.equal((await hub.hosts(`?q=${encodeURIComponent(mac.toUpperCase())}`)).total, 1);
    assert.equal((await hub.hosts('?q=no-such-host-anywhere')).total, 0);
    assert.equal((await hub.hosts('?status=online')).total, 1);
    assert.equal((await hub.hosts('?status=offline')).total, 0);
  });

  test('enrollment tokens: shown once, listed without the secret, revocable', async () => {
    const r = await hub.api('POST', '/api/v1/enrollment-tokens', { name: 'rack 4', singleUse: true, labels: { rack: '4' } });
    assert.match(r.token, /^tte_/);
    const list = await hub.api('GET', '/api/v1/enrollment-tokens');
    assert.ok(!JSON.stringify(list).includes(r.token));
    const t = list.tokens.find((x: { id: string }) => x.id === r.tokenInfo.id);
    assert.equal(t.name, 'rack 4');
    await hub.api('DELETE', `/api/v1/enrollment-tokens/${t.id}`);
    assert.equal((await hub.raw('DELETE', `/api/v1/enrollment-tokens/${t.id}`)).status, 404);
    const a = TestAgent.start(hub.url, { token: r.token });
    assert.equal(await a.proc.exited, 2);
    a.cleanup();
  });

  test('OpenAPI describes the routes', async () => {
    const r = await fetch(hub.url + '/api/docs/json');
    assert.equal(r.status, 200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/v1/hosts', '/api/v1/hosts/{id}', '/api/v1/enrollment-tokens', '/api/v1/auth/login', '/api/v1/health']) assert.ok(doc.paths[p], p);
    assert.equal((await fetch(hub.url + '/api/docs/')).status, 200);
  });

  test('security headers are set', async () => {
    const r = await hub.raw('GET', '/api/v1/health', undefined, false);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
  });

  test('deleting a host disconnects its agent and refuses it afterwards', async () => {
    const a = TestAgent.start(hub.url, { token: await hub.enrollToken() });
    const aid = await a.waitConnected();
    await hub.api('DELETE', `/api/v1/hosts/${aid}`);
    assert.equal(await a.proc.exited, 2);
    assert.match(a.proc.output(), /host deleted|unknown agent/);
    assert.equal((await hub.raw('GET', `/api/v1/hosts/${aid}`)).status, 404);
    a.cleanup();
  });
});
