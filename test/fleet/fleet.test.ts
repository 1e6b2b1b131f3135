// End to end on a real fleet: Podman containers with systemd as PID 1, each running a real agent
// enrolled to a real hub on this machine; plus agents in plain network namespaces. Needs root and
// test/fleet/setup.sh (CI runs it first); without them these tests fail, they never skip.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { TestHub } from '@tether/testkit';
import { fleetEnv } from './env.js';
import { sleep, waitFor } from './exec.js';
import { startFleet, type Fleet, type FleetHost } from './fleet.js';
import { startNetnsFleet, type NetnsFleet } from './netns.js';

const HEARTBEAT_SEC = 2; // the hub marks a host offline after 3 missed beats: 6 s
const CUT_SEC = 30;

interface HostRow {
  id: string;
  hostname: string;
  online: boolean;
  facts: { hostname: string; ips: string[] };
}

async function hostRows(hub: TestHub): Promise<HostRow[]> {
  return (await hub.hosts('?status=all')).hosts as HostRow[];
}

async function hostById(hub: TestHub, id: string): Promise<HostRow> {
  return hub.api<HostRow>('GET', `/api/v1/hosts/${id}`);
}

/** Explains a failure with what the hub and the host's agent said. */
async function explain(hub: TestHub, h: FleetHost | undefined, err: unknown): Promise<never> {
  const agent = h ? `\n--- agent on ${h.hostname} (${await h.agentState().catch(() => '?')}):\n${await h.agentLogs(40)}` : '';
  const hubOut = hub.proc.lines.slice(-40).join('\n');
  throw new Error(`${(err as Error).message}${agent}\n--- hub (last lines):\n${hubOut}`, { cause: err });
}

function elapsed(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

describe('fleet: real hosts in containers (systemd, cron, D-Bus) with real agents', () => {
  let hub: TestHub;
  let fleet: Fleet;
  /** hostname → host id, as the hub gave them when the hosts joined. */
  const ids = new Map<string, string>();

  before(async () => {
    const t0 = Date.now();
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: `${HEARTBEAT_SEC}s` });
    fleet = await startFleet({
      count: 3,
      hubPort: hub.port,
      hostnamePrefix: 'web',
      token: () => hub.enrollToken({ singleUse: true, labels: { fleet: 'test' } }),
    });
    process.stderr.write(`# fleet: hub + 3 hosts booted in ${elapsed(t0)}\n`);
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('three hosts join the hub and show up online with their own hostnames and addresses', async (t) => {
    const t0 = Date.now();
    const rows = await waitFor('3 hosts online', async () => {
      const r = (await hostRows(hub)).filter((h) => h.online);
      return r.length === 3 ? r : undefined;
    }, { timeoutMs: 60_000 }).catch((err) => explain(hub, fleet.hosts[0], err));
    t.diagnostic(`all 3 online ${elapsed(t0)} after boot`);

    assert.deepEqual(rows.map((r) => r.hostname).sort(), ['web-1', 'web-2', 'web-3']);
    const addresses = new Set<string>();
    for (const h of fleet.hosts) {
      const row = rows.find((r) => r.hostname === h.hostname);
      assert.ok(row, `${h.hostname} is listed`);
      assert.equal(row.facts.hostname, h.hostname);
      assert.match(h.address, /^10\.88\.\d+\.\d+$/);
      assert.ok(row.facts.ips.includes(h.address), `${h.hostname} reports its address ${h.address} (got ${row.facts.ips.join(', ')})`);
      assert.deepEqual(await h.addresses(), [h.address], 'the host itself sees the same address');
      // The id the hub shows is the one the agent keeps in its own state directory.
      assert.equal(await h.agentId(), row.id);
      ids.set(h.hostname, row.id);
      addresses.add(h.address);
    }
    assert.equal(addresses.size, 3, 'three distinct addresses');
    assert.equal(new Set(ids.values()).size, 3, 'three distinct ids');
  });

  test('a frozen host is marked offline within the heartbeat window; thawed, it returns with the same id', async (t) => {
    const h = fleet.hosts[0]!;
    const id = ids.get(h.hostname)!;
    assert.ok(id);
    await h.freeze();
    const t0 = Date.now();
    try {
      assert.equal(await h.containerState(), 'paused');
      // Silence for more than 3 beats is noticed at the next sweep (every beat/4); one beat of slack
      // for the test's own polling.
      const window = (3 * HEARTBEAT_SEC + HEARTBEAT_SEC) * 1000;
      await waitFor('frozen host offline', async () => !(await hostById(hub, id)).online, { timeoutMs: window, intervalMs: 100 })
        .catch((err) => explain(hub, undefined, err));
      t.diagnostic(`frozen host marked offline after ${elapsed(t0)} (heartbeat ${HEARTBEAT_SEC} s, window ${window / 1000} s)`);
      const others = await Promise.all(fleet.hosts.slice(1).map((o) => hostById(hub, ids.get(o.hostname)!)));
      assert.ok(others.every((o) => o.online), 'the other hosts stay online');
    } finally {
      await h.thaw();
    }
    const t1 = Date.now();
    await waitFor('thawed host online', async () => (await hostById(hub, id)).online, { timeoutMs: 30_000 })
      .catch((err) => explain(hub, h, err));
    t.diagnostic(`thawed host online again after ${elapsed(t1)}`);
    assert.equal(await h.agentId(), id, 'same identity');
    const rows = await hostRows(hub);
    assert.equal(rows.length, 3, 'no new host');
    assert.equal(rows.filter((r) => r.hostname === h.hostname).length, 1);
  });

  test(`hosts cut off the network for ${CUT_SEC} s keep their addresses and reconnect when healed, without duplicates`, async (t) => {
    // Two hosts, two kinds of cut, in the same 30 s: a pulled switch port ('link': new connections
    // fail fast) and a partition further away ('drop': new connections hang in SYN retries).
    const cuts = [
      { h: fleet.hosts[1]!, mode: 'link' as const },
      { h: fleet.hosts[2]!, mode: 'drop' as const },
    ];
    const t0 = Date.now();
    try {
      for (const { h, mode } of cuts) await h.cutNetwork(mode);
      for (const { h, mode } of cuts) {
        const id = ids.get(h.hostname)!;
        await waitFor(`${mode}-cut host offline`, async () => !(await hostById(hub, id)).online, { timeoutMs: (4 * HEARTBEAT_SEC + 2) * 1000 })
          .catch((err) => explain(hub, h, err));
        t.diagnostic(`${mode}-cut host marked offline after ${elapsed(t0)}`);
        assert.deepEqual(await h.addresses(), [h.address], `the address stays while cut (${mode})`);
      }
      await sleep(Math.max(0, CUT_SEC * 1000 - (Date.now() - t0)));
      for (const { h } of cuts) assert.equal((await hostById(hub, ids.get(h.hostname)!)).online, false, 'still offline at the end of the cut');
    } finally {
      for (const { h } of cuts) await h.healNetwork();
    }
    const t1 = Date.now();
    for (const { h, mode } of cuts) {
      const id = ids.get(h.hostname)!;
      assert.deepEqual(await h.addresses(), [h.address], 'the same address after healing');
      // A connection attempt made during a 'drop' cut hangs until the agent's handshake timeout
      // (15 s): allow for it.
      await waitFor(`${mode}-cut host online after healing`, async () => (await hostById(hub, id)).online, { timeoutMs: 45_000, intervalMs: 200 })
        .catch((err) => explain(hub, h, err));
      t.diagnostic(`${mode}-cut host online again ${elapsed(t1)} after healing`);
      assert.equal(await h.agentId(), id);
    }
    const rows = await hostRows(hub);
    assert.equal(rows.length, 3, `no duplicate host (got ${rows.map((r) => `${r.hostname}/${r.id}`).join(', ')})`);
    assert.ok(rows.every((r) => r.online));
    for (const { h } of cuts) assert.ok(rows.find((r) => r.hostname === h.hostname)!.facts.ips.includes(h.address));
  });

  test('an agent killed with SIGKILL through systemd goes offline; restarted by systemctl it returns as the same host', async (t) => {
    const h = fleet.hosts[2]!;
    const id = ids.get(h.hostname)!;
    await h.killAgent();
    assert.equal(await h.agentState(), 'failed', 'systemd saw the agent die');
    const t0 = Date.now();
    // The kernel closes the dead agent's socket: the hub notices at once, no heartbeat needed.
    await waitFor('killed agent offline', async () => !(await hostById(hub, id)).online, { timeoutMs: (4 * HEARTBEAT_SEC) * 1000 })
      .catch((err) => explain(hub, h, err));
    t.diagnostic(`killed agent's host offline after ${elapsed(t0)}`);
    await h.restartAgent();
    assert.equal(await h.agentState(), 'active');
    await waitFor('restarted agent online', async () => (await hostById(hub, id)).online, { timeoutMs: 30_000 })
      .catch((err) => explain(hub, h, err));
    assert.equal((await hostRows(hub)).length, 3, 'no new host');
  });

  test('after a hub restart every host comes back online, with the same ids', async (t) => {
    const t0 = Date.now();
    await hub.restart();
    await waitFor('all hosts back after hub restart', async () => {
      const rows = await hostRows(hub);
      return rows.length === 3 && rows.every((r) => r.online) ? rows : undefined;
    }, { timeoutMs: 45_000 }).catch((err) => explain(hub, fleet.hosts[0], err));
    t.diagnostic(`all hosts back ${elapsed(t0)} after the hub restart began`);
    const rows = await hostRows(hub);
    assert.deepEqual(new Set(rows.map((r) => r.id)), new Set(ids.values()));
  });

  test('inside a host, a real systemd unit starts and stops, next to cron and D-Bus', async () => {
    const h = fleet.hosts[0]!;
    assert.equal((await h.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
    assert.equal((await h.exec(['hostname'])).stdout.trim(), h.hostname);
    for (const unit of ['cron.service', 'dbus.service', 'systemd-journald.service', 'tether-agent.service']) {
      assert.equal(await h.unitState(unit), 'active', unit);
    }
    // D-Bus answers: systemd's own bus API through the system bus.
    const bus = await h.exec(['busctl', 'get-property', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1',
      'org.freedesktop.systemd1.Manager', 'Version']);
    assert.match(bus.stdout, /^s "\d+/);

    await h.writeFile('/etc/systemd/system/fleet-probe.service', [
      '[Service]',
      'ExecStart=/bin/sleep 600',
      '',
    ].join('\n'));
    await h.systemctl('daemon-reload');
    assert.equal(await h.unitState('fleet-probe.service'), 'inactive');
    await h.systemctl('start', 'fleet-probe.service');
    assert.equal(await h.unitState('fleet-probe.service'), 'active');
    const pid = Number(await h.systemctl('show', '-p', 'MainPID', '--value', 'fleet-probe.service'));
    assert.ok(pid > 1);
    assert.equal((await h.exec(['cat', `/proc/${pid}/comm`])).stdout.trim(), 'sleep');
    await h.systemctl('stop', 'fleet-probe.service');
    assert.equal(await h.unitState('fleet-probe.service'), 'inactive');
    assert.equal((await h.exec(['test', '-e', `/proc/${pid}`], { allowFailure: true })).code, 1, 'its process is gone');
  });

  test('inside a host, a crontab written with crontab(1) reads back from the cron spool', async () => {
    const h = fleet.hosts[1]!;
    const table = '# fleet test\n* * * * * date +\\%s > /tmp/fleet-cron-ran\n17 3 * * 1 /usr/bin/true\n';
    await h.exec(['crontab', '-'], { input: table });
    assert.equal((await h.exec(['crontab', '-l'])).stdout, table);
    const spool = await h.exec(['stat', '-c', '%U %a', '/var/spool/cron/crontabs/root']);
    assert.equal(spool.stdout.trim(), 'root 600');
    await h.exec(['crontab', '-r']);
    assert.notEqual((await h.exec(['crontab', '-l'], { allowFailure: true })).code, 0, 'removed');
  });
});

describe('fleet: light hosts in network namespaces', () => {
  let hub: TestHub;
  let nsFleet: NetnsFleet;

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: `${HEARTBEAT_SEC}s` });
  });
  after(async () => {
    await nsFleet?.stop();
    await hub?.cleanup();
  });

  test('five agents in their own namespaces join with five distinct addresses and hostnames', async (t: TestContext) => {
    const t0 = Date.now();
    const token = await hub.enrollToken();
    nsFleet = await startNetnsFleet({ count: 5, hubPort: hub.port, token, hostnamePrefix: 'ns' });
    const rows = await waitFor('5 namespace hosts online', async () => {
      const r = (await hostRows(hub)).filter((h) => h.online);
      return r.length === 5 ? r : undefined;
    }, { timeoutMs: 60_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${nsFleet.hosts.map((h) => `--- ${h.hostname}:\n${h.output.slice(-1500)}`).join('\n')}`);
    });
    t.diagnostic(`5 namespace agents online in ${elapsed(t0)}`);
    const want = nsFleet.hosts.map((h) => h.address).sort();
    assert.equal(new Set(want).size, 5);
    const got = rows.map((r) => r.facts.ips.filter((ip) => want.includes(ip))).map((ips) => ips.join(',')).sort();
    assert.deepEqual(got, want, 'each host reports exactly its own namespace address');
    assert.deepEqual(rows.map((r) => r.hostname).sort(), ['ns-1', 'ns-2', 'ns-3', 'ns-4', 'ns-5']);
    assert.equal(new Set(rows.map((r) => r.id)).size, 5);

    // A cut on one namespace's link takes only that host offline.
    const h = nsFleet.hosts[0]!;
    const id = rows.find((r) => r.hostname === h.hostname)!.id;
    await h.cutNetwork();
    try {
      await waitFor('cut namespace host offline', async () => !(await hostById(hub, id)).online, { timeoutMs: (4 * HEARTBEAT_SEC + 2) * 1000 });
      assert.equal((await hostRows(hub)).filter((r) => r.online).length, 4);
    } finally {
      await h.healNetwork();
    }
    await waitFor('healed namespace host online', async () => (await hostById(hub, id)).online, { timeoutMs: 45_000 });
    assert.equal((await hostRows(hub)).length, 5, 'no duplicate');
  });
});

test('the Docker Engine API that setup.sh started runs a container from the host image', async () => {
  const env = await fleetEnv();
  const call = (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        { socketPath: env.socket, method, path: `/v1.41${path}`, headers: data ? { 'content-type': 'application/json' } : {}, timeout: 60_000 },
        (res) => {
          let text = '';
          res.on('data', (b: Buffer) => (text += b.toString()));
          res.on('end', () => {
            let json: unknown = text;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });

  const version = await call('GET', '/version');
  assert.equal(version.status, 200);
  assert.match(JSON.stringify(version.json), /Podman Engine/);
  const name = `tether-t-${process.pid}-api`;
  const created = await call('POST', `/containers/create?name=${name}`, {
    Image: env.image,
    Cmd: ['/bin/sh', '-c', 'exit 7'],
    Labels: { 'tether.fleet': '1', 'tether.fleet.pid': String(process.pid) },
    HostConfig: { NetworkMode: 'none' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = (created.json as { Id: string }).Id;
  try {
    assert.equal((await call('POST', `/containers/${id}/start`)).status, 204);
    const waited = await call('POST', `/containers/${id}/wait`);
    assert.equal((waited.json as { StatusCode: number }).StatusCode, 7);
  } finally {
    await call('DELETE', `/containers/${id}?force=1`);
  }
});
