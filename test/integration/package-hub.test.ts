/**
 * The hub artifact (`npm run package:hub`, scripts/package-hub.mjs): what each tarball holds, that its
 * MANIFEST and .sha256 verify, that the same tree packages to the same bytes, that the native parts
 * are built for the artifact's architecture and Node (better-sqlite3 from source, argon2 from the
 * lockfile's per-platform package), that no install-time tooling, tests, maps or type declarations
 * ride along, that the x64 hub runs on its own runtime — console, API, the agents it carries, the
 * installer — and that the arm64 hub's SQLite and argon2 work under qemu-user. The script runs first
 * (strictly), which its caches make quick after scripts/prepare-tests.sh.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MACHINE, elfMachine, sha256, walk, type Arch } from './artifact-files.js';
import { Proc, REPO, tempDir, waitFor } from '@tether/testkit';

const SCRIPT = join(REPO, 'scripts/package-hub.mjs');
const OUT = join(REPO, 'dist/artifacts');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NODE = (JSON.parse(readFileSync(join(REPO, 'scripts/runtime.json'), 'utf8')) as { node: string }).node;
const ARCHES = ['x64', 'arm64'] as const;
const name = (arch: Arch) => `tether-hub-${VERSION}-linux-${arch}`;
const tarball = (arch: Arch) => join(OUT, `${name(arch)}.tar.gz`);
const ARGON2: Record<Arch, string> = { x64: '@node-rs/argon2-linux-x64-gnu', arm64: '@node-rs/argon2-linux-arm64-gnu' };

const packageHub = (args: string[], timeout = 900_000) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout });



const scratch = tempDir('tether-package-hub-');
const unpacked = {} as Record<Arch, string>;
const procs: Proc[] = [];

before(() => {
  const r = packageHub([]);
  assert.equal(r.status, 0, `package-hub failed:\n${r.stdout}${r.stderr}`);
  for (const arch of ARCHES) {
    const x = spawnSync('tar', ['-xzf', tarball(arch), '-C', scratch]);
    assert.equal(x.status, 0, String(x.stderr));
    unpacked[arch] = join(scratch, name(arch));
  }
});

after(async () => {
  for (const p of procs) await p.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('an architecture it cannot make is refused by name', () => {
  const r = packageHub(['--arch', 'x64,sparc'], 30_000);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown architecture 'sparc' \(known: x64, arm64\)/);
});

for (const arch of ARCHES) {
  test(`${arch}: the runtime, the bundle, the hub with its dependencies and console, native parts for ${arch}, both agents; nothing a running hub does not load`, () => {
    const dir = unpacked[arch];
    assert.deepEqual(readdirSync(dir).sort(), ['MANIFEST.sha256', 'VERSION', 'artifacts', 'bin', 'lib', 'runtime', 'share']);
    assert.equal(readFileSync(join(dir, 'VERSION'), 'utf8'), `${VERSION}\n`);
    assert.deepEqual(readdirSync(join(dir, 'bin')).sort(), ['tether', 'tether-hub']);
    assert.deepEqual(readdirSync(join(dir, 'share')).sort(), ['install.sh', 'tether-hub.service']);
    const nm = join(dir, 'lib/node_modules');
    assert.equal(elfMachine(join(dir, 'runtime/node')), MACHINE[arch]);
    const natives = walk(nm).filter((f) => f.endsWith('.node')).sort();
    assert.deepEqual(natives, ['better-sqlite3/build/Release/better_sqlite3.node', `${ARGON2[arch]}/argon2.linux-${arch}-gnu.node`, 'node-pty/build/Release/pty.node'].sort());
    for (const f of natives) assert.equal(elfMachine(join(nm, f)), MACHINE[arch], f);
    // better-sqlite3 is compiled for the runtime's module ABI (Node 24: 137), not the machine's Node
    const abi = spawnSync(join(unpacked.x64, 'runtime/node'), ['-p', 'process.versions.modules'], { encoding: 'utf8' }).stdout.trim();
    const nm_ = spawnSync(arch === 'x64' ? 'nm' : 'aarch64-linux-gnu-nm', ['-D', '--defined-only', join(nm, 'better-sqlite3/build/Release/better_sqlite3.node')], { encoding: 'utf8' });
    assert.equal(nm_.status, 0, nm_.stderr);
    assert.deepEqual(nm_.stdout.match(/node_register_module_v\d+/g), [`node_register_module_v${abi}`]);
    // the agents it serves: the very bytes package-agent made, with their checksums
    for (const a of ARCHES) {
      const f = `tether-agent-${VERSION}-linux-${a}.tar.gz`;
      assert.equal(sha256(join(dir, 'artifacts', f)), sha256(join(OUT, f)), f);
      assert.equal(readFileSync(join(dir, 'artifacts', `${f}.sha256`), 'utf8'), readFileSync(join(OUT, `${f}.sha256`), 'utf8'));
    }
    // the hub, its protocol and console; the installer where the hub looks for it
    for (const f of ['@tether/hub/package.json', '@tether/hub/dist/src/index.js', '@tether/hub/packaging/install.sh', '@tether/protocol/dist/src/index.js', '@tether/web/dist/index.html', 'fastify/package.json', 'better-sqlite3/lib/index.js', 'bindings/bindings.js'])
      assert.ok(existsSync(join(nm, f)), f);
    assert.equal(readFileSync(join(nm, '@tether/hub/packaging/install.sh'), 'utf8'), readFileSync(join(REPO, 'packaging/install.sh'), 'utf8'));
    // pruned: install-time tooling, SQLite's sources, tests, maps, declarations, the workspace's compiled tests
    const files = walk(nm);
    assert.deepEqual(files.filter((f) => /^(prebuild-install|node-abi|tar-fs)\//.test(f)), [], 'install-time tooling');
    assert.deepEqual(files.filter((f) => /\.(map|d\.ts|d\.mts|d\.cts|gyp|cc|c|h)$|(^|\/)(test|tests|__tests__)\//.test(f)), []);
    assert.deepEqual(files.filter((f) => f.startsWith('better-sqlite3/') && !/^better-sqlite3\/(package\.json|LICENSE|lib\/|build\/Release\/better_sqlite3\.node)/.test(f)), []);
    assert.deepEqual(files.filter((f) => f.startsWith('@tether/hub/dist/test') || f.startsWith('@tether/protocol/dist/test')), []);
  });

  test(`${arch}: MANIFEST.sha256 lists every other file and sha256sum -c passes; so does the tarball's .sha256`, () => {
    const dir = unpacked[arch];
    const listed = readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8').trimEnd().split('\n').map((l) => l.slice(66));
    assert.deepEqual(listed, walk(dir).filter((f) => f !== 'MANIFEST.sha256').sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const check = spawnSync('sha256sum', ['-c', '--strict', '--quiet', 'MANIFEST.sha256'], { cwd: dir, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal(readFileSync(`${tarball(arch)}.sha256`, 'utf8'), `${sha256(tarball(arch))}  ${name(arch)}.tar.gz\n`);
  });
}

test('the same tree packages to the same bytes: x64 again, its tarball cache bypassed, in another folder', () => {
  const out = tempDir('tether-package-hub-again-');
  try {
    const r = packageHub(['--arch', 'x64', '--out', out, '--agents', OUT, '--force']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(sha256(join(out, `${name('x64')}.tar.gz`)), sha256(tarball('x64')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('x64: bin/tether-hub runs the hub on its own runtime: health, console, the agents it carries, the installer with its URL', async () => {
  const dir = unpacked.x64;
  const data = tempDir('tether-hub-data-');
  // none of the checkout's settings: the packaged hub finds its console, installer and agents itself
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TETHER_')));
  const child = spawn(join(dir, 'bin/tether-hub'), ['--listen', '127.0.0.1:0'], { env: { ...env, TETHER_DATA: data, TETHER_ADMIN_PASSWORD: 'packaged-hub-pass-1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const hub = new Proc(child, 'packaged-hub');
  procs.push(hub);
  const listening = JSON.parse(await hub.waitForLine(/"msg":"hub listening"/, 30_000)) as { url: string; artifacts: string };
  const url = listening.url;
  assert.equal(listening.artifacts, join(dir, 'artifacts'), 'it serves the agents it carries');
  const health = await waitFor(async () => {
    const r = await fetch(`${url}/api/v1/health`).catch(() => undefined);
    return r?.status === 200 ? ((await r.json()) as { version: string; db: string }) : undefined;
  }, 'the packaged hub healthy', 30_000);
  assert.deepEqual([health.version, health.db], [VERSION, 'sqlite']);
  const ps = spawnSync('ps', ['-o', 'args=', '-p', String(hub.pid)], { encoding: 'utf8' }).stdout;
  assert.match(ps, new RegExp(`^${join(dir, 'runtime/node').replace(/[.]/g, '\\.')} --v8-pool-size=\\d .*lib/tether\\.mjs hub --listen`));
  assert.match(await (await fetch(`${url}/`)).text(), /<div id="root">/);
  const login = (await (await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'packaged-hub-pass-1' }) })).json()) as { token: string };
  const arts = (await (await fetch(`${url}/api/v1/agent-artifacts`, { headers: { authorization: `Bearer ${login.token}` } })).json()) as { artifacts: { arch: string; version: string; sha256: string }[] };
  assert.deepEqual(arts.artifacts.map((a) => `${a.version} ${a.arch} ${a.sha256}`).sort(), ARCHES.map((a) => `${VERSION} ${a} ${sha256(join(dir, 'artifacts', `tether-agent-${VERSION}-linux-${a}.tar.gz`))}`).sort());
  const script = await (await fetch(`${url}/install.sh`)).text();
  assert.ok(script.includes(`TETHER_HUB_DEFAULT='${url}'`) && script.includes(`TETHER_VERSION_DEFAULT='${VERSION}'`));
  await hub.stop();
  assert.equal(hub.exitCode, 0);
});

test('x64: bin/tether is the whole command line on the same runtime, at the artifact version', () => {
  const r = spawnSync(join(unpacked.x64, 'bin/tether'), ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), VERSION);
});

test('arm64: under qemu-user its runtime opens SQLite through better-sqlite3 and hashes with argon2', () => {
  const qemu = ['qemu-aarch64-static', 'qemu-aarch64'].find((q) => spawnSync('sh', ['-c', `command -v ${q}`]).status === 0);
  assert.ok(qemu, 'qemu-user is missing: apt-get install qemu-user-static (scripts/prepare-tests.sh installs it)');
  const dir = unpacked.arm64;
  const script = `
    const req = require('node:module').createRequire(process.argv[1]);
    const db = new (req('better-sqlite3'))(':memory:');
    db.exec('create table t (x)'); db.prepare('insert into t values (?)').run(42);
    const argon2 = req('@node-rs/argon2');
    argon2.hash('pw').then(async (h) => console.log(JSON.stringify({ arch: process.arch, node: process.version, x: db.prepare('select x from t').get().x, ok: await argon2.verify(h, 'pw'), bad: await argon2.verify(h, 'nope') })));`;
  const r = spawnSync(qemu, ['-L', '/usr/aarch64-linux-gnu', join(dir, 'runtime/node'), '-e', script, join(dir, 'lib/node_modules/@tether/hub/package.json')], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { arch: 'arm64', node: `v${NODE}`, x: 42, ok: true, bad: false });
});
