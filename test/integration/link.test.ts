/**
 * The hub–agent link end to end: real `tether hub` and `tether agent` processes on loopback,
 * against SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PROTOCOL_VERSION, authPayload, encodeFrame, generateAgentKey, signPayload, MAX_FRAME_BYTES } from '@tether/protocol';
import { TestAgent, TestHub, testDatabases, waitFor } from '@tether/testkit';
import { RawAgent, simFacts, newSimIdentity, simConnect } from '@tether/testkit';

for (const db of testDatabases()) {
  describe(`agent link on ${db}`, () => {
    let hub: TestHub;
    const agents: TestAgent[] = [];
    const agent = (o: Parameters<typeof TestAgent.start>[1] = {}) => {
      const a = TestAgent.start(hub.url, o);
      agents.push(a);
      return a;
    };
    before(async () => {
      hub = await TestHub.start({ db, heartbeat: '500ms' });
    });
    after(async () => {
      for (const a of agents) {
        await a.stop().catch(() => {});
        a.cleanup();
      }
      await hub.cleanup();
    });

    test('an agent enrolls with a token, writes a 0600 key, and shows up online with its facts and the token labels', async () => {
      const a = agent({ token: await hub.enrollToken({ singleUse: true, labels: { env: 'test', role: 'web' } }) });
      const id = await a.waitConnected();
      assert.equal(statSync(join(a.stateDir, 'agent.key')).mode & 0o777, 0o600);
      assert.ok(!readFileSync(join(a.stateDir, 'identity.json'), 'utf8').includes('PRIVATE'), 'only the id is in identity.json');
      const h = await hub.api('GET', `/api/v1/hosts/${id}`);
      assert.equal(h.online, true);
      assert.equal(h.hostname, hostname());
      assert.deepEqual(h.labels, { env: 'test', role: 'web' });
      assert.deepEqual(h.capabilities, ['metrics'], 'monitoring only by default');
      assert.equal(h.facts.cpu.logicalCores > 0, true);
      assert.ok(h.facts.os.pretty.length > 0);
      assert.ok(!JSON.stringify(h).includes('PRIVATE KEY'));
      // The hub holds no agent secret: only a public key, never returned by the API.
      assert.equal(h.publicKey, undefined);
      const sel = await hub.hosts('?selector=' + encodeURIComponent('role=web,env in (test)'));
      assert.deepEqual(sel.hosts.map((x: { id: string }) => x.id), [id]);
      assert.equal((await hub.hosts('?selector=role%3Ddb')).total, 0);
      await a.stop();
      await hub.waitOnline(id, false);
    });

    test('a later run needs no token, and the hub being killed and restarted brings the same host back without a duplicate', async () => {
      const a = agent({ token: await hub.enrollToken({ singleUse: true }) });
      const id = await a.waitConnected();
      const before = (await hub.hosts()).total;
      await hub.kill('SIGKILL');
      await waitFor(() => a.proc.lines.some((l) => l.includes('disconnected from hub')), 'agent notices the hub is gone');
      // Counted before the restart: the agent may be back before restart() has logged in.
      const n = a.connectedCount();
      await hub.restart();
      await waitFor(() => a.connectedCount() > n, 'agent reconnects', 15_000);
      await hub.waitOnline(id, true);
      const after = await hub.hosts();
      assert.equal(after.total, before, 'no duplicate host');
      assert.equal(a.agentId(), id);
      // A fresh process with the same state dir and no token signs in as the same host.
      await a.stop();
      await hub.waitOnline(id, false);
      const again = agent({ stateDir: a.stateDir });
      assert.equal(await again.waitConnected(), id);
      assert.equal((await hub.hosts()).total, before);
      await again.stop();
    });

    test('a second connection claiming an online id is refused with "agent id conflict"', async () => {
      const a = agent({ token: await hub.enrollToken({ singleUse: true }) });
      const id = await a.waitConnected();
      const cloneDir = a.stateDir + '-clone';
      cpSync(a.stateDir, cloneDir, { recursive: true });
      const clone = agent({ stateDir: cloneDir });
      await clone.proc.waitForLine(/agent id conflict/);
      assert.equal(clone.connectedCount(), 0);
      assert.ok(hub.proc.lines.some((l) => l.includes('agent refused: agent id conflict')), 'the hub logs the refusal');
      assert.equal((await hub.api('GET', `/api/v1/hosts/${id}`)).online, true, 'the original stays connected');
      // The clone keeps retrying (conflicts can be transient) and takes over once the original is gone.
      await a.stop();
      assert.equal(await clone.waitConnected(15_000), id);
      await clone.stop();
    });

    test('revoking an agent disconnects it at once and refuses it afterwards', async () => {
      const a = agent({ token: await hub.enrollToken({ singleUse: true }) });
      const id = await a.waitConnected();
      const t0 = Date.now();
      await hub.api('POST', `/api/v1/hosts/${id}/revoke`);
      assert.equal((await hub.api('GET', `/api/v1/hosts/${id}`)).online, false);
      assert.equal(await a.proc.exited, 2, 'the agent gives up: retrying cannot help');
      assert.ok(Date.now() - t0 < 3000, 'disconnected at once');
      assert.match(a.proc.output(), /agent revoked/);
      // A restarted agent with the same identity is refused too.
      const again = agent({ stateDir: a.stateDir });
      assert.equal(await again.proc.exited, 2);
      assert.match(again.proc.output(), /agent revoked \(revoked\)/);
      assert.equal((await hub.hosts('?status=revoked')).hosts.some((h: { id: string }) => h.id === id), true);
    });

    test('unknown, expired and used tokens are refused with a clear reason and logged', async () => {
      const bad = agent({ token: 'tte_not-a-real-token' });
      assert.equal(await bad.proc.exited, 2);
      assert.match(bad.proc.output(), /unknown or revoked enrollment token/);
      const once = await hub.enrollToken({ singleUse: true });
      const first = agent({ token: once });
      await first.waitConnected();
      const second = agent({ token: once });
      assert.equal(await second.proc.exited, 2);
      assert.match(second.proc.output(), /single-use enrollment token already used/);
      await first.stop();
      // Expiry: the API's minimum lifetime is 60 s, so an expired token is made directly in the store of a raw hello.
      const r = await hub.raw('POST', '/api/v1/enrollment-tokens', { expiresInSec: 1 });
      assert.equal(r.status, 400, 'lifetimes under a minute are refused by the API');
      assert.ok(hub.proc.lines.some((l) => l.includes('agent refused: unknown or revoked enrollment token')));
      assert.ok(!hub.proc.output().includes('tte_not-a-real-token'), 'tokens never reach the log');
    });

    test('no token and no identity: the agent says so and stops', async () => {
      const a = agent({});
      assert.equal(await a.proc.exited, 2);
      assert.match(a.proc.output(), /not enrolled yet/);
    });

    test('a bad signature and a replayed hello are refused', async () => {
      const id = newSimIdentity();
      const first = await simConnect(hub.url, id, { token: await hub.enrollToken(), facts: simFacts('sim-replay') });
      first.close();
      await first.closed;
      await hub.waitOnline(id.agentId!, false);

      // Someone else's key: the signature does not match the key on record.
      const mallory = generateAgentKey();
      const m = new RawAgent(hub.url);
      const ch = await m.next('challenge');
      m.hello({ protocol: PROTOCOL_VERSION, agentVersion: 'x', agentId: id.agentId!, signature: signPayload(mallory.privateKeyPem, authPayload(ch.body.nonce, id.agentId!)), facts: simFacts('mallory'), capabilities: ['metrics'] });
      const r1 = await m.next('refused');
      assert.equal(r1.body.code, 'bad_signature');
      await m.closed;
      assert.equal(m.closeCode, 4401);

      // A genuine hello captured from one connection, replayed on another: its nonce is stale.
      const c1 = new RawAgent(hub.url);
      const n1 = await c1.next('challenge');
      const captured = encodeFrame('hello', { protocol: PROTOCOL_VERSION, agentVersion: 'x', agentId: id.agentId!, signature: signPayload(id.privateKeyPem, authPayload(n1.body.nonce, id.agentId!)), facts: simFacts('sim-replay'), capabilities: ['metrics'] });
      c1.close();
      const c2 = new RawAgent(hub.url);
      await c2.next('challenge');
      c2.sendRaw(captured);
      const r2 = await c2.next('refused');
      assert.equal(r2.body.code, 'bad_signature');
      assert.match(r2.body.reason, /replayed/);
      assert.equal((await hub.api('GET', `/api/v1/hosts/${id.agentId}`)).online, false);
    });

    test('malformed and oversized frames are refused with a reason and the hub stays up', async () => {
      // Garbage instead of a hello.
      const g = new RawAgent(hub.url);
      await g.next('challenge');
      g.sendRaw('{"this is": not json');
      const r = await g.next('refused');
      assert.equal(r.body.code, 'malformed');
      assert.match(r.body.reason, /not valid JSON/);
      await g.closed;
      assert.equal(g.closeCode, 4400);

      // A hello that breaks its schema says which field.
      const s = new RawAgent(hub.url);
      await s.next('challenge');
      s.sendRaw(JSON.stringify({ v: 1, type: 'hello', id: 'x', body: { protocol: 1 } }));
      const rs = await s.next('refused');
      assert.match(rs.body.reason, /bad hello body/);

      // After a good handshake, bad frames get an error reply and the link stays.
      const id = newSimIdentity();
      const ok = await simConnect(hub.url, id, { token: await hub.enrollToken(), facts: simFacts('sim-garbage') });
      ok.sendRaw('[1,2,3]');
      const e1 = await ok.next('error');
      assert.equal(e1.body.code, 'bad_envelope');
      ok.sendRaw(JSON.stringify({ v: 1, type: 'teleport', id: 'q1', body: {} }));
      const e2 = await ok.next('error');
      assert.equal(e2.body.code, 'unknown_type');
      assert.equal(e2.re, 'q1', 'the error names the frame it answers');
      ok.sendRaw(encodeFrame('welcome', { agentId: 'x', heartbeatSec: 1, hubVersion: 'x' }));
      assert.equal((await ok.next('error')).body.code, 'unexpected_type');
      assert.equal((await hub.api('GET', `/api/v1/hosts/${id.agentId}`)).online, true, 'still connected');

      // Over the frame limit: the socket is closed with 1009 and a reason.
      ok.sendRaw(Buffer.alloc(MAX_FRAME_BYTES + 10, 0x20).toString());
      await ok.closed;
      assert.equal(ok.closeCode, 1009);
      await hub.waitOnline(id.agentId!, false);

      const health = await hub.raw('GET', '/api/v1/health', undefined, false);
      assert.equal(health.status, 200, 'the hub is still up');
    });

    test('the hub detects a silent agent within 3 missed heartbeats', async () => {
      const id = newSimIdentity();
      const a = await simConnect(hub.url, id, { token: await hub.enrollToken(), facts: simFacts('sim-silent') });
      assert.equal((await hub.api('GET', `/api/v1/hosts/${id.agentId}`)).online, true);
      // Stop reading the socket: pings go unanswered, as with a frozen host.
      const sock = (a.ws as unknown as { _socket: import('node:net').Socket })._socket;
      const t0 = Date.now();
      sock.pause();
      await hub.waitOnline(id.agentId!, false, 5000);
      const took = Date.now() - t0;
      assert.ok(took <= 3 * 500 + 500, `offline after ${took} ms (heartbeat 500 ms)`);
      assert.ok(took >= 3 * 500 - 100, `not before 3 beats were missed (${took} ms)`);
      a.ws.terminate();
    });

    test('the agent detects a frozen hub within 3 missed heartbeats and reconnects when it thaws', async () => {
      const a = agent({ token: await hub.enrollToken({ singleUse: true }) });
      const id = await a.waitConnected();
      const n = a.connectedCount();
      process.kill(hub.proc.pid, 'SIGSTOP');
      try {
        await a.proc.waitForLine(/hub missed 3 heartbeats/, 5000);
      } finally {
        process.kill(hub.proc.pid, 'SIGCONT');
      }
      await waitFor(() => a.connectedCount() > n, 'reconnect after thaw', 15_000);
      await hub.waitOnline(id, true);
      await a.stop();
    });

    test('a connection that never says hello is closed after the handshake timeout', async () => {
      const quick = await TestHub.start({ db, handshakeTimeout: '1s' });
      try {
        const s = new RawAgent(quick.url);
        await s.next('challenge');
        const r = await s.next('refused', 5000);
        assert.equal(r.body.code, 'handshake_timeout');
        await s.closed;
        assert.equal(s.closeCode, 4408);
      } finally {
        await quick.cleanup();
      }
    });
  });
}
