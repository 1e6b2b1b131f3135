// systemd, cron, processes and ports, the hosts file and power, on real hosts: Podman containers with
// systemd as PID 1 and cron, each running a real agent (as the unit tether-agent) whose local config
// allows these managers — or, on the second host, monitoring only. Everything goes through the hub's
// API (and the CLI), and is checked from inside the host with its own tools.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestHub, cli, tempDir } from '@tether/testkit';
import { waitFor } from './exec.js';
import { defaultAgentCommand, startFleet, type Fleet, type FleetHost } from './fleet.js';
import { run } from './exec.js';

const CONFIG = '/etc/tether/agent.toml';
const UNTAGGED = '# hand-written: Tether must leave this alone\n17 4 * * * /usr/bin/true # nightly\n';

describe('host managers on real hosts (systemd, cron, processes, hosts file, power)', () => {
  let hub: TestHub;
  let fleet: Fleet;
  let h: FleetHost;
  let id: string;
  let lockedId: string;
  let cronId: string;
  let cliEnv: NodeJS.ProcessEnv;
  const url = (p: string, host = id) => `/api/v1/hosts/${host}${p}`;
  const status = async (method: string, path: string, body?: unknown) => {
    const r = await hub.raw(method, path, body);
    return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, any> };
  };

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '2s' });
    fleet = await startFleet({
      count: 2,
      hubPort: hub.port,
      hostnamePrefix: 'mgr',
      // A reboot inside the host ends its systemd; Podman starts the container again, as a machine would boot.
      podmanArgs: ['--restart=always'],
      agentCommand: (o) => [...defaultAgentCommand(o), '--config', CONFIG],
    });
    h = fleet.hosts[0]!;
    await h.exec(['mkdir', '-p', '/etc/tether']);
    await h.writeFile(CONFIG, 'capabilities = ["metrics", "systemd", "cron", "process", "power", "files"]\n');
    await fleet.hosts[1]!.exec(['mkdir', '-p', '/etc/tether']);
    await fleet.hosts[1]!.writeFile(CONFIG, 'capabilities = ["metrics"]\n');
    // A crontab with a line of its own before Tether touches it.
    await h.exec(['crontab', '-'], { input: UNTAGGED });
    for (const host of fleet.hosts) await host.startAgent(await hub.enrollToken({ singleUse: true }));
    await h.systemctl('enable', 'tether-agent'); // so that it comes back after a reboot
    const rows = await waitFor('both agents online', async () => {
      const r = (await hub.hosts('?status=online')).hosts;
      return r.length === 2 ? r : undefined;
    }, { timeoutMs: 30_000 });
    id = rows.find((r: { hostname: string }) => r.hostname === h.hostname).id;
    lockedId = rows.find((r: { hostname: string }) => r.hostname !== h.hostname).id;
    // Created first: cron runs it at the next minute boundary, while the other tests go on.
    const e = await hub.api('POST', url('/cron'), { schedule: '* * * * *', command: 'echo "ran on $(hostname) 100%"; exit 3', name: 'probe' });
    cronId = e.id;
    cliEnv = { TETHER_HUB: hub.url, TETHER_SESSION: hub.token, TETHER_CLI_CONFIG: `${tempDir('tether-cli-')}/cli.json` };
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('capability off: every manager answers 403 refused, naming the local config', async () => {
    for (const [method, path] of [
      ['GET', '/systemd/units'],
      ['GET', '/cron'],
      ['GET', '/ps'],
      ['GET', '/ports'],
      ['GET', '/power'],
      ['GET', '/hosts-file'],
      ['POST', '/systemd/units/cron.service/stop'],
    ] as const) {
      const r = await status(method, url(path, lockedId));
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'refused');
      assert.match(r.body.message, /does not allow \w+ \(capabilities = \["metrics"\] in its local config\)/);
    }
    assert.equal(await fleet.hosts[1]!.unitState('cron'), 'active', 'nothing was stopped');
  });

  test('systemd: list, daemon-reload, show, start, journal (and follow), stop, enable/disable, mask/unmask; bad and unknown unit names', async () => {
    await h.writeFile('/etc/systemd/system/tt-probe.service', '[Unit]\nDescription=probe\n[Service]\nEnvironment=PROBE=yes\nExecStart=/bin/sh -c "echo probe-started; exec sleep 1000"\n[Install]\nWantedBy=multi-user.target\n');
    await hub.api('POST', url('/systemd/daemon-reload'));
    const list = await hub.api('GET', url('/systemd/units?type=service'));
    const cron = list.units.find((u: { unit: string }) => u.unit === 'cron.service');
    assert.deepEqual([cron.load, cron.active, cron.sub], ['loaded', 'active', 'running']);
    const show = await hub.api('GET', url('/systemd/units/tt-probe.service'));
    assert.equal(show.properties.LoadState, 'loaded');
    assert.equal(show.properties.ActiveState, 'inactive');

    await hub.api('POST', url('/systemd/units/tt-probe.service/start'));
    assert.equal(await h.unitState('tt-probe.service'), 'active');
    const journal = await waitFor('journal line', async () => {
      const j = await hub.api('GET', url('/systemd/units/tt-probe.service/journal?lines=20'));
      return j.entries.some((e: { message: string }) => e.message === 'probe-started') ? j : undefined;
    }, { timeoutMs: 10_000 });
    assert.ok(journal.entries.every((e: { ts: number }) => e.ts > 0));

    const ctrl = new AbortController();
    const res = await fetch(`${hub.url}${url('/systemd/units/tt-probe.service/journal?follow=true&lines=1')}`, { headers: { authorization: `Bearer ${hub.token}` }, signal: ctrl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const first = await reader.read();
    text += Buffer.from(first.value ?? []).toString();
    await hub.api('POST', url('/systemd/units/tt-probe.service/restart'));
    const t0 = Date.now();
    while (!/Stopp(ed|ing)[^\n]*\n[\s\S]*probe-started/.test(text) && Date.now() - t0 < 10_000) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ctrl.abort();
    assert.match(text, /probe-started/, `the restart shows up in the followed journal: ${text}`);

    // Keep the probe running for the process tests below; exercise the rest on a second unit.
    await hub.api('POST', url('/systemd/units/cron.service/stop'));
    assert.equal(await h.unitState('cron.service'), 'inactive');
    await hub.api('POST', url('/systemd/units/cron.service/start'));
    assert.equal(await h.unitState('cron.service'), 'active');
    await hub.api('POST', url('/systemd/units/tt-probe.service/enable'));
    assert.equal((await h.exec(['systemctl', 'is-enabled', 'tt-probe.service'], { allowFailure: true })).stdout.trim(), 'enabled');
    await hub.api('POST', url('/systemd/units/tt-probe.service/disable'));
    assert.equal((await h.exec(['systemctl', 'is-enabled', 'tt-probe.service'], { allowFailure: true })).stdout.trim(), 'disabled');
    // mask needs the unit's file elsewhere than /etc/systemd/system (mask puts a link there)
    await h.writeFile('/usr/lib/systemd/system/tt-masked.service', '[Service]\nExecStart=/bin/sleep 100\n');
    await hub.api('POST', url('/systemd/daemon-reload'));
    await hub.api('POST', url('/systemd/units/tt-masked.service/mask'));
    assert.equal((await h.exec(['systemctl', 'is-enabled', 'tt-masked.service'], { allowFailure: true })).stdout.trim(), 'masked');
    const masked = await status('POST', url('/systemd/units/tt-masked.service/start'));
    assert.equal(masked.status, 409, JSON.stringify(masked.body));
    await hub.api('POST', url('/systemd/units/tt-masked.service/unmask'));
    await hub.api('POST', url('/systemd/units/tt-masked.service/start'));
    assert.equal(await h.unitState('tt-masked.service'), 'active');
    await hub.api('POST', url('/systemd/units/tt-masked.service/stop'));
    const reload = await status('POST', url('/systemd/units/tt-probe.service/reload'));
    assert.equal(reload.status, 502, 'a unit without ExecReload cannot reload: the agent says why');
    assert.match(reload.body.message, /reload/i);

    for (const bad of ['cron', 'a;b.service', '-H.service', 'x y.service', '../etc.service']) {
      const r = await status('POST', url(`/systemd/units/${encodeURIComponent(bad)}/stop`));
      assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.body)}`);
    }
    assert.equal((await status('GET', url('/systemd/units/no-such-unit.service'))).status, 404);
    assert.equal(await h.unitState('cron.service'), 'active');
  });

  test('processes and ports: list with ppid, who listens on a port, environment, a signal ends a process; a pid that does not exist is 404', async () => {
    // The listener names itself: since Node 24 a node process's comm (what `process` reports) is its
    // main thread's name, MainThread, not node.
    await h.writeFile('/etc/systemd/system/tt-listen.service', '[Service]\nExecStart=/usr/local/bin/node -e "process.title = \'tt-listen\'; require(\'net\').createServer().listen(4567)"\n');
    await h.systemctl('daemon-reload');
    await h.systemctl('start', 'tt-listen.service');
    const ports = await waitFor('port 4567 listening', async () => {
      const p = await hub.api('GET', url('/ports?port=4567'));
      return p.ports.length ? p.ports : undefined;
    }, { timeoutMs: 10_000 });
    const listenPid = Number(await h.systemctl('show', '-p', 'MainPID', '--value', 'tt-listen.service'));
    assert.equal(ports[0].pid, listenPid);
    assert.equal(ports[0].process, 'tt-listen');

    const ps = await hub.api('GET', url('/ps'));
    const init = ps.processes.find((p: { pid: number }) => p.pid === 1);
    assert.equal(init.name, 'systemd');
    const probePid = Number(await h.systemctl('show', '-p', 'MainPID', '--value', 'tt-probe.service'));
    const probe = ps.processes.find((p: { pid: number }) => p.pid === probePid);
    assert.ok(probe, 'the probe is listed');
    assert.equal(probe.ppid, 1);
    assert.match(probe.command, /sleep 1000/);
    assert.ok(ps.processes.find((p: { pid: number }) => p.pid === listenPid).listenPorts.includes(4567));

    const env = await hub.api('GET', url(`/ps/${probePid}/environ`));
    assert.equal(env.env.PROBE, 'yes');
    assert.ok((await hub.api('GET', url('/agent-environ'))).env.PATH);

    await hub.api('POST', url(`/ps/${probePid}/signal`), { signal: 'SIGTERM' });
    await waitFor('probe gone', async () => (await h.unitState('tt-probe.service')) !== 'active', { timeoutMs: 10_000 });
    const gone = await status('POST', url('/ps/4000000/signal'), { signal: 'SIGTERM' });
    assert.equal(gone.status, 404);
    assert.match(gone.body.message, /no process 4000000/);
    const init1 = await status('POST', url('/ps/1/signal'), { signal: 'SIGKILL' });
    assert.equal(init1.status, 400, 'pid 1 is refused');
    assert.equal((await h.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
  });

  test('hosts file: read, write with a backup (the host resolves the new name), bad address 400, stale sha256 409', async () => {
    const before = await hub.api('GET', url('/hosts-file'));
    assert.ok(before.entries.some((e: { names: string[] }) => e.names.includes('localhost')));
    const w = await hub.api('PUT', url('/hosts-file'), { entries: [...before.entries, { ip: '10.1.2.3', names: ['tt-api.internal', 'tt-api'], comment: 'added by test' }], expectSha256: before.sha256 });
    assert.match(w.backup, /^\/etc\/hosts\.tether-/);
    assert.equal((await h.exec(['getent', 'hosts', 'tt-api.internal'])).stdout.split(/\s+/)[0], '10.1.2.3');
    assert.equal((await h.exec(['cat', w.backup])).stdout, before.content, 'the backup is the old file');
    const bad = await status('PUT', url('/hosts-file'), { entries: [{ ip: '10.1.2.300', names: ['x'] }] });
    assert.equal(bad.status, 400);
    const stale = await status('PUT', url('/hosts-file'), { entries: before.entries, expectSha256: before.sha256 });
    assert.equal(stale.status, 409, 'the file changed since that sha256 was read');
  });

  test('cron: the entry created through the API really ran (exit code and output kept); disable, enable, change, delete; untagged lines untouched; bad schedule 400', async () => {
    const runs = await waitFor('a cron run', async () => {
      const r = await hub.api('GET', url(`/cron/${cronId}/runs`));
      return r.runs.some((x: { exitCode?: number }) => x.exitCode !== undefined) ? r.runs : undefined;
    }, { timeoutMs: 75_000, intervalMs: 1000 });
    const done = runs.find((x: { exitCode?: number }) => x.exitCode !== undefined);
    assert.equal(done.exitCode, 3);
    assert.equal(done.output, `ran on ${h.hostname} 100%`, 'output captured, % passed through cron intact');
    assert.ok(done.endedAt >= done.startedAt);

    const list = await hub.api('GET', url('/cron'));
    assert.equal(list.entries.length, 1);
    assert.equal(list.untagged, 2, 'the hand-written comment and job are counted, not shown');
    assert.equal(list.entries[0].lastRun.exitCode, 3);
    assert.equal(list.entries[0].nextRuns.length, 5);

    const off = await hub.api('PATCH', url(`/cron/${cronId}`), { enabled: false });
    assert.equal(off.enabled, false);
    assert.deepEqual(off.nextRuns, []);
    let tab = (await h.exec(['crontab', '-l'])).stdout;
    assert.match(tab, new RegExp(`^#disabled .* # tether:${cronId}$`, 'm'));
    const on = await hub.api('PATCH', url(`/cron/${cronId}`), { enabled: true, schedule: '*/5 * * * *', name: 'every five' });
    assert.equal(on.schedule, '*/5 * * * *');
    assert.equal(new Date(on.nextRuns[0]).getUTCMinutes() % 5, 0);

    for (const schedule of ['61 * * * *', '* * * *', '0 0 L * *', '@sometimes']) {
      const r = await status('POST', url('/cron'), { schedule, command: 'true' });
      assert.equal(r.status, 400, `${schedule}: ${JSON.stringify(r.body)}`);
    }
    const v = await hub.api('GET', url(`/cron/validate?schedule=${encodeURIComponent('0 3 * * 1-5')}`));
    assert.equal(v.valid, true);
    assert.equal(new Date(v.nextRuns[0]).getHours() === 3 || new Date(v.nextRuns[0]).getUTCHours() === 3, true);
    assert.equal((await hub.api('GET', url(`/cron/validate?schedule=${encodeURIComponent('99 * * * *')}`))).valid, false);
    assert.equal((await status('DELETE', url('/cron/aaaaaaaaaaaa'))).status, 404, 'an id Tether did not write is not found');

    const viaCli = await cli(['cron', 'ls', h.hostname, '--json'], cliEnv);
    assert.equal(viaCli.code, 0, viaCli.stderr);
    assert.equal(JSON.parse(viaCli.stdout).entries[0].id, cronId);

    await hub.api('DELETE', url(`/cron/${cronId}`));
    tab = (await h.exec(['crontab', '-l'])).stdout;
    assert.equal(tab, UNTAGGED, 'only what Tether wrote is gone; the hand-written lines are exactly as they were');
  });

  test('CLI: systemd ls and proc ports with --json', async () => {
    const s = await cli(['systemd', 'ls', h.hostname, '--type', 'service', '--json'], cliEnv);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(JSON.parse(s.stdout).units.some((u: { unit: string }) => u.unit === 'tether-agent.service'));
    const p = await cli(['proc', 'ports', h.hostname, '--port', '4567', '--json'], cliEnv);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(JSON.parse(p.stdout).ports[0].port, 4567);
    const refused = await cli(['power', 'reboot', h.hostname], cliEnv);
    assert.notEqual(refused.code, 0, 'a reboot needs --yes');
  });

  test('power: status, schedule and cancel a reboot; a reboot restarts the host and its agent comes back', async () => {
    const st = await hub.api('GET', url('/power'));
    assert.ok(st.uptimeSec > 0);
    const sched = await hub.api('POST', url('/power/schedule'), { action: 'reboot', minutes: 30, message: 'test' });
    assert.equal(sched.scheduled?.action, 'reboot', JSON.stringify(sched));
    assert.ok(sched.scheduled.at > Date.now() + 29 * 60_000);
    const cancelled = await hub.api('DELETE', url('/power/schedule'));
    assert.equal(cancelled.scheduled, undefined);

    const startedBefore = (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', h.name])).stdout.trim();
    await hub.api('POST', url('/power'), { action: 'reboot' });
    await hub.waitOnline(id, false, 20_000);
    await waitFor('host container started again', async () => (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', h.name])).stdout.trim() !== startedBefore, { timeoutMs: 30_000 });
    await hub.waitOnline(id, true, 40_000);
    const started = (await run('podman', ['inspect', '-f', '{{.State.Pid}} {{.RestartCount}}', h.name])).stdout.trim().split(' ');
    assert.ok(Number(started[1]) >= 1, 'Podman restarted the container after systemd rebooted');
    assert.equal((await h.exec(['systemctl', 'is-system-running', '--wait'], { allowFailure: true, timeoutMs: 30_000 })).stdout.trim(), 'running');
  });
});
