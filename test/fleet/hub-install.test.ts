// The hub installed as a product on machines with nothing on them: the hub artifact by
// `install.sh --hub` on a fresh systemd host without Node.js, and the OCI image run as the README
// says (`docker run -p 8080:8080 -v tether:/var/lib/tether IMAGE`, with Podman). Each then puts an
// agent on another fresh host through its own one-liner, from the agents the artifact carries.
// Uses the hub artifacts scripts/prepare-tests.sh builds (scripts/package-hub.mjs) and builds the
// image (scripts/package-hub-image.sh). Needs root and test/fleet/setup.sh; fails without, never skips.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '@tether/testkit';
import { run, waitFor } from './exec.js';
import { startFleet, type Fleet, type FleetHost } from './fleet.js';

const ARTIFACTS = join(REPO, 'dist/artifacts');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const HUB_X64 = `tether-hub-${VERSION}-linux-x64`;
const HUB_ARM64 = `tether-hub-${VERSION}-linux-arm64`;
/** A second build of the hub, made by the test from the first (the version bumped, the manifest redone). */
const NEXT = `${VERSION}-next.1`;
const SNAPSHOT = 'find /opt /etc /var/lib /usr/local /run/systemd/system -xdev \\( -path /var/lib/systemd -o -path /var/lib/dpkg -o -path /etc/machine-id \\) -prune -o -print | sort; getent passwd tether; getent group tether; true';
const sh = (host: FleetHost, script: string, timeoutMs = 120_000) => host.exec(['sh', '-c', script], { allowFailure: true, timeoutMs });
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A hub over HTTP, as an operator's client sees it. */
class Remote {
  private token = '';
  constructor(readonly url: string) {}
  async health(): Promise<{ status: string; version: string; db: string }> {
    const r = await fetch(`${this.url}/api/v1/health`, { signal: AbortSignal.timeout(3000) });
    if (r.status !== 200) throw new Error(`health ${r.status}`);
    return (await r.json()) as { status: string; version: string; db: string };
  }
  async login(password: string): Promise<void> {
    this.token = (await this.api<{ token: string }>('POST', '/api/v1/auth/login', { username: 'admin', password })).token;
  }
  async api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetch(this.url + path, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status}: ${text}`);
    return JSON.parse(text) as T;
  }
  async waitOnline(id: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(`host ${id} online on ${this.url}`, async () => (await this.api<{ online: boolean }>('GET', `/api/v1/hosts/${id}`)).online, { timeoutMs });
  }
}

/** The one-liner from `hub` on a fresh host: the agent online, its id. */
async function installAgent(hub: Remote, urlFromHost: string, host: FleetHost): Promise<string> {
  const token = (await hub.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { singleUse: true })).token;
  const r = await sh(host, `curl -fsSL ${urlFromHost}/install.sh | sh -s -- --token ${token}`);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const m = /online: host ([0-9a-f-]+) at http/.exec(r.stdout);
  assert.ok(m, r.stdout);
  await hub.waitOnline(m[1]!);
  assert.match((await host.exec(['/opt/tether-agent/current/runtime/node', '--version'])).stdout, /^v24\./);
  return m[1]!;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '0.0.0.0', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('hub installed from its artifact by install.sh --hub, on a host without Node.js', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  let hubHost: FleetHost;
  let agentHost: FleetHost;
  let hub: Remote;
  let hubUrl: string;
  let pristine: string;
  let password: string;
  let agentId: string;

  before(async () => {
    const have = readdirSync(ARTIFACTS);
    for (const f of [HUB_X64, HUB_ARM64]) assert.ok(have.includes(`${f}.tar.gz`) && have.includes(`${f}.tar.gz.sha256`), `no ${f}.tar.gz in ${ARTIFACTS}: scripts/prepare-tests.sh makes it (node scripts/package-hub.mjs)`);
    // hubPort is for agents started by the fleet helper; here every agent comes from the one-liner
    fleet = await startFleet({ count: 2, hubPort: 8080, hostnamePrefix: 'hubhost', bare: true, podmanArgs: ['--restart=always'] });
    [hubHost, agentHost] = fleet.hosts as [FleetHost, FleetHost];
    for (const h of fleet.hosts) await h.exec(['rm', '-rf', '/opt/tether', '/var/lib/tether-agent']);
    pristine = (await sh(hubHost, SNAPSHOT)).stdout;
    // what an operator downloads: both tarballs, one of them damaged by one byte
    for (const f of [HUB_X64, HUB_ARM64]) for (const ext of ['.tar.gz', '.tar.gz.sha256']) await run('podman', ['cp', join(ARTIFACTS, f + ext), `${hubHost.name}:/root/${f}${ext}`], { timeoutMs: 120_000 });
    await sh(hubHost, `mkdir -p /root/bad && cp /root/${HUB_X64}.tar.gz.sha256 /root/bad/ && cp /root/${HUB_X64}.tar.gz /root/bad/ && size=$(stat -c %s /root/bad/${HUB_X64}.tar.gz) && printf '\\001' | dd of=/root/bad/${HUB_X64}.tar.gz bs=1 seek=$((size / 2)) conv=notrunc status=none`);
    hubUrl = `http://${hubHost.address}:8080`;
    hub = new Remote(hubUrl);
  });

  after(async () => {
    await fleet?.stop();
  });

  test('bad input changes nothing: agent flags, another architecture, a damaged tarball, a bad address, not an artifact', async () => {
    assert.notEqual((await sh(hubHost, 'command -v node')).code, 0, 'the host has no Node.js');
    const cases: [string, RegExp][] = [
      [`tar -xzf /root/${HUB_X64}.tar.gz -C /tmp && /tmp/${HUB_X64}/share/install.sh --hub --token abcdefgh1234`, /--token, --allow, .* are for agents, not with --hub/],
      [`sh /tmp/${HUB_X64}/share/install.sh --hub --archive /root/${HUB_ARM64}.tar.gz`, new RegExp(`${esc(HUB_ARM64)} is built for arm64; this host is x64`)],
      [`sh /tmp/${HUB_X64}/share/install.sh --hub --archive /root/bad/${HUB_X64}.tar.gz`, new RegExp(`${esc(HUB_X64)}\\.tar\\.gz is damaged or tampered with: SHA-256 [0-9a-f]{64}, its \\.sha256 says [0-9a-f]{64}; nothing was installed`)],
      [`sh /tmp/${HUB_X64}/share/install.sh --hub --listen 'every:where'`, /--listen: expected HOST:PORT such as 0\.0\.0\.0:8080, got every:where/],
      [`sh /tmp/${HUB_X64}/share/install.sh --hub --archive /root/${HUB_X64}.tar.gz.sha256`, /is not a hub artifact \(tether-hub-<version>-linux-<arch>\.tar\.gz\)/],
      // piped from somewhere, with no artifact around it
      [`cat /tmp/${HUB_X64}/share/install.sh | sh -s -- --hub`, /--hub installs a hub artifact: run share\/install\.sh inside an unpacked tether-hub-<version>-linux-<arch>, or pass --archive FILE/],
    ];
    for (const [script, want] of cases) {
      const r = await sh(hubHost, script);
      assert.notEqual(r.code, 0, `${script} succeeded`);
      assert.match(r.stderr, want, script);
    }
    await sh(hubHost, `rm -rf /tmp/${HUB_X64}`);
    assert.equal((await sh(hubHost, SNAPSHOT)).stdout, pristine, 'nothing was installed');
  });

  test('the hub installs from its unpacked artifact, runs hardened as tether, and answers from outside', async () => {
    const t0 = Date.now();
    const r = await sh(hubHost, `cd /root && tar -xzf ${HUB_X64}.tar.gz && ./${HUB_X64}/share/install.sh --hub`);
    const took = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`online: hub ${esc(VERSION)} at http://hubhost-1:8080 \\(config /etc/tether/hub\\.toml, state /var/lib/tether\\)`));
    assert.match(r.stdout, /first login: user admin, the password is in \/var\/lib\/tether\/initial-admin-password/);
    process.stdout.write(`# hub unpack + install + healthy: ${took} ms\n`);

    const show = (await hubHost.exec(['systemctl', 'show', 'tether-hub', '-p', 'User', '-p', 'NoNewPrivileges', '-p', 'ProtectSystem', '-p', 'ProtectHome', '-p', 'CapabilityBoundingSet', '-p', 'PrivateTmp', '-p', 'UnitFileState', '-p', 'MainPID'])).stdout;
    for (const want of ['User=tether', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'CapabilityBoundingSet=', 'PrivateTmp=yes', 'UnitFileState=enabled'])
      assert.ok(show.split('\n').includes(want), `${want} not in\n${show}`);
    const pid = /MainPID=(\d+)/.exec(show)![1]!;
    assert.match((await hubHost.exec(['ps', '-o', 'user:12=,args=', '-p', pid])).stdout.trim(), new RegExp(`^tether +/opt/tether-hub/${esc(VERSION)}/runtime/node .*/opt/tether-hub/${esc(VERSION)}/lib/tether\\.mjs hub --config /etc/tether/hub\\.toml$`));
    const modes = (await hubHost.exec(['stat', '-c', '%n %U %G %a', '/etc/tether/hub.toml', '/var/lib/tether', '/var/lib/tether/tether.db', '/opt/tether-hub/current/bin/tether-hub'])).stdout;
    assert.match(modes, /\/etc\/tether\/hub\.toml root tether 640/);
    assert.match(modes, /\/var\/lib\/tether tether tether 700/);
    assert.match(modes, /\/var\/lib\/tether\/tether\.db tether tether 600/);
    assert.match(modes, /tether-hub root root 755/);

    const health = await hub.health();
    assert.deepEqual([health.status, health.version, health.db], ['ok', VERSION, 'sqlite']);
    password = (await hubHost.exec(['cat', '/var/lib/tether/initial-admin-password'])).stdout.trim();
    await hub.login(password);
    const arts = await hub.api<{ artifacts: { arch: string; version: string }[] }>('GET', '/api/v1/agent-artifacts');
    assert.deepEqual(arts.artifacts.map((a) => `${a.version} ${a.arch}`).sort(), [`${VERSION} arm64`, `${VERSION} x64`], 'it serves the agents it carries');
    assert.match(await (await fetch(`${hubUrl}/`)).text(), /<div id="root">/, 'the console');
  });

  test('an agent goes on another fresh host through this hub’s one-liner', async () => {
    agentId = await installAgent(hub, hubUrl, agentHost);
  });

  test('a second run is idempotent; the hub and its state survive a reboot', async () => {
    const r = await sh(hubHost, `/root/${HUB_X64}/share/install.sh --hub`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`hub ${esc(VERSION)} is already unpacked in /opt/tether-hub/${esc(VERSION)} and intact`));
    assert.match(r.stdout, /online: hub/);
    const started = (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', hubHost.name])).stdout.trim();
    await hubHost.exec(['systemctl', 'reboot'], { allowFailure: true });
    await waitFor('hub host started again', async () => (await run('podman', ['inspect', '-f', '{{.State.StartedAt}}', hubHost.name])).stdout.trim() !== started, { timeoutMs: 40_000 });
    await waitFor('hub healthy after the reboot', () => hub.health(), { timeoutMs: 60_000 });
    await hub.login(password);
    await hub.waitOnline(agentId, 60_000);
  });

  test('an upgrade to a second build installs beside the first, keeps the data and the agents', async () => {
    const next = `tether-hub-${NEXT}-linux-x64`;
    const script = [
      `rm -rf /root/next && mkdir /root/next && cp -R /root/${HUB_X64} /root/next/${next}`,
      `cd /root/next/${next} && echo ${NEXT} > VERSION`,
      `find . -type f ! -name MANIFEST.sha256 | sed 's#^./##' | LC_ALL=C sort | xargs sha256sum > MANIFEST.sha256`,
      `cd /root/next && tar -czf ${next}.tar.gz ${next} && sha256sum ${next}.tar.gz > ${next}.tar.gz.sha256 && rm -rf /root/next/${next}`,
      `sh /root/${HUB_X64}/share/install.sh --hub --archive /root/next/${next}.tar.gz`,
    ].join(' && ');
    const r = await sh(hubHost, script, 240_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`online: hub ${esc(NEXT)} at`));
    assert.equal((await hubHost.exec(['readlink', '/opt/tether-hub/current'])).stdout.trim(), NEXT);
    assert.deepEqual((await hubHost.exec(['ls', '-A', '/opt/tether-hub'])).stdout.trim().split('\n').sort(), [VERSION, NEXT, 'current'].sort(), 'the previous version is kept beside it');
    const pid = (await hubHost.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'tether-hub'])).stdout.trim();
    assert.match((await hubHost.exec(['ps', '-o', 'args=', '-p', pid])).stdout, new RegExp(`/opt/tether-hub/${esc(NEXT)}/runtime/node`));
    await hub.login(password);
    await hub.waitOnline(agentId, 60_000);
    assert.equal((await hub.api<{ hosts: unknown[] }>('GET', '/api/v1/hosts?status=all')).hosts.length, 1);
  });

  test('--uninstall --purge leaves nothing', async () => {
    const r = await sh(hubHost, `sh /root/${HUB_X64}/share/install.sh --hub --uninstall --purge`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed the hub, its state \(database, keys\) and its user/);
    await sh(hubHost, 'rm -rf /root/bad /root/next /root/tether-hub-*');
    const was = new Set(pristine.split('\n'));
    assert.deepEqual((await sh(hubHost, SNAPSHOT)).stdout.split('\n').filter((l) => !was.has(l)), [], 'left behind');
    assert.equal((await sh(hubHost, "pgrep -f '/opt/[t]ether-hub'")).code, 1, 'no process left');
  });
});

describe('hub image: docker run -p 8080:8080 -v tether:/var/lib/tether IMAGE (with Podman)', { timeout: 600_000 }, () => {
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const container = `tether-t-hubimg-${tag}`;
  const volume = `tether-t-hubvol-${tag}`;
  let image: string;
  let port: number;
  let hub: Remote;
  let fleet: Fleet;
  let password: string;
  let agentId: string;
  const runHub = () => run('podman', ['run', '-d', '--name', container, '-p', `${port}:8080`, '-v', `${volume}:/var/lib/tether`, image], { timeoutMs: 60_000 });

  before(async () => {
    const built = await run('bash', [join(REPO, 'scripts/package-hub-image.sh')], { timeoutMs: 300_000 });
    image = built.stdout.trim().split('\n').pop()!;
    assert.equal(image, `localhost/tether-hub:${VERSION}`, built.stderr);
    port = await freePort();
    hub = new Remote(`http://127.0.0.1:${port}`);
  });

  after(async () => {
    await fleet?.stop();
    await run('podman', ['rm', '-f', '-t', '0', container], { allowFailure: true });
    await run('podman', ['volume', 'rm', '-f', volume], { allowFailure: true });
  });

  test('the image is the hub and nothing else: no shell, a user of its own, a volume for its state', async () => {
    const cfg = JSON.parse((await run('podman', ['image', 'inspect', image])).stdout)[0].Config as { User: string; ExposedPorts: object; Volumes: object; Entrypoint: string[]; Cmd: string[] };
    assert.equal(cfg.User, '10001:10001');
    assert.deepEqual(Object.keys(cfg.ExposedPorts), ['8080/tcp']);
    assert.deepEqual(Object.keys(cfg.Volumes), ['/var/lib/tether']);
    assert.deepEqual([...cfg.Entrypoint, ...cfg.Cmd], ['/opt/tether-hub/runtime/node', '/opt/tether-hub/lib/tether.mjs', 'hub']);
    const files = (await run('podman', ['run', '--rm', '--entrypoint', '/opt/tether-hub/runtime/node', image, '-e', "const fs=require('fs');console.log(JSON.stringify({sh:fs.existsSync('/bin/sh'),apt:fs.existsSync('/usr/bin/apt'),uid:process.getuid(),node:process.version}))"])).stdout.trim();
    assert.deepEqual(JSON.parse(files.split('\n').pop()!), { sh: false, apt: false, uid: 10001, node: `v${JSON.parse(readFileSync(join(REPO, 'scripts/runtime.json'), 'utf8')).node}` });
  });

  test('it runs as documented, prints the first password, and installs agents on fresh hosts', async () => {
    await runHub();
    await waitFor('the hub in the container healthy', () => hub.health(), { timeoutMs: 60_000 });
    const logs = await run('podman', ['logs', container]);
    const m = /created user "admin" with a generated password:\s+(\S+)/.exec(logs.stdout + logs.stderr);
    assert.ok(m, logs.stdout + logs.stderr);
    password = m[1]!;
    await hub.login(password);
    assert.equal((await run('podman', ['exec', container, 'tether', '--version'])).stdout.trim(), VERSION);
    fleet = await startFleet({ count: 1, hubPort: port, hostnamePrefix: 'imghost', bare: true });
    const h = fleet.hosts[0]!;
    await h.exec(['rm', '-rf', '/opt/tether', '/var/lib/tether-agent']);
    agentId = await installAgent(hub, fleet.hubUrl, h);
  });

  test('SIGTERM stops it within seconds; a new container on the same volume has everything', async () => {
    const t0 = Date.now();
    await run('podman', ['stop', '-t', '10', container]);
    const took = Date.now() - t0;
    assert.equal((await run('podman', ['inspect', '-f', '{{.State.ExitCode}}', container])).stdout.trim(), '0');
    assert.ok(took < 8000, `podman stop took ${took} ms`);
    process.stdout.write(`# hub container stop: ${took} ms\n`);
    await run('podman', ['rm', container]);
    await runHub();
    await waitFor('the new container healthy', () => hub.health(), { timeoutMs: 60_000 });
    await hub.login(password);
    await hub.waitOnline(agentId, 60_000);
    assert.equal((await hub.api<{ hosts: unknown[] }>('GET', '/api/v1/hosts?status=all')).hosts.length, 1);
    const logs = await run('podman', ['logs', container]);
    assert.doesNotMatch(logs.stdout + logs.stderr, /generated password/, 'no second admin');
  });
});
