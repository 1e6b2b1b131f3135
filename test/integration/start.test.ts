/**
 * What a user sees on a fresh machine: `npm start` runs `tether start` — a hub plus a local agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { runCli, tempDir, waitFor } from '@tether/testkit';

test('tether start: health answers, the admin password is generated once (0600), and this host is online within 10 s', async () => {
  const data = tempDir('tether-start-');
  const env: NodeJS.ProcessEnv = { TETHER_ADMIN_PASSWORD: '', TETHER_DB: '' };
  const p = runCli(['start', '--listen', '127.0.0.1:0', '--data', data, '--heartbeat', '1s'], { env, name: 'start' });
  try {
    const t0 = Date.now();
    const line = await p.waitForLine(/"msg":"hub listening"/, 20_000);
    const url = (JSON.parse(line) as { url: string }).url;
    const health = await fetch(url + '/api/v1/health');
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');

    const pwFile = join(data, 'initial-admin-password');
    assert.equal(statSync(pwFile).mode & 0o777, 0o600);
    const password = readFileSync(pwFile, 'utf8').trim();
    assert.ok(password.length >= 16);
    assert.ok(p.output().includes(password), 'printed once on the terminal');
    assert.equal(p.logs().filter((l) => JSON.stringify(l).includes(password)).length, 0, 'never in a structured log line');

    const login = await fetch(url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    assert.equal(login.status, 200);
    const { token } = (await login.json()) as { token: string };
    const host = await waitFor(
      async () => {
        const r = (await (await fetch(url + '/api/v1/hosts', { headers: { authorization: `Bearer ${token}` } })).json()) as { hosts: { hostname: string; online: boolean; labels: Record<string, string> }[] };
        return r.hosts.find((h) => h.online);
      },
      'local host online',
      10_000,
    );
    assert.ok(Date.now() - t0 < 10_000, 'within 10 s of starting');
    assert.equal(host.hostname, hostname());
    assert.deepEqual(host.labels, { local: 'true' });

    // The index page is served.
    const index = await fetch(url + '/');
    assert.equal(index.status, 200);
    assert.match(await index.text(), /<title>Tether<\/title>/);

    assert.equal(await p.stop('SIGTERM'), 0, 'graceful shutdown on SIGTERM');
    assert.match(p.output(), /"msg":"hub stopped"/);

    // A second start reuses the account and the agent's identity: no new password, same single host.
    const p2 = runCli(['start', '--listen', '127.0.0.1:0', '--data', data, '--heartbeat', '1s'], { env, name: 'start2' });
    try {
      const url2 = (JSON.parse(await p2.waitForLine(/"msg":"hub listening"/, 20_000)) as { url: string }).url;
      assert.equal(readFileSync(pwFile, 'utf8').trim(), password);
      assert.ok(!p2.output().includes('generated password'));
      const login2 = (await (await fetch(url2 + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) })).json()) as { token: string };
      await waitFor(async () => {
        const r = (await (await fetch(url2 + '/api/v1/hosts', { headers: { authorization: `Bearer ${login2.token}` } })).json()) as { total: number; online: number };
        return r.total === 1 && r.online === 1;
      }, 'the same single host online again');
    } finally {
      assert.equal(await p2.stop('SIGTERM'), 0);
    }
    assert.ok(existsSync(join(data, 'agent', 'identity.json')));
  } finally {
    await p.stop('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
});

test('bad configuration is refused with every problem named, before anything starts', async () => {
  const p = runCli(['hub', '--listen', 'nowhere', '--heartbeat', 'often', '--db', 'mysql://x'], { name: 'badcfg' });
  assert.equal(await p.exited, 1);
  const out = p.output();
  assert.match(out, /flag --listen: expected host:port/);
  assert.match(out, /flag --heartbeat: expected a duration/);
  assert.match(out, /flag --db: expected sqlite:PATH or postgres/);

  const dir = tempDir('tether-cfg-');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'hub.toml'), 'listen = "127.0.0.1:0"\nhearbeat = "5s"\n');
  const q = runCli(['hub', '--config', join(dir, 'hub.toml'), '--data', dir], { name: 'badtoml' });
  assert.equal(await q.exited, 1);
  assert.match(q.output(), /unknown key "hearbeat"/);

  const a = runCli(['agent', '--hub', 'ftp://x', '--state', dir], { name: 'badagent' });
  assert.equal(await a.exited, 1);
  assert.match(a.output(), /expected http:\/\/ or https:\/\//);
  writeFileSync(join(dir, 'agent.toml'), 'capabilities = ["metrics", "root"]\n');
  const b = runCli(['agent', '--hub', 'http://127.0.0.1:1', '--state', dir, '--config', join(dir, 'agent.toml')], { name: 'badcaps' });
  assert.equal(await b.exited, 1);
  assert.match(b.output(), /unknown capability "root"/);
  writeFileSync(join(dir, 'agent.toml'), 'capabilities = ["terminal"]\nterminal_users = ["ops", "root; rm -rf /"]\n');
  const c = runCli(['agent', '--hub', 'http://127.0.0.1:1', '--state', dir, '--config', join(dir, 'agent.toml')], { name: 'badusers' });
  assert.equal(await c.exited, 1);
  assert.match(c.output(), /terminal_users.*not a user name: "root; rm -rf \/"/s);
  rmSync(dir, { recursive: true, force: true });
});

test('an unreachable database is a clear startup error', async () => {
  const p = runCli(['hub', '--listen', '127.0.0.1:0', '--db', 'postgres://postgres@127.0.0.1:1/none', '--data', tempDir()], { name: 'nodb' });
  assert.equal(await p.exited, 1);
  assert.match(p.output(), /ECONNREFUSED|connect/);
});
