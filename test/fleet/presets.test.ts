// A fresh hub alerts on a crash-looping container with no rule made by hand: the shipped preset
// "Container restart loop" (5 restarts within 10 minutes) fires from a real agent's `containers`
// reports on a real container in Podman (Docker API, restart policy always, a command that exits
// at once). The container is then removed at once: the loop costs CPU on a shared machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { TestAgent, TestHub, waitFor } from '@tether/testkit';
import { fleetEnv, type FleetEnv } from './env.js';
import { run } from './exec.js';

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

describe('a fresh hub and a restart-looping container', () => {
  let hub: TestHub;
  let env: FleetEnv;
  let agent: TestAgent;
  let id: string;
  const name = `tt-${process.pid}-preset-loop`;
  let cid: string | undefined;

  before(async () => {
    env = await fleetEnv();
    hub = await TestHub.start({ env: { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_RECONNECT_GRACE: '0s' } });
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker'], toml: `docker_socket = ${JSON.stringify(env.socket)}\ncollector_intervals = { containers = "1s" }` });
    id = await agent.waitConnected(20_000);
  });

  after(async () => {
    if (cid) await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`).catch(() => {});
    const r = await run('podman', ['ps', '-aq', '--filter', `label=tether.test=${process.pid}`], { allowFailure: true });
    const left = r.stdout.split('\n').filter(Boolean);
    if (left.length) await run('podman', ['rm', '-f', '-t', '0', ...left], { allowFailure: true });
    await agent?.stop();
    await hub?.cleanup();
    agent?.cleanup();
  });

  test('the shipped "Container restart loop" preset fires with no rule made by hand, naming the container', async () => {
    const created = await engine(env.socket, 'POST', `/containers/create?name=${name}`, {
      Image: env.image,
      Cmd: ['/bin/false'],
      Labels: { 'tether.test': String(process.pid) },
      HostConfig: { RestartPolicy: { Name: 'always' } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    cid = created.body.Id as string;
    assert.equal((await engine(env.socket, 'POST', `/containers/${cid}/start`)).status, 204);

    const firing = await waitFor(async () => (await hub.api('GET', '/api/v1/alerts?rule=preset-container-restart-loop')).alerts.find((a: any) => a.state === 'firing'), 'the preset firing', 90_000, 250);
    assert.equal(firing.hostId, id);
    assert.equal(firing.subject, name);
    assert.ok(firing.value >= 5, `restarts counted: ${firing.value}`);
    assert.equal(firing.severity, 'critical');

    // Removed at once (the loop costs CPU on a shared machine); Podman may refuse while it restarts.
    let removed = await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`);
    for (let i = 0; i < 20 && removed.status !== 204 && removed.status !== 404; i++) {
      await new Promise((r) => setTimeout(r, 250));
      removed = await engine(env.socket, 'DELETE', `/containers/${cid}?force=1`);
    }
    assert.ok(removed.status === 204 || removed.status === 404, `remove answered ${removed.status}`);
    cid = undefined;
  });
});
