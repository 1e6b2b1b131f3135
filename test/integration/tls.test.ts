/**
 * The hub over TLS with a certificate it generates on first start, and agents that pin it: the
 * right fingerprint connects, a wrong one is refused before the hub learns anything, and without a
 * pin the self-signed certificate is refused by the usual CA check.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { TestAgent, TestHub, cli, tempDir, ADMIN_PASSWORD } from '@tether/testkit';

// This test process's own fetch (TestHub's API client) does not verify the hub; every child process
// (CLI, agents) gets verification back explicitly, and the pinning under test is the agent's.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const VERIFY = { NODE_TLS_REJECT_UNAUTHORIZED: '1' };

describe('hub TLS with a pinned self-signed certificate', () => {
  let hub: TestHub;
  let certFile: string;
  const agents: TestAgent[] = [];
  before(async () => {
    hub = await TestHub.start({ extraArgs: ['--tls-self-signed'] });
    certFile = join(hub.dataDir, 'tls', 'hub-cert.pem');
  });
  after(async () => {
    for (const a of agents) {
      await a.stop();
      a.cleanup();
    }
    await hub.cleanup();
  });

  test('the hub serves https with a certificate made on first start, kept across restarts', async () => {
    assert.match(hub.url, /^https:/);
    const der = new X509Certificate(readFileSync(certFile)).raw;
    assert.equal(hub.tlsFingerprint, 'sha256:' + createHash('sha256').update(der).digest('hex'));
    const first = hub.tlsFingerprint;
    await hub.restart();
    assert.equal(hub.tlsFingerprint, first);
    const r = await hub.raw('POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD }, false);
    assert.match(r.headers.getSetCookie()[0]!, /; Secure/);
    assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000');
  });

  test('tether token create prints the agent command with the fingerprint; the pinned agent enrolls', async () => {
    const dir = tempDir('tether-cli-tls-');
    // The CLI trusts the hub's own certificate the standard way.
    const env = { ...VERIFY, TETHER_CLI_CONFIG: join(dir, 'cli.json'), TETHER_PASSWORD: ADMIN_PASSWORD, NODE_EXTRA_CA_CERTS: certFile };
    try {
      const login = await cli(['login', '--hub', hub.url], env);
      assert.equal(login.code, 0, login.stderr);
      const t = await cli(['token', 'create', '--single-use', '--expires', '1h'], env);
      assert.equal(t.code, 0, t.stderr);
      const m = t.stdout.match(/TETHER_TOKEN=(tte_\S+) tether agent --hub (\S+) --hub-fingerprint (sha256:[0-9a-f]{64}) /);
      assert.ok(m, t.stdout);
      assert.equal(m[3], hub.tlsFingerprint);
      const a = TestAgent.start(m[2]!, { token: m[1]!, env: VERIFY, extraArgs: ['--hub-fingerprint', m[3]!] });
      agents.push(a);
      const id = await a.waitConnected();
      await hub.waitOnline(id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an agent pinning another fingerprint is refused before it sends anything', async () => {
    const token = await hub.enrollToken({ singleUse: true });
    const before = (await hub.hosts()).total;
    const wrong = 'sha256:' + 'ab'.repeat(32);
    const a = TestAgent.start(hub.url, { token, env: { ...VERIFY, TETHER_HUB_FINGERPRINT: wrong } });
    agents.push(a);
    await a.proc.waitForLine(/does not match the pinned sha256:abab/);
    assert.equal(a.connectedCount(), 0);
    assert.equal((await hub.hosts()).total, before, 'no host enrolled');
    const list = await hub.api('GET', '/api/v1/enrollment-tokens');
    assert.equal(list.tokens.find((x: { uses: number; singleUse: boolean }) => x.singleUse && x.uses === 0) !== undefined, true, 'the token was never presented');
  });

  test('an agent without a pin refuses the self-signed certificate', async () => {
    const a = TestAgent.start(hub.url, { token: await hub.enrollToken(), env: VERIFY });
    agents.push(a);
    await a.proc.waitForLine(/self.signed certificate/i);
    assert.equal(a.connectedCount(), 0);
  });

  test('a pin without an https hub URL is a configuration error', async () => {
    const a = TestAgent.start(hub.url.replace('https:', 'http:'), { env: { ...VERIFY, TETHER_HUB_FINGERPRINT: hub.tlsFingerprint! } });
    assert.notEqual(await a.proc.exited, 0);
    assert.match(a.proc.output(), /hub_fingerprint pins a TLS certificate: the hub URL must be https/);
    a.cleanup();
  });
});
