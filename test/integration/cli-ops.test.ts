/**
 * The CLI as scripts and terminals meet it, against a real hub and agent: how the password is
 * taken, exit codes, closed pipes, table widths, and a hub that stops answering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { ADMIN_PASSWORD, TestAgent, TestHub, cli, tempDir } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let agent: TestAgent;
let agentId: string;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-cli-ops-');
  env = { TETHER_CLI_CONFIG: join(dir, 'cli.json'), TETHER_PASSWORD: '' };
  const login = await cli(['login', '--hub', hub.url, '--password-stdin'], env, ADMIN_PASSWORD + '\n');
  assert.equal(login.code, 0, login.stderr);
  agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec', 'process'] });
  agentId = await agent.waitConnected();
});
after(async () => {
  await agent?.stop();
  agent?.cleanup();
  await hub?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('login --password-stdin reads standard input even when TETHER_PASSWORD is set: the explicit flag wins', async () => {
  const own = { ...env, TETHER_CLI_CONFIG: join(dir, 'stdin.json'), TETHER_PASSWORD: 'not-the-password' };
  const r = await cli(['login', '--hub', hub.url, '--password-stdin'], own, ADMIN_PASSWORD + '\n');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /logged in/);
  // Without the flag the variable is what counts (and here it is wrong).
  const fromEnv = await cli(['login', '--hub', hub.url], own, ADMIN_PASSWORD + '\n');
  assert.equal(fromEnv.code, 1);
  assert.match(fromEnv.stderr, /wrong username or password/);
});
