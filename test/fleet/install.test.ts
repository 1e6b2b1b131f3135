// The one-line install on fresh systemd hosts with no Node.js: what a user pastes from the console's
// Add host page (`curl -fsSL HUB/install.sh | sh -s -- --token …`), against a real hub serving the
// agent artifacts `npm run package:agent` built (the build makes them). Needs root and
// test/fleet/setup.sh, like the other fleet tests; they fail without it, never skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, TestHub, cli, tempDir } from '@tether/testkit';
import { run, waitFor } from './exec.js';
import { startFleet, type Fleet, type FleetHost } from './fleet.js';

const ARTIFACTS = join(REPO, 'dist/artifacts');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const X64 = `tether-agent-${VERSION}-linux-x64.tar.gz`;
/** A version the test builds only to damage it. */
const TAMPERED = '0.0.1-tampered';
/** A second build of this tree, the version bumped by the test; and one of it that cannot reach the hub. */
const NEXT = `${VERSION}-next.1`;
const BROKEN = `${VERSION}-next.2`;

/** What install.sh may leave behind on a host, listed before and after. */
const SNAPSHOT = 'find /opt /etc /var/lib /usr/local /run/systemd/system -xdev \\( -path /var/lib/systemd -o -path /var/lib/dpkg -o -path /etc/machine-id \\) -prune -o -print | sort; getent passwd tether-agent; getent group tether-agent; true';

describe('one-line install on hosts without Node.js', { timeout: 600_000 }, () => {
  let hub: TestHub;
  let fleet: Fleet;
  let h: FleetHost;
  let dir: string;
  let line: (args: string) => string;
  /** the host's files before anything was installed */
  let pristine: string;
  const sh = (host: FleetHost, script: string, timeoutMs = 90_000) => host.exec(['sh', '-c', script], { allowFailure: true, timeoutMs });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tether-artifacts-'));
    const have = readdirSync(ARTIFACTS);
    assert.ok(have.includes(X64) && have.includes(`${X64}.sha256`), `no ${X64} in ${ARTIFACTS}: the build makes it (npm run package:agent)`);
    for (const f of have.filter((f) => f.startsWith(`tether-agent-${VERSION}-`))) copyFileSync(join(ARTIFACTS, f), join(dir, f));
    // A build whose bytes changed after its checksum was recorded: one byte in the middle.
    const bad = `tether-agent-${TAMPERED}-linux-x64.tar.gz`;
    const bytes = readFileSync(join(ARTIFACTS, X64));
    writeFileSync(join(dir, `${bad}.sha256`), readFileSync(join(ARTIFACTS, `${X64}.sha256`), 'utf8').replace(X64, bad));
    bytes[bytes.length >> 1]! ^= 0x01;
    writeFileSync(join(dir, bad), bytes);

    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '2s', env: { TETHER_ARTIFACTS_DIR: dir } });
    fleet = await startFleet({ count: 1, hubPort: hub.port, hostnamePrefix: 'fresh', bare: true, podmanArgs: ['--restart=always'] });
    h = fleet.hosts[0]!;
    // The image keeps these for the other tests' mounts; a fresh server has neither.
    await h.exec(['rm', '-rf', '/opt/tether', '/var/lib/tether-agent']);
    line = (args) => `curl -fsSL ${fleet.hubUrl}/install.sh | sh -s -- ${args}`;
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('bad input changes nothing: no token, wrong token, a hub that is down, an unknown architecture, a tampered build', async () => {
    assert.notEqual((await sh(h, 'command -v node')).code, 0, 'the host has no Node.js');
    const before = (await sh(h, SNAPSHOT)).stdout;
    pristine = before;
    const token = await hub.enrollToken();
    const cases: [string, RegExp][] = [
      [line(''), /--token is required to enroll this host/],
      [line('--token not-a-real-token-0000'), /the hub refused the token: unknown or revoked enrollment token/],
      [line(`--token ${token} --allow metrics,rootkit`), /unknown capability "rootkit" \(known: metrics,exec,files/],
      [line(`--token ${token} --cpu lots`), /--cpu: expected a share such as 20%/],
      [line(`--token ${token} --allow metrics --file-root /srv`), /--file-root needs the files capability/],
      [`curl -fsSL ${fleet.hubUrl}/install.sh > /tmp/i.sh && sh /tmp/i.sh --url http://127.0.0.1:9 --token ${token}`, /cannot reach the hub at http:\/\/127\.0\.0\.1:9/],
      // uname as an s390x machine would answer
      [`mkdir -p /tmp/shim && printf '#!/bin/sh\\necho s390x\\n' > /tmp/shim/uname && chmod +x /tmp/shim/uname && curl -fsSL ${fleet.hubUrl}/install.sh | PATH=/tmp/shim:$PATH sh -s -- --token ${token}`, /unsupported architecture s390x: Tether agents are built for x86_64 \(x64\) and aarch64 \(arm64\)/],
      [line(`--token ${token} --version 9.9.9`), /the hub holds no agent 9\.9\.9 for x64/],
      // The hub checks what it serves against the .sha256 written when it was built; install.sh checks again what arrives.
      [line(`--token ${token} --version ${TAMPERED}`), /the hub refuses tether-agent-0\.0\.1-tampered-linux-x64\.tar\.gz: .* is damaged or tampered with: its bytes hash to SHA-256 [0-9a-f]{64}, its \.sha256 file \(written when it was built\) says [0-9a-f]{64}; this hub does not serve it; nothing was installed/],
    ];
    for (const [script, want] of cases) {
      const r = await sh(h, script);
      assert.notEqual(r.code, 0, `${script} succeeded`);
      assert.match(r.stderr, want, script);
    }
    await sh(h, 'rm -rf /tmp/shim /tmp/i.sh');
    assert.equal((await sh(h, SNAPSHOT)).stdout, before, 'nothing was installed');
    assert.equal((await hub.hosts('?status=all')).hosts.length, 0);
  });

  let hostId: string;
  let mainPid: string;
  test('the one-liner brings the host online, as tether-agent under the hardened unit, with its limits', async () => {
    const token = await hub.enrollToken({ singleUse: true });
    const t0 = Date.now();
    const r = await sh(h, line(`--token ${token} --cpu 20% --memory 128M --io-write 20M --auto-update`));
    const took = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const m = /online: host ([0-9a-f-]+) at http/.exec(r.stdout);
    assert.ok(m, r.stdout);
    hostId = m[1]!;
    await hub.waitOnline(hostId, true);
    // Download, checks, install and online, on loopback-like bridge networking: the bound is 10 s.
    assert.ok(took < 20_000, `install took ${took} ms`);
    process.stdout.write(`# install to online: ${took} ms\n`);

    const show = (await h.exec(['systemctl', 'show', 'tether-agent', '-p', 'User', '-p', 'CPUQuotaPerSecUSec', '-p', 'MemoryMax', '-p', 'IOWriteBandwidthMax', '-p', 'NoNewPrivileges', '-p', 'ProtectSystem', '-p', 'CapabilityBoundingSet', '-p', 'MainPID', '-p', 'UnitFileState'])).stdout;
    for (const want of ['User=tether-agent', 'CPUQuotaPerSecUSec=200ms', 'MemoryMax=134217728', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=', 'UnitFileState=enabled'])
      assert.ok(show.split('\n').includes(want), `${want} not in\n${show}`);
    assert.match(show, /IOWriteBandwidthMax=\/var\/lib\/tether-agent 20000000|IOWriteBandwidthMax=\S+ 20971520/);
    mainPid = /MainPID=(\d+)/.exec(show)![1]!;
    const ps = (await h.exec(['ps', '-o', 'user:20=,args=', '-p', mainPid])).stdout.trim();
    assert.match(ps, new RegExp(`^tether-agent +/opt/tether-agent/${VERSION.replace(/\./g, '\\.')}/runtime/node .*/opt/tether-agent/${VERSION.replace(/\./g, '\\.')}/lib/tether\\.mjs agent --config /etc/tether/agent\\.toml`));
    assert.match((await h.exec(['/opt/tether-agent/current/runtime/node', '--version'])).stdout, /^v24\./);
    const modes = (await h.exec(['stat', '-c', '%n %U %a', '/etc/tether/agent.toml', '/var/lib/tether-agent', '/opt/tether-agent/current/bin/tether-agent'])).stdout;
    assert.match(modes, /\/etc\/tether\/agent\.toml root 644/);
    assert.match(modes, /\/var\/lib\/tether-agent tether-agent 700/);
    assert.match(modes, /tether-agent root 755/);
    assert.equal((await sh(h, 'test -e /var/lib/tether-agent/enroll.token')).code, 1, 'the token file goes once enrolled');
    assert.ok(!(await h.exec(['cat', '/etc/tether/agent.toml'])).stdout.includes(token), 'the world-readable config holds no token');
  });

  test('a second run is idempotent: same host, same agent, a clear word about the token', async () => {
    const r = await sh(h, line(`--token ${await hub.enrollToken()} --cpu 20% --memory 128M --io-write 20M --auto-update`));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already unpacked in \/opt\/tether-agent\/.* and intact/);
    assert.match(r.stdout, new RegExp(`already enrolled as ${hostId}: the token is not used`));
    assert.match(r.stdout, new RegExp(`online: host ${hostId}`));
    assert.equal((await hub.hosts('?status=all')).hosts.length, 1);
  });

  test('the unit survives a reboot', async () => {
    const started = (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', h.name])).stdout.trim();
    await h.exec(['systemctl', 'reboot'], { allowFailure: true });
    await waitFor('host started again', async () => (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', h.name])).stdout.trim() !== started, { timeoutMs: 40_000 });
    await hub.waitOnline(hostId, true, 40_000);
    assert.equal((await h.exec(['systemctl', 'is-enabled', 'tether-agent'])).stdout.trim(), 'enabled');
  });

  test('a tampered build is refused and the running agent keeps running', async () => {
    const pid = (await h.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'tether-agent'])).stdout.trim();
    const r = await sh(h, line(`--version ${TAMPERED}`));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is damaged or tampered with/);
    assert.equal((await h.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'tether-agent'])).stdout.trim(), pid);
    assert.equal((await h.exec(['readlink', '/opt/tether-agent/current'])).stdout.trim(), VERSION);
    assert.equal((await sh(h, `ls -A /opt/tether-agent`)).stdout.trim().split('\n').sort().join(' '), ['current', VERSION].sort().join(' '));
    await hub.waitOnline(hostId, true);
  });

  let cliEnv: NodeJS.ProcessEnv;
  test('an upgrade to a second build (the version bumped by this test) succeeds', async () => {
    const built = await run('node', [join(REPO, 'scripts/package-agent.mjs'), '--arch', 'x64', '--version', NEXT, '--out', dir], { timeoutMs: 300_000 });
    assert.ok(readdirSync(dir).includes(`tether-agent-${NEXT}-linux-x64.tar.gz`), built.stdout + built.stderr);
    cliEnv = await hub.cliEnv(tempDir('tether-cli-'));
    const t0 = Date.now();
    const r = await cli(['agent', 'upgrade', '-t', hostId, '--version', NEXT], cliEnv, undefined, 240_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /fresh-1\s+upgraded/);
    process.stdout.write(`# upgrade to ${NEXT}: ${Date.now() - t0} ms\n`);
    assert.equal((await hub.api('GET', `/api/v1/hosts/${hostId}`)).agentVersion, NEXT);
    assert.equal((await h.exec(['readlink', '/opt/tether-agent/current'])).stdout.trim(), NEXT);
    const pid = (await h.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'tether-agent'])).stdout.trim();
    assert.match((await h.exec(['ps', '-o', 'args=', '-p', pid])).stdout, new RegExp(`/opt/tether-agent/${NEXT.replace(/\./g, '\\.')}/runtime/node`));
    await waitFor('the trial confirmed', async () => /"state":"ok"/.test((await h.exec(['cat', '/opt/tether-agent/update.json'])).stdout), { timeoutMs: 20_000 });
  });

  test('an upgrade to a build that cannot reach the hub is rolled back within its 60 s trial', async () => {
    // The second build again, as another version whose launcher points the agent at a port nobody serves.
    const work = mkdtempSync(join(tmpdir(), 'tether-broken-'));
    const from = `tether-agent-${NEXT}-linux-x64`;
    const to = `tether-agent-${BROKEN}-linux-x64`;
    const script = [
      `tar -xzf ${join(dir, from + '.tar.gz')} -C ${work}`,
      `mv ${work}/${from} ${work}/${to}`,
      `cd ${work}/${to}`,
      `echo ${BROKEN} > VERSION`,
      `sed -i '/^set -e$/a export TETHER_HUB=http://127.0.0.1:9' bin/tether-agent`,
      `grep -q 127.0.0.1:9 bin/tether-agent`,
      `find . -type f ! -name MANIFEST.sha256 | sed 's#^./##' | LC_ALL=C sort | xargs sha256sum > MANIFEST.sha256`,
      `cd ${work} && tar -czf ${join(dir, to + '.tar.gz')} ${to}`,
      `cd ${dir} && sha256sum ${to}.tar.gz > ${to}.tar.gz.sha256`,
    ].join(' && ');
    await run('sh', ['-c', script]);
    const t0 = Date.now();
    const r = await cli(['agent', 'upgrade', '-t', hostId, '--version', BROKEN], cliEnv, undefined, 240_000);
    const took = Date.now() - t0;
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`rolled back: the agent came back as ${NEXT.replace(/\./g, '\\.')}, not ${BROKEN.replace(/\./g, '\\.')}`));
    process.stdout.write(`# broken upgrade rolled back after ${took} ms\n`);
    assert.ok(took < 120_000, `rolled back after ${took} ms`);
    assert.equal((await hub.api('GET', `/api/v1/hosts/${hostId}`)).agentVersion, NEXT);
    assert.equal((await h.exec(['readlink', '/opt/tether-agent/current'])).stdout.trim(), NEXT);
    assert.match((await h.exec(['cat', '/opt/tether-agent/update.json'])).stdout, /"state":"rolled-back".*did not reach the hub within 60 s/);
  });

  test('an upgrade whose hub restarts while the agent restarts into it still ends by the version the agent comes back as', async () => {
    // back from NEXT to the first build: installed (the agent's result recorded), then the hub goes
    // away and comes back before, or while, the agent reconnects as the version it installed
    const r = await cli(['agent', 'upgrade', '-t', hostId, '--version', VERSION, '--detach'], cliEnv, undefined, 60_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const jobId = r.stdout.trim();
    type JobView = { job: { state: string }; tasks: { state: string; exitCode: number | null; stdout: string | null; error: string | null }[] };
    let seen = '';
    const installed = await waitFor('the agent’s "installed" result recorded', async () => {
      const j = await hub.api<JobView>('GET', `/api/v1/jobs/${jobId}`);
      seen = JSON.stringify(j.tasks[0]);
      return /^installed /m.test(j.tasks[0]?.stdout ?? '') ? j : undefined;
    }, { timeoutMs: 120_000, intervalMs: 100 }).catch((err: Error) => {
      throw new Error(`${err.message}; the task: ${seen}`);
    });
    assert.equal(installed.tasks[0]!.state, 'running', 'still waiting for the agent to come back when the hub stops');
    await hub.restart();
    const done = await waitFor('the upgrade job finished', async () => {
      const j = await hub.api<JobView>('GET', `/api/v1/jobs/${jobId}`);
      return j.tasks[0]?.state === 'done' ? j : undefined;
    }, { timeoutMs: 120_000 });
    const t = done.tasks[0]!;
    assert.equal(t.exitCode, 0, `${t.error} ${t.stdout}`);
    assert.match(t.stdout ?? '', new RegExp(`the agent is back as ${VERSION.replace(/\./g, '\\.')}`));
    assert.equal((await hub.api('GET', `/api/v1/hosts/${hostId}`)).agentVersion, VERSION);
    cliEnv = await hub.cliEnv(tempDir('tether-cli-'));
  });

  test('--uninstall --purge leaves nothing', async () => {
    const r = await sh(h, line('--uninstall --purge'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed the agent, its state and its user/);
    await hub.waitOnline(hostId, false, 20_000);
    const left = (await sh(h, SNAPSHOT)).stdout.split('\n');
    const was = new Set(pristine.split('\n'));
    assert.deepEqual(left.filter((l) => !was.has(l)), [], 'left behind');
    assert.equal((await sh(h, "pgrep -f '/opt/[t]ether-agent'")).code, 1, 'no process left');
  });
});
