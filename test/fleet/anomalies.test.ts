// The container and systemd anomaly rules fed by real agents: a container in Podman that exits at
// once with restart policy always (created through the Docker API, HostConfig.RestartPolicy) fires
// container_restart_loop from the agent's `containers` reports, one whose health check fails fires
// container_unhealthy; a transient unit that runs `false`
// on a host with systemd as PID 1 fires systemd_unit_failed from the `units` reports, and resolves
// after `systemctl reset-failed`. Rules are created through the API with a lowered N/M.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { TestAgent, TestHub, waitFor as poll } from '@tether/testkit';
import { fleetEnv, type FleetEnv } from './env.js';
import { defaultAgentCommand, startFleet, type Fleet, type FleetHost } from './fleet.js';
import { run, waitFor } from './exec.js';

const HUB_ENV = { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_RECONNECT_GRACE: '0s' };
const CONFIG = '/etc/tether/agent.toml';

/** One call to the engine's API, as any Docker client would make it. */
function engine(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath: socket, method, path: `/v1.41${path}`, headers: { host: 'docker', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) } }, (res) => {
      let raw = '';
      res.on('data', (c: Buffer) => (raw += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Presets watch every host: switched off so that only this test's rules speak. */
async function quietPresets(hub: TestHub): Promise<void> {
  for (const r of (await hub.api('GET', '/api/v1/alerts/rules')).rules) await hub.api('PATCH', `/api/v1/alerts/rules/${r.id}`, { enabled: false });
}

const alertOf = (hub: TestHub, ruleId: string, state: string, path = '/api/v1/alerts') => async () => (await hub.api('GET', `${path}?rule=${ruleId}`)).alerts.find((x: any) => x.state === state);

describe('containers in Podman watched by an agent (restart loop, unhealthy)', () => {
  let hub: TestHub;
  let env: FleetEnv;
  let agent: TestAgent;
  let locked: TestAgent;
  let id: string;
  let lockedId: string;
  const name = `tt-${process.pid}-loop`;
  let cid: string | undefined;

  before(async () => {
    env = await fleetEnv();
    hub = await TestHub.start({ env: HUB_ENV });
    const toml = `docker_socket = ${JSON.stringify(env.socket)}\ncollector_intervals = { containers = "1s" }`;
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker'], toml });
    locked = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics'], toml });
    id = await agent.waitConnected(20_000);
    lockedId = await locked.waitConnected(20_000);
    await quietPresets(hub);
  });

  after(async () => {
    if (cid) await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`).catch(() => {});
    const r = await run('podman', ['ps', '-aq', '--filter', `label=tether.test=${process.pid}`], { allowFailure: true });
    const left = r.stdout.split('\n').filter(Boolean);
    if (left.length) await run('podman', ['rm', '-f', '-t', '0', ...left], { allowFailure: true });
    for (const a of [agent, locked]) await a?.stop();
    await hub?.cleanup();
    for (const a of [agent, locked]) a?.cleanup();
  });

  test('the catalog names the agent reports as what feeds the container and systemd anomalies', async () => {
    const cat = await hub.api('GET', '/api/v1/alerts/catalog');
    for (const t of ['container_restart_loop', 'container_oom', 'container_unhealthy', 'systemd_unit_failed']) {
      const a = cat.anomalies.find((x: any) => x.type === t);
      assert.ok(a.fedBy.some((s: string) => /containers, units/.test(s)), `${t} is fed: ${JSON.stringify(a.fedBy)}`);
    }
  });

  test('a container that exits at once with restart policy always fires container_restart_loop (3 restarts in 20 s), and resolves once it is gone', async () => {
    const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'restart loop', kind: 'anomaly', anomaly: 'container_restart_loop', threshold: 3, params: { windowSec: 20 }, forSec: 0, resolveForSec: 0, severity: 'critical', scope: { hosts: [id, lockedId] } });
    const created = await engine(env.socket, 'POST', `/containers/create?name=${name}`, {
      Image: env.image,
      Cmd: ['/bin/false'],
      Labels: { 'tether.test': String(process.pid) },
      HostConfig: { RestartPolicy: { Name: 'always' } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    cid = created.body.Id as string;
    assert.equal((await engine(env.socket, 'POST', `/containers/${cid}/start`)).status, 204);

    const firing = await poll(alertOf(hub, rule.id, 'firing'), 'restart loop firing', 30_000, 200);
    assert.equal(firing.hostId, id, `only the agent allowed to look at Docker reports it: ${JSON.stringify(firing)}`);
    assert.equal(firing.subject, name);
    assert.ok(firing.value >= 3, `counted restarts: ${firing.value}`);
    assert.match(firing.detail ?? '', /restart count \d+/, JSON.stringify(firing));
    // The console's summary: the restarts and the exit code (read while the container is down:
    // it is up for a moment at a time, and then the last exit code may not show).
    const row = await poll(async () => (await hub.api('GET', `/api/v1/hosts/${id}/containers`)).containers.find((c: any) => c.name === name && c.restartCount >= 3 && c.exitCode === 1), 'summary with restarts and exit code 1', 15_000, 200);
    assert.equal(row.id, cid);
    assert.equal(row.oomKilled, false);
    const none = await hub.api('GET', `/api/v1/hosts/${lockedId}/containers`);
    assert.deepEqual(none, { ts: null, containers: [], truncated: false }, 'no docker capability: no containers collector');

    // Removed at once: the loop costs CPU on a shared machine. Restarts then leave the 20 s window.
    // Podman may refuse (500) to remove a container that its restart policy is starting again at
    // that moment: ask again, briefly, until it is gone.
    let removed = await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`);
    for (let i = 0; i < 20 && removed.status !== 204 && removed.status !== 404; i++) {
      await new Promise((r) => setTimeout(r, 250));
      removed = await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`);
    }
    assert.ok(removed.status === 204 || removed.status === 404, `remove answered ${removed.status}: ${JSON.stringify(removed.body)}`);
    cid = undefined;
    const done = await poll(alertOf(hub, rule.id, 'resolved', '/api/v1/alerts/history'), 'restart loop resolved', 40_000, 500);
    assert.equal(done.id, firing.id);
  });

  test('a container whose health check fails fires container_unhealthy; passing again resolves it', async () => {
    const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'unhealthy', kind: 'anomaly', anomaly: 'container_unhealthy', forSec: 0, resolveForSec: 0, severity: 'warning', scope: { hosts: [id] } });
    const hc = `tt-${process.pid}-hc`;
    const created = await engine(env.socket, 'POST', `/containers/create?name=${hc}`, {
      Image: env.image,
      Cmd: ['/bin/sleep', '600'],
      Labels: { 'tether.test': String(process.pid) },
      // An hour apart: the checks below are run by hand, as the engine's timer would run them.
      Healthcheck: { Test: ['CMD-SHELL', 'test -e /tmp/ok'], Interval: 3600e9, Retries: 1 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await engine(env.socket, 'POST', `/containers/${hc}/start`)).status, 204);
    await run('podman', ['healthcheck', 'run', hc], { allowFailure: true });
    const firing = await poll(alertOf(hub, rule.id, 'firing'), 'unhealthy firing', 20_000, 200);
    assert.equal(firing.subject, hc);
    assert.equal((await hub.api('GET', `/api/v1/hosts/${id}/containers`)).containers.find((c: any) => c.name === hc)?.health, 'unhealthy');
    await run('podman', ['exec', hc, 'touch', '/tmp/ok']);
    await run('podman', ['healthcheck', 'run', hc]);
    const done = await poll(alertOf(hub, rule.id, 'resolved', '/api/v1/alerts/history'), 'unhealthy resolved', 20_000, 200);
    assert.equal(done.id, firing.id);
    assert.equal((await hub.api('GET', `/api/v1/hosts/${id}/containers`)).containers.find((c: any) => c.name === hc)?.health, 'healthy');
  });
});

describe('failed systemd unit on a real host', () => {
  let hub: TestHub;
  let fleet: Fleet;
  let h: FleetHost;
  let id: string;
  const unit = `tt-fail-${process.pid}.service`;

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', env: HUB_ENV });
    fleet = await startFleet({ count: 1, hubPort: hub.port, hostnamePrefix: 'anom', agentCommand: (o) => [...defaultAgentCommand(o), '--config', CONFIG] });
    h = fleet.hosts[0]!;
    await h.exec(['mkdir', '-p', '/etc/tether']);
    await h.writeFile(CONFIG, 'capabilities = ["metrics", "systemd"]\ncollector_intervals = { units = "1s" }\n');
    await h.startAgent(await hub.enrollToken({ singleUse: true }));
    id = await waitFor('agent online', async () => (await hub.hosts('?status=online')).hosts[0]?.id, { timeoutMs: 30_000 });
    await quietPresets(hub);
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('a transient unit running false fires systemd_unit_failed; systemctl reset-failed resolves it', async () => {
    const rule = await hub.api('POST', '/api/v1/alerts/rules', { name: 'unit failed', kind: 'anomaly', anomaly: 'systemd_unit_failed', forSec: 0, resolveForSec: 0, severity: 'warning', scope: { hosts: [id] } });
    // --wait: back once the unit has run (and failed); it exits with the unit's status.
    await h.exec(['systemd-run', '--wait', `--unit=${unit}`, '/bin/false'], { allowFailure: true });
    assert.equal(await h.unitState(unit), 'failed', 'systemd itself says failed');
    const firing = await poll(alertOf(hub, rule.id, 'firing'), 'unit failed firing', 20_000, 200);
    assert.equal(firing.hostId, id);
    assert.equal(firing.subject, unit);
    assert.match(firing.detail, /loaded failed failed/);
    const units = await hub.api('GET', `/api/v1/hosts/${id}/units`);
    assert.ok(units.failed.some((u: any) => u.unit === unit), JSON.stringify(units));

    await h.systemctl('reset-failed', unit);
    const done = await poll(alertOf(hub, rule.id, 'resolved', '/api/v1/alerts/history'), 'unit failed resolved', 20_000, 200);
    assert.equal(done.id, firing.id);
    assert.ok(!(await hub.api('GET', `/api/v1/hosts/${id}/units`)).failed.some((u: any) => u.unit === unit), 'gone from the summary');
  });
});
