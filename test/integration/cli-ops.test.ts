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

test("exec on one host exits with the command's own status; a signal gives 128+N, --timeout 124; several hosts: 0 or 1", async () => {
  const three = await cli(['exec', '-t', agentId, '--', 'sh', '-c', 'exit 3'], env);
  assert.equal(three.code, 3, three.stderr);
  assert.match(three.stderr, /exit 3/);
  const killed = await cli(['exec', '-t', agentId, '--', 'sh', '-c', 'kill -KILL $$'], env);
  assert.equal(killed.code, 128 + 9, killed.stderr);
  const slow = await cli(['exec', '-t', agentId, '--timeout', '1s', '--', 'sleep', '20'], env);
  assert.equal(slow.code, 124, slow.stderr);
  // The same host named twice is still one host; a job on several hosts says 0 or 1.
  const other = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec'] });
  try {
    const otherId = await other.waitConnected();
    const many = await cli(['exec', '-t', `${agentId},${otherId}`, '--', 'sh', '-c', 'exit 3'], env);
    assert.equal(many.code, 1, many.stderr);
    assert.match(many.stderr, /0\/2 succeeded/);
    const ok = await cli(['exec', '-t', `${agentId},${otherId}`, '--', 'true'], env);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await other.stop();
    other.cleanup();
  }
});
