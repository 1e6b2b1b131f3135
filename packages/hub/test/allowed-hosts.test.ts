/**
 * The hub answers only to its own names (DNS rebinding): real HTTP requests to an in-process hub
 * with chosen Host headers. The rule does not touch storage, so one engine is enough.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { generate } from 'selfsigned';
import { loadHubConfig } from '../src/config.js';
import { hostOf, parseAllowedHost } from '../src/allowed-hosts.js';
import { startApp, type TestApp } from './hub.js';

function send(base: string, host: string, method = 'GET', path = '/api/v1/hosts', body?: string): Promise<{ status: number; json: any }> {
  const u = new URL(base);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: u.port, method, path, headers: { host, ...(body ? { 'content-type': 'application/json' } : {}) }, rejectUnauthorized: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* the console's HTML */
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function wsUpgrade(base: string, host: string, path: string): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(base.replace(/^http/, 'ws').replace('localhost', '127.0.0.1') + path, { headers: { host } });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

describe('allowed hosts', () => {
  const apps: TestApp[] = [];
  after(async () => {
    for (const a of apps) await a.cleanup();
  });

  test('a name that is not the hub\'s gets 421 host_not_allowed on the API, the console and WebSockets; the hub\'s own names and any address pass', async () => {
    const app = await startApp('sqlite');
    apps.push(app);
    const port = new URL(app.hub.url).port;
    for (const [method, path, body] of [['GET', '/api/v1/hosts'], ['GET', '/'], ['POST', '/api/v1/auth/login', '{"username":"admin","password":"x"}'], ['GET', '/metrics'], ['GET', '/no/such/route']] as const) {
      const r = await send(app.hub.url, `evil.example:${port}`, method, path, body);
      assert.equal(r.status, 421, `${method} ${path}`);
      assert.equal(r.json.error, 'host_not_allowed');
      assert.match(r.json.message, /does not answer to the name "evil\.example".*allowed_hosts \(TETHER_ALLOWED_HOSTS\)/);
    }
    assert.equal(await wsUpgrade(app.hub.url, `evil.example:${port}`, '/api/v1/live'), 421);
    for (const ok of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST.:${port}`, `app.localhost:${port}`, `[::1]:${port}`, `10.1.2.3:${port}`, `${hostname()}:${port}`, 'localhost']) {
      const r = await send(app.hub.url, ok);
      assert.equal(r.status, 401, `${ok}: ${JSON.stringify(r.json)}`); // reaches the auth hook: no credential
    }
    // Agents and health probes are not browsers: they answer whatever the name.
    assert.equal((await send(app.hub.url, 'evil.example', 'GET', '/api/v1/health')).status, 200);
    assert.equal(await wsUpgrade(app.hub.url, 'evil.example', '/api/v1/agent/ws'), 'open');
  });

  test('allowed_hosts adds names and *.domain; allowed_origins\' names count; * accepts any', async () => {
    const app = await startApp('sqlite', { TETHER_ALLOWED_HOSTS: 'hub.example.com, *.corp.example', TETHER_ALLOWED_ORIGINS: 'https://console.example.org' });
    apps.push(app);
    for (const ok of ['hub.example.com', 'HUB.example.com:443', 'tether.corp.example', 'a.b.corp.example', 'console.example.org']) assert.equal((await send(app.hub.url, ok)).status, 401, ok);
    for (const no of ['corp.example', 'evilcorp.example', 'hub.example.com.evil.example', 'example.com']) assert.equal((await send(app.hub.url, no)).status, 421, no);
    const open = await startApp('sqlite', { TETHER_ALLOWED_HOSTS: '*' });
    apps.push(open);
    assert.equal((await send(open.hub.url, 'anything.example')).status, 401);
  });

  test('the names in the hub\'s TLS certificate are its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-ah-'));
    const pems = await generate([{ name: 'commonName', value: 'tether.example.test' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'tether.example.test' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    writeFileSync(join(dir, 'cert.pem'), pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.private);
    const app = await startApp('sqlite', { TETHER_TLS_CERT: join(dir, 'cert.pem'), TETHER_TLS_KEY: join(dir, 'key.pem') });
    apps.push(app);
    assert.match(app.hub.url, /^https:/);
    assert.equal((await send(app.hub.url, 'tether.example.test')).status, 401);
    assert.equal((await send(app.hub.url, 'other.example.test')).status, 421);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the setting refuses what is not a name, and Host headers are read without port or brackets', () => {
    assert.throws(() => loadHubConfig({}, { TETHER_ALLOWED_HOSTS: 'http://hub.example.com' }), /allowed_hosts|TETHER_ALLOWED_HOSTS[\s\S]*expected a host name/);
    assert.throws(() => loadHubConfig({}, { TETHER_ALLOWED_HOSTS: 'a b' }), /expected a host name/);
    assert.throws(() => parseAllowedHost('ex*ample.com'), /expected a host name/);
    assert.deepEqual(loadHubConfig({}, { TETHER_ALLOWED_HOSTS: 'Hub.Example.com.,*.x.test' }).allowedHosts, ['hub.example.com', '*.x.test']);
    assert.equal(hostOf('[::1]:8080'), '::1');
    assert.equal(hostOf('Hub.Example.com.:8080'), 'hub.example.com');
    assert.equal(hostOf('10.0.0.1'), '10.0.0.1');
  });
});
