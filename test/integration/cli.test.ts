/**
 * The `tether` command against a real hub: login, tokens, hosts, labels.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync, rmSync } from 'node:fs';
import { ADMIN_PASSWORD, TestAgent, TestHub, cli, tempDir } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-cli-');
  env = { TETHER_CLI_CONFIG: join(dir, 'cli.json'), TETHER_PASSWORD: '' };
});
after(async () => {
  await hub.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('login with a wrong password fails; with the right one the session is saved 0600', async () => {
  const bad = await cli(['login', '--hub', hub.url, '--password-stdin'], env, 'wrong\n');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /wrong username or password/);
  const ok = await cli(['login', '--hub', hub.url, '--password-stdin'], env, ADMIN_PASSWORD + '\n');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(statSync(join(dir, 'cli.json')).mode & 0o777, 0o600);
});

test('token create → agent enrolls → hosts lists it, filters by selector, labels change', async () => {
  const t = await cli(['token', 'create', '--single-use', '--expires', '1h', '--label', 'env=ci', '--label', 'role=web', '--json'], env);
  assert.equal(t.code, 0, t.stderr);
  const { token } = JSON.parse(t.stdout) as { token: string };
  const human = await cli(['token', 'create', '--expires', '30m'], env);
  assert.match(human.stdout, /TETHER_TOKEN=tte_\S+ tether agent --hub/);

  const a = TestAgent.start(hub.url, { token });
  const id = await a.waitConnected();
  try {
    const ls = await cli(['hosts', '--json'], env);
    const hosts = JSON.parse(ls.stdout) as { hosts: { id: string; online: boolean }[] };
    assert.ok(hosts.hosts.some((h) => h.id === id && h.online));
    const table = await cli(['hosts', '-s', 'env=ci'], env);
    assert.match(table.stdout, /HOSTNAME\s+STATUS/);
    assert.match(table.stdout, /online/);
    assert.match(table.stdout, /1\/1 online/);
    const none = await cli(['hosts', '-s', 'env=prod', '--json'], env);
    assert.equal((JSON.parse(none.stdout) as { total: number }).total, 0);
    const badSel = await cli(['hosts', '-s', 'env in (oops'], env);
    assert.equal(badSel.code, 1);
    assert.match(badSel.stderr, /parenthesis/);

    assert.equal((await cli(['host', 'label', id, 'env=prod', 'tier=1'], env)).code, 0);
    const show = JSON.parse((await cli(['host', 'show', id, '--json'], env)).stdout) as { labels: Record<string, string> };
    assert.deepEqual(show.labels, { env: 'prod', tier: '1' });
    const tokens = await cli(['token', 'ls'], env);
    assert.match(tokens.stdout, /SINGLE-USE/);
    assert.match(tokens.stdout, /env=ci,role=web/);

    assert.equal((await cli(['host', 'revoke', id], env)).code, 0);
    assert.equal(await a.proc.exited, 2);
  } finally {
    await a.stop();
    a.cleanup();
  }
});

test('without a session the CLI says how to log in', async () => {
  const r = await cli(['hosts'], { TETHER_CLI_CONFIG: join(dir, 'none.json') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tether login/);
  const unreachable = await cli(['login', '--hub', 'http://127.0.0.1:1', '--password-stdin'], env, 'x\n');
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach hub/);
});
