/**
 * The agent artifact (`npm run package:agent`, scripts/package-agent.mjs): what each tarball holds
 * and with which modes, that its MANIFEST and .sha256 verify, that the same tree packages to the same
 * bytes, that the x64 agent runs on its own Node and goes online on a real hub with a working
 * terminal, and that the arm64 one runs under qemu-user. The artifacts are the ones the build made:
 * the script runs first (strictly: a missing tool fails here), which its caches make instant after a
 * build, and builds what the build skipped.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { MACHINE, elfMachine, sha256, walk, type Arch } from './artifact-files.js';
import { Proc, REPO, TERMINAL_USER_TOML, TestHub, tempDir, waitFor, writeAgentConfig } from '@tether/testkit';

const SCRIPT = join(REPO, 'scripts/package-agent.mjs');
const OUT = join(REPO, 'dist/artifacts');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NODE = (JSON.parse(readFileSync(join(REPO, 'scripts/runtime.json'), 'utf8')) as { node: string }).node;
const ARCHES = ['x64', 'arm64'] as const;
const name = (arch: Arch) => `tether-agent-${VERSION}-linux-${arch}`;
const tarball = (arch: Arch) => join(OUT, `${name(arch)}.tar.gz`);
const EXECUTABLES = ['bin/tether', 'bin/tether-agent', 'runtime/node', 'lib/node_modules/node-pty/build/Release/pty.node'];

const packageAgent = (args: string[], timeout = 600_000) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout });



const scratch = tempDir('tether-package-');
const unpacked = {} as Record<Arch, string>;
const hubs: TestHub[] = [];
const procs: Proc[] = [];

before(() => {
  const r = packageAgent([]);
  assert.equal(r.status, 0, `package-agent failed:\n${r.stdout}${r.stderr}`);
  for (const arch of ARCHES) {
    const x = spawnSync('tar', ['-xzf', tarball(arch), '-C', scratch]);
    assert.equal(x.status, 0, String(x.stderr));
    unpacked[arch] = join(scratch, name(arch));
  }
  // the terminal test's shell runs as TERMINAL_USER, who must reach the artifact's files
  chmodSync(scratch, 0o755);
});

after(async () => {
  for (const p of procs) await p.stop();
  for (const h of hubs) await h.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

test('an architecture it cannot make is refused by name', () => {
  const r = packageAgent(['--arch', 'x64,mips'], 30_000);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown architecture 'mips' \(known: x64, arm64\)/);
});

for (const arch of ARCHES) {
  test(`${arch}: one folder holding VERSION, the launchers, the stripped runtime, the bundle and node-pty; owner 0, one mtime, 0755 or 0644`, () => {
    const listing = spawnSync('tar', ['-tvzf', tarball(arch), '--numeric-owner', '--full-time'], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    assert.equal(listing.status, 0, listing.stderr);
    const epoch = Number(process.env.SOURCE_DATE_EPOCH || 1767225600);
    const when = new Date(epoch * 1000).toISOString().slice(0, 19).replace('T', ' ');
    const entries = listing.stdout.trim().split('\n').map((l) => {
      const m = /^(\S{10}) (\d+)\/(\d+)\s+\d+ (\S+ \S+) (.+)$/.exec(l);
      assert.ok(m, `unexpected tar listing line: ${l}`);
      return { mode: m[1]!, owner: `${m[2]}/${m[3]}`, time: m[4]!, path: m[5]! };
    });
    const top = `${name(arch)}/`;
    for (const e of entries) {
      assert.ok(e.path.startsWith(top), `${e.path} outside ${top}`);
      assert.equal(e.owner, '0/0', e.path);
      assert.equal(e.time, when, e.path);
      const rel = e.path.slice(top.length).replace(/\/$/, '');
      const want = e.path.endsWith('/') ? 'drwxr-xr-x' : EXECUTABLES.includes(rel) ? '-rwxr-xr-x' : '-rw-r--r--';
      assert.equal(e.mode, want, e.path);
    }
    const dir = unpacked[arch];
    assert.deepEqual(readdirSync(dir).sort(), ['MANIFEST.sha256', 'VERSION', 'bin', 'lib', 'runtime', 'share']);
    assert.equal(readFileSync(join(dir, 'VERSION'), 'utf8'), `${VERSION}\n`);
    assert.deepEqual(readdirSync(join(dir, 'bin')).sort(), ['tether', 'tether-agent']);
    assert.deepEqual(readdirSync(join(dir, 'runtime')).sort(), ['LICENSE', 'node']);
    assert.ok(existsSync(join(dir, 'share/README')));
    // the runtime and node-pty's native part are built for the artifact's architecture; the runtime stripped
    assert.equal(elfMachine(join(dir, 'runtime/node')), MACHINE[arch]);
    assert.equal(elfMachine(join(dir, 'lib/node_modules/node-pty/build/Release/pty.node')), MACHINE[arch]);
    assert.ok(statSync(join(dir, 'runtime/node')).size < 115e6, 'runtime/node is stripped (127 MB as published)');
    // every chunk of the bundle and no source map; node-pty with what it loads and nothing for Windows
    const bundle = readdirSync(join(REPO, 'packages/cli/dist/bundle')).filter((f) => f.endsWith('.mjs')).sort();
    assert.deepEqual(readdirSync(join(dir, 'lib')).filter((f) => f !== 'node_modules').sort(), bundle);
    const pty = walk(join(dir, 'lib/node_modules/node-pty')).sort();
    assert.ok(['package.json', 'lib/index.js', 'lib/unixTerminal.js', 'build/Release/pty.node'].every((f) => pty.includes(f)), pty.join(' '));
    assert.deepEqual(pty.filter((f) => /\.map$|windows|conpty|\.ts$|src\//.test(f)), []);
  });

  test(`${arch}: MANIFEST.sha256 lists every other file, sorted, and sha256sum -c passes; so does the tarball's .sha256`, () => {
    const dir = unpacked[arch];
    const manifest = readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8');
    const listed = manifest.trimEnd().split('\n').map((l) => l.slice(66));
    const files = walk(dir).filter((f) => f !== 'MANIFEST.sha256');
    assert.deepEqual(listed, [...files].sort());
    assert.deepEqual(listed, files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const check = spawnSync('sha256sum', ['-c', '--strict', 'MANIFEST.sha256'], { cwd: dir, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal(readFileSync(`${tarball(arch)}.sha256`, 'utf8'), `${sha256(tarball(arch))}  ${name(arch)}.tar.gz\n`);
    const sum = spawnSync('sha256sum', ['-c', '--strict', `${name(arch)}.tar.gz.sha256`], { cwd: OUT, encoding: 'utf8' });
    assert.equal(sum.status, 0, sum.stdout + sum.stderr);
  });
}

test('the same tree packages to the same bytes: x64 again, its tarball cache bypassed, in another folder', () => {
  // The tarball in dist/artifacts was made by an earlier run (the build's, or this file's before()),
  // at another time and from another staging folder; this one is made now.
  const out = tempDir('tether-package-again-');
  try {
    const r = packageAgent(['--arch', 'x64', '--out', out, '--force']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(sha256(join(out, `${name('x64')}.tar.gz`)), sha256(tarball('x64')));
    assert.equal(readFileSync(join(out, `${name('x64')}.tar.gz.sha256`), 'utf8'), readFileSync(`${tarball('x64')}.sha256`, 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('x64: bin/tether-agent is its own Node with the agent flags, goes online on a real hub, and opens a terminal through node-pty from lib/', async () => {
  const dir = unpacked.x64;
  const hub = await TestHub.start();
  hubs.push(hub);
  const state = tempDir('tether-agent-');
  const config = writeAgentConfig(state, { capabilities: ['metrics', 'terminal'], toml: TERMINAL_USER_TOML });
  const agent = new Proc(
    spawn(join(dir, 'bin/tether-agent'), ['--hub', hub.url, '--state', state, '--config', config, '--reconnect-cap', '1s'], {
      env: { ...process.env, TETHER_LOG_LEVEL: 'debug', TETHER_TOKEN: await hub.enrollToken(), TETHER_NODE_FLAGS: '--stack-size=900', TETHER_NODE: '/nonexistent' },
    }),
    'artifact-agent',
  );
  procs.push(agent);
  await agent.waitForLine(/"msg":"connected to hub"/, 20_000);
  const id = (JSON.parse(readFileSync(join(state, 'identity.json'), 'utf8')) as { agentId: string }).agentId;
  await hub.waitOnline(id);
  const host = await hub.api<{ agentVersion: string }>('GET', `/api/v1/hosts/${id}`);
  assert.equal(host.agentVersion, VERSION);

  // exec: the launcher's pid is node's, and that node is the artifact's (TETHER_NODE is not read)
  assert.equal(readlinkSync(`/proc/${agent.pid}/exe`), realpathSync(join(dir, 'runtime/node')));
  const argv = readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  for (const flag of ['--no-maglev', '--max-semi-space-size=1', '--stack-size=900']) assert.ok(argv.includes(flag), argv.join(' '));
  assert.equal(argv.filter((a) => /^--v8-pool-size=[1-4]$/.test(a)).length, 1, argv.join(' '));
  assert.deepEqual(argv.slice(argv.indexOf(join(realpathSync(dir), 'lib/tether.mjs')) + 1, argv.indexOf(join(realpathSync(dir), 'lib/tether.mjs')) + 3), ['agent', '--hub']);

  // the terminal's shell is the agent's child: it asks the agent's own executable for its version
  const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/api/v1/hosts/${id}/terminal?cols=80&rows=24`, { headers: { authorization: `Bearer ${hub.token}` } });
  let out = '';
  ws.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as { type: string; data?: string };
    if (m.type === 'output') out += m.data;
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  await waitFor(() => out.length > 0, 'a prompt', 15_000);
  ws.send(JSON.stringify({ type: 'input', data: `echo "pty=$((6*7))"; ${join(dir, 'runtime/node')} -p '"runtime=" + process.version'\r` }));
  await waitFor(() => /pty=42/.test(out) && /runtime=v\d/.test(out), 'the shell running the runtime', 15_000);
  assert.match(out, new RegExp(`runtime=v${NODE.replaceAll('.', '\\.')}`));
  ws.close();
  await agent.stop();
  assert.equal(agent.exitCode, 0);
  rmSync(state, { recursive: true, force: true });
});

test('x64: bin/tether is the command line on the same runtime, at the artifact version', () => {
  const r = spawnSync(join(unpacked.x64, 'bin/tether'), ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), VERSION);
});

test('arm64: under qemu-user its runtime runs `agent --help` and node-pty from lib/ spawns echo in a pty', () => {
  const qemu = ['qemu-aarch64-static', 'qemu-aarch64'].find((q) => spawnSync('sh', ['-c', `command -v ${q}`]).status === 0);
  assert.ok(qemu, 'qemu-user is missing: apt-get install qemu-user-static (scripts/prepare-tests.sh installs it)');
  const dir = unpacked.arm64;
  const node = [qemu, '-L', '/usr/aarch64-linux-gnu', join(dir, 'runtime/node')] as const;
  const help = spawnSync(node[0], [...node.slice(1), join(dir, 'lib/tether.mjs'), 'agent', '--help'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--hub/);
  const script = `
    const pty = require('node:module').createRequire(process.argv[1])('node-pty');
    const t = pty.spawn('/bin/echo', ['pty', 'on', process.arch, process.version], {});
    let out = '';
    t.onData((d) => (out += d));
    t.onExit(() => console.log(JSON.stringify(out)));`;
  const r = spawnSync(node[0], [...node.slice(1), '-e', script, join(dir, 'lib/tether.mjs')], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout) as string, new RegExp(`^pty on arm64 v${NODE.replaceAll('.', '\\.')}\\r\\n$`));
});
