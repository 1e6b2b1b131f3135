/**
 * Alerts end to end with real agents: a disk rule on a real mount (a tmpfs the test fills, inside
 * the agent's own mount namespace) goes pending, fires and resolves; frozen hosts (SIGSTOP) fire
 * host offline as one grouped, HMAC-signed webhook, a silenced rule sends nothing, and both
 * resolve when the hosts come back; the live stream pushes it all. SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { AGENT_NODE, CLI, Proc, TestAgent, TestHub, tempDir, testDatabases, waitFor } from '@tether/testkit';
import { receiver } from './alert-helpers.js';

const FAST = { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=30s,connections=30s,sensors=30s,gpu=30s,self=30s' };
const HUB_ENV = { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_ALERT_RETRY_BASE: '0.2s', TETHER_RECONNECT_GRACE: '0s' };
const HMAC_KEY = 'hmac-key-for-the-alerts-test';
const ROOT = process.getuid?.() === 0;

/** An agent in its own mount namespace with a 4 MiB tmpfs at `mount` that only it sees. */
function agentWithTmpfs(hubUrl: string, token: string, mount: string): TestAgent {
  const stateDir = tempDir('tether-agent-');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mkdir -p ${mount} && mount -t tmpfs -o size=4m tmpfs ${mount} && exec "$0" "$@"`, AGENT_NODE, CLI, 'agent', '--hub', hubUrl, '--state', stateDir, '--reconnect-cap', '1s'], {
    env: { ...process.env, TETHER_LOG_LEVEL: 'debug', TETHER_TOKEN: token, ...FAST },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new TestAgent(new Proc(child, 'agent-tmpfs'), stateDir);
}

for (const db of testDatabases()) {
  describe(`alerts with real agents on ${db}`, () => {
    let hub: TestHub;
    let a: TestAgent, b: TestAgent;
    let aId: string, bId: string;
    let hook: Awaited<ReturnType<typeof receiver>>;
    let channelId: string;
    before(async () => {
      hub = await TestHub.start({ db, heartbeat: '0.5s', env: HUB_ENV });
      a = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { role: 'web' } }), env: FAST });
      b = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { role: 'web' } }), env: FAST });
      [aId, bId] = await Promise.all([a.waitConnected(), b.waitConnected()]);
      // Presets watch every host; switched off here so that only this test's rules speak.
      for (const r of (await hub.api('GET', '/api/v1/alerts/rules')).rules) await hub.api('PATCH', `/api/v1/alerts/rules/${r.id}`, { enabled: false });
      hook = await receiver();
      channelId = (await hub.api('POST', '/api/v1/alerts/channels', { name: 'ops hook', type: 'webhook', config: { url: hook.url }, secret: { hmacKey: HMAC_KEY, headers: { 'x-team': 'ops' } } })).id;
    });
    after(async () => {
      for (const x of [a, b]) {
        x.proc.child.kill('SIGCONT');
        await x.stop();
        x.cleanup();
      }
      hook.server.close();
      await hub.cleanup();
    });

    test('a disk rule on a real mount goes pending, fires after its duration, resolves when space is freed', async () => {
      // No skip: like the fleet tests, this suite runs as root (npm test prepares the machine as root).
      assert.ok(ROOT, 'needs root (a mount namespace with a tmpfs for the agent)');
      const mount = `/tmp/tether-alert-fs-${process.pid}-${db}`;
      const c = agentWithTmpfs(hub.url, await hub.enrollToken(), mount);
      try {
        const cId = await c.waitConnected();
        const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'scratch full', metric: `fs_used_percent|${mount}`, op: '>', threshold: 50, forSec: 2, resolveForSec: 1, severity: 'critical', scope: { hosts: [cId] }, channels: [channelId], groupWindowSec: 0.2 });
        await waitFor(async () => (await hub.api('GET', `/api/v1/hosts/${cId}/latest`)).series?.[`fs_used_percent|${mount}`] !== undefined, 'the tmpfs in the agent’s report');
        // Only the agent's namespace has the tmpfs: write through its root.
        const file = join(`/proc/${c.proc.pid}/root`, mount, 'fill');
        writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, 1));
        const pending = await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.find((x: any) => x.state === 'pending'), 'pending', 10_000);
        assert.equal(pending.hostId, cId);
        assert.equal(pending.subject, `fs_used_percent|${mount}`);
        const firing = await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.find((x: any) => x.state === 'firing'), 'firing', 10_000);
        assert.ok(firing.firedAt - firing.startedAt >= 2000, 'fired only after holding for 2 s');
        assert.ok(firing.value > 70 && firing.value < 80, `about 75 % used: ${firing.value}`);
        const note = await waitFor(() => hook.got.find((g) => g.body.rule?.id === rule.id && g.body.kind === 'firing'), 'firing webhook');
        assert.equal(note.body.firing[0].subject, `fs_used_percent|${mount}`);
        rmSync(file);
        const done = await waitFor(async () => (await hub.api('GET', `/api/v1/alerts/history?rule=${rule.id}`)).alerts.find((x: any) => x.state === 'resolved'), 'resolved in history', 10_000);
        assert.equal(done.id, firing.id);
        assert.ok(done.endedAt > done.firedAt);
        assert.ok(done.peak >= firing.value);
        assert.equal((await hub.api('GET', `/api/v1/alerts?rule=${rule.id}`)).alerts.length, 0);
        await waitFor(() => hook.got.find((g) => g.body.rule?.id === rule.id && g.body.kind === 'resolved'), 'resolved webhook');
        await hub.api('DELETE', `/api/v1/alerts/rules/${rule.id}`);
      } finally {
        await c.stop();
        c.cleanup();
      }
    });

    test('frozen hosts fire host offline as one grouped, signed webhook; a silenced rule sends nothing; both resolve when the hosts are back', async () => {
      const ws = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/alerts/live', { headers: { authorization: `Bearer ${hub.token}` } });
      const pushed: any[] = [];
      ws.on('message', (d) => pushed.push(JSON.parse(d.toString())));
      await new Promise((r) => ws.once('open', r));
      const offline = await hub.api('POST', '/api/v1/alerts/rules', { name: 'web host offline', anomaly: 'host_offline', forSec: 1, resolveForSec: 0, severity: 'critical', scope: { selector: 'role=web' }, channels: [channelId], groupWindowSec: 3 });
      const quiet = await hub.api('POST', '/api/v1/alerts/rules', { name: 'offline (maintenance)', anomaly: 'host_offline', forSec: 1, resolveForSec: 0, scope: { hosts: [aId, bId] }, channels: [channelId], groupWindowSec: 1 });
      const sil = await hub.api('POST', '/api/v1/alerts/silences', { ruleId: quiet.id, durationSec: 3600, reason: 'planned maintenance' });
      assert.equal(sil.active, true);
      const before = hook.got.length;

      a.proc.child.kill('SIGSTOP');
      b.proc.child.kill('SIGSTOP');
      const grouped = await waitFor(() => hook.got.slice(before).find((g) => g.body.rule?.id === offline.id), 'the grouped firing webhook', 20_000);
      assert.deepEqual(grouped.body.firing.map((x: any) => x.hostId).sort(), [aId, bId].sort(), 'both hosts in one notification');
      assert.equal(grouped.body.kind, 'firing');
      assert.match(grouped.body.title, /FIRING 2/);
      const expected = 'sha256=' + createHmac('sha256', HMAC_KEY).update(grouped.raw).digest('hex');
      assert.ok(timingSafeEqual(Buffer.from(String(grouped.headers['x-tether-signature-256'])), Buffer.from(expected)), 'HMAC over the exact body');
      assert.equal(grouped.headers['x-team'], 'ops', 'custom header sent');
      assert.equal(grouped.headers['x-tether-event'], 'firing');
      const quietAlerts = await waitFor(async () => {
        const l = (await hub.api('GET', `/api/v1/alerts?rule=${quiet.id}`)).alerts;
        return l.length === 2 && l.every((x: any) => x.state === 'firing' && x.silenced) ? l : undefined;
      }, 'the silenced rule’s alerts fire, marked silenced');
      assert.equal(quietAlerts.length, 2);
      assert.ok(pushed.some((m) => m.type === 'snapshot'));
      assert.ok(pushed.some((m) => m.type === 'alert' && m.alert.ruleId === offline.id && m.alert.state === 'firing'), 'firing pushed live');

      a.proc.child.kill('SIGCONT');
      b.proc.child.kill('SIGCONT');
      const resolved = await waitFor(() => hook.got.slice(before).find((g) => g.body.rule?.id === offline.id && g.body.kind === 'resolved'), 'the resolved webhook', 20_000);
      assert.deepEqual(resolved.body.resolved.map((x: any) => x.hostId).sort(), [aId, bId].sort());
      assert.ok(resolved.body.resolved.every((x: any) => x.endedAt >= x.firedAt && x.state === 'resolved'));
      await waitFor(async () => (await hub.api('GET', `/api/v1/alerts?rule=${quiet.id}`)).alerts.length === 0, 'the silenced rule resolves too');
      assert.ok(pushed.some((m) => m.type === 'alert' && m.alert.ruleId === offline.id && m.alert.state === 'resolved'), 'resolution pushed live');
      // Both rules went through the same ticks: once the offline rule's deliveries are all logged, a
      // notification for the silenced rule would be logged too. None is, and none reached the hook.
      const log = await waitFor(async () => {
        const d = (await hub.api('GET', `/api/v1/alerts/deliveries?rule=${offline.id}`)).deliveries;
        return d.length >= 2 ? d : undefined;
      }, 'both deliveries of the offline rule logged');
      assert.deepEqual(log.map((d: any) => [d.kind, d.status]).sort(), [['firing', 'ok'], ['resolved', 'ok']]);
      assert.deepEqual((await hub.api('GET', `/api/v1/alerts/deliveries?rule=${quiet.id}`)).deliveries, [], 'nothing delivered for the silenced rule');
      assert.equal(hook.got.filter((g) => g.body.rule?.id === quiet.id).length, 0, 'nothing sent for the silenced rule');
      const hist = (await hub.api('GET', `/api/v1/alerts/history?rule=${offline.id}`)).alerts;
      assert.equal(hist.length, 2);
      assert.ok(hist.every((h: any) => h.state === 'resolved' && h.endedAt > h.startedAt));
      ws.close();
    });
  });
}
