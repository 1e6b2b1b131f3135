#!/usr/bin/env node
// The hub artifact: one tarball per architecture that runs a hub (API, console, the one-line install
// of agents) on a bare Linux host (glibc) with its own Node runtime, the same one the agent ships.
//
//   node scripts/package-hub.mjs [--arch x64,arm64] [--version V] [--out DIR] [--force]
//   (or TETHER_PACKAGE_ARCH, TETHER_PACKAGE_VERSION, TETHER_PACKAGE_OUT; `npm run package:hub`)
//
// writes DIR (default dist/artifacts) /tether-hub-<version>-linux-<arch>.tar.gz and its .sha256. The
// tarball holds one folder, tether-hub-<version>-linux-<arch>/:
//
//   VERSION, MANIFEST.sha256     as in the agent artifact (scripts/package-agent.mjs)
//   bin/tether-hub               sh launcher: runtime/node + flags + lib/tether.mjs hub "$@"
//   bin/tether                   sh launcher: the whole command line (hub, agent, start, the client)
//   runtime/                     the pinned Node runtime (scripts/runtime.json), stripped
//   lib/tether.mjs, lib/*.mjs    the bundled command, as in the agent artifact
//   lib/node_modules/@tether/hub, @tether/protocol   their compiled JavaScript (no tests, maps, types)
//   lib/node_modules/@tether/web/dist                the console
//   lib/node_modules/…           the hub's production dependencies, copied from the lockfile's tree:
//                                what @tether/hub's dependencies reach, without install-time tooling,
//                                type declarations, source maps, docs or tests
//   lib/node_modules/node-pty    for the local agent of `tether start`
//   artifacts/                   both architectures' agent artifacts of the same version: the hub
//                                serves them to `curl HUB/install.sh | sh` out of the box
//   share/install.sh             the installer (`share/install.sh --hub` installs this very folder)
//
// Native parts, per architecture: better-sqlite3 is compiled from its own sources (the SQLite
// amalgamation it ships) against the runtime's headers (it uses Node's C++ API, so the build that
// `npm ci` made for the machine's Node cannot serve Node 24), with Debian's cross compiler for a
// foreign architecture; @node-rs/argon2 is N-API, and its per-platform package comes from the
// registry, checked against the integrity in package-lock.json. node-pty as in the agent artifact.
// Before a tarball is written, the staged folder is run on its own runtime (qemu-user for a foreign
// one): the version, `hub --help`, an SQLite query through better-sqlite3 and an argon2 hash.
//
// Reproducible as the agent artifact is (same tar and gzip settings); cached the same way: the native
// builds under .cache/, and a tarball rebuilt only when the key of its inputs changed
// (DIR/.package-hub.json). Runs scripts/package-agent.mjs first for the agents it carries, into
// --agents DIR (default: --out's).
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ARCHES, Failure, MissingTool, binutilsPackage, bundleFiles, checkTar, copy, crossPrefix, ensurePty, ensureRuntime, fail, fileSha256, isHost, log, mb, nodeGyp,
  packagingOptions, ptyDir, ptyRuntimeFiles, run, runScript, runnerFor, runtimeSpec, shown, stampVersion, tarball, tool, walk, walkDirs,
} from './package-agent.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const self = fileURLToPath(import.meta.url);
const agentScript = join(root, 'scripts/package-agent.mjs');
// What the better-sqlite3 build runs; part of its cache key.
const SQLITE_RECIPE = 'node-gyp rebuild --release --arch=<arch> --nodedir=<runtime>; CC/CXX/LINK/AR=<triple>-tools; strip --strip-unneeded; v1';
// Packages in the hub's tree needed only to install it, never loaded by a running hub: better-sqlite3
// downloads a prebuilt binary with prebuild-install (this script compiles it instead).
const INSTALL_ONLY = new Set(['prebuild-install']);
// Folders and files in a dependency that no running hub reads.
const PRUNE_DIRS = new Set(['test', 'tests', '__tests__', '.github', 'docs', 'example', 'examples', 'benchmark', 'benchmarks', 'coverage', '.vscode']);
const PRUNE_FILE = /(\.d\.[cm]?ts|\.map|\.md|\.markdown|(?<!\.d)\.[cm]?tsx?|\.gyp|\.gypi|\.cc|\.c|\.h|\.o|\.tsbuildinfo)$/i;

function options() {
  const o = packagingOptions('usage: node scripts/package-hub.mjs [--arch x64,arm64] [--version V] [--out DIR] [--agents DIR] [--force]', { agents: { type: 'string' } });
  return { ...o, agents: o.values.agents ? resolve(o.values.agents) : o.out };
}

// ---------------------------------------------------------------- the hub's tree

const lockfile = () => JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));

/** Node's resolution of a package name from a folder: the nearest node_modules/<name> upwards. */
function resolvePackage(name, fromDir) {
  for (let d = fromDir; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (dirname(d) === d) return undefined;
  }
}

/** Whether a lockfile entry's os/cpu/libc fields admit a glibc Linux on `arch` (no fields: any). */
function fitsPlatform(entry, arch) {
  if (entry.os && !entry.os.includes('linux')) return false;
  if (entry.cpu && !entry.cpu.includes(arch)) return false;
  if (entry.libc && !entry.libc.includes('glibc')) return false;
  return true;
}

/**
 * The packages a running hub loads, for `arch`: [{ name, dest (under lib/node_modules), src (a folder
 * here) or fetch ({ name, version, integrity }) }]. Walks dependencies and optional dependencies
 * from packages/hub as Node resolves them in this checkout (so the layout, nested copies included,
 * is the lockfile's). An optional dependency built for another platform is swapped for the one the
 * lockfile lists for `arch`, fetched from the registry when this machine has not installed it.
 */
function hubTree(arch) {
  const lock = lockfile().packages;
  const out = new Map();
  const nm = join(root, 'node_modules');
  const destOf = (real) => {
    const r = relative(root, real);
    if (r.startsWith(`packages${sep}`)) return join('@tether', r.slice('packages/'.length));
    if (r.startsWith(`node_modules${sep}`)) return r.slice('node_modules/'.length);
    return fail(`${real}: a package outside the checkout's node_modules`);
  };
  const visit = (dir) => {
    const real = realpathSync(dir);
    if (out.has(real)) return;
    const pkg = readJson(join(real, 'package.json'));
    out.set(real, { name: pkg.name, dest: destOf(real), src: real, workspace: !relative(root, real).startsWith('node_modules') });
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      if (INSTALL_ONLY.has(name)) continue;
      const p = resolvePackage(name, real) ?? fail(`${pkg.name} depends on ${name}, which is not installed: npm ci`);
      visit(p);
    }
    for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
      const entry = lock[`node_modules/${name}`];
      if (!entry) continue; // an optional dependency the lockfile does not hold (pg-native): not part of the hub
      if (!fitsPlatform(entry, arch)) continue;
      const here = resolvePackage(name, real);
      if (here && (!entry.cpu || isHost(arch))) visit(here);
      else if (!out.has(`fetch:${name}`)) out.set(`fetch:${name}`, { name, dest: name, fetch: { name, version: entry.version, integrity: entry.integrity } });
    }
  };
  visit(join(root, 'packages/hub'));
  if (!existsSync(nm)) fail('node_modules not found: npm ci');
  return [...out.values()].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
}

/** A registry package (checked against the lockfile's integrity), unpacked under .cache/npm/<name>-<version>/. */
function fetchPackage({ name, version, integrity }) {
  const cache = join(root, '.cache/npm');
  const dir = join(cache, `${name.replace('/', '+')}-${version}`);
  const done = join(dir, '.complete');
  if (existsSync(done) && readFileSync(done, 'utf8') === `${integrity}\n`) return join(dir, 'package');
  mkdirSync(cache, { recursive: true });
  log(`fetching ${name}@${version} (npm pack)`);
  const packed = JSON.parse(run('npm', ['pack', `${name}@${version}`, '--json', '--silent', '--pack-destination', cache], { cwd: cache }));
  const tgz = join(cache, packed[0].filename);
  try {
    const actual = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (actual !== integrity) fail(`${name}@${version}: integrity mismatch: package-lock.json has ${integrity}, the file hashes to ${actual}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    run('tar', ['-xzf', tgz, '-C', dir, '--no-same-owner']);
    writeFileSync(done, `${integrity}\n`);
  } finally {
    rmSync(tgz, { force: true });
  }
  return join(dir, 'package');
}

/** The files of a dependency the hub loads: everything but nested node_modules, PRUNE_* and a native package's build. */
function packageFiles(dir, workspace) {
  if (workspace) {
    // @tether/*: package.json and the compiled sources, not the compiled tests
    const files = ['package.json'];
    for (const f of walk(join(dir, 'dist/src'))) if (f.endsWith('.js')) files.push(join('dist/src', f));
    return files;
  }
  const out = [];
  // a native package built from source here (better-sqlite3): not its sources, nor what `npm ci` built
  // for the machine's Node; its binary is added built for the runtime's
  const native = existsSync(join(dir, 'binding.gyp'));
  const rec = (d, rel) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        if (e.name === 'node_modules' || PRUNE_DIRS.has(e.name)) continue;
        if (native && !rel && ['build', 'src', 'deps'].includes(e.name)) continue;
        rec(join(d, e.name), r);
      } else if (e.isFile() && !PRUNE_FILE.test(e.name)) out.push(r);
    }
  };
  rec(dir, '');
  return out.sort();
}

// ---------------------------------------------------------------- better-sqlite3

const sqliteDir = () => join(root, 'node_modules/better-sqlite3');

function sqliteSourceKey(arch, runtimeVersion) {
  const h = createHash('sha256').update(`${SQLITE_RECIPE}\n${arch}\n${runtimeVersion}\n`);
  const dir = sqliteDir();
  for (const f of ['package.json', 'binding.gyp', ...walk(join(dir, 'src')).map((f) => `src/${f}`), ...walk(join(dir, 'deps')).map((f) => `deps/${f}`)]) h.update(`${f}\n`).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

/** run() without blocking: the architectures' SQLite builds (one compiler process each, ~1.5 min) run side by side. */
function runAsync(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => reject(new Failure(`${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Failure(`${[cmd, ...args].join(' ')} exited with ${code ?? signal}:\n${out.slice(-4000)}`.trimEnd()))));
  });
}

/** better_sqlite3.node for `arch`, compiled against the runtime's headers (cached by its inputs). */
async function ensureSqlite(arch, runtimeDir) {
  const key = sqliteSourceKey(arch, runtimeSpec().node).slice(0, 16);
  const cache = join(root, '.cache/better-sqlite3');
  const out = join(cache, `better_sqlite3-${arch}-${key}.node`);
  if (existsSync(out)) return out;
  const p = crossPrefix(arch);
  const triple = ARCHES[arch].triple.replaceAll('_', '-');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package_config_node_gyp)_/i.test(k)));
  const gxx = tool(`${p}g++`, isHost(arch) ? 'g++' : `g++-${triple}`, `to build better-sqlite3 for ${arch}`);
  tool('make', 'make', 'to build better-sqlite3');
  tool('python3', 'python3', 'node-gyp runs on it');
  const strip = tool(`${p}strip`, binutilsPackage(arch), 'to strip better-sqlite3');
  if (p) {
    if (!existsSync(`/usr/${ARCHES[arch].triple}/include/stdio.h`)) fail(`/usr/${ARCHES[arch].triple}/include not found (${arch} C library headers): apt-get install libc6-dev-${ARCHES[arch].deb}-cross`, MissingTool);
    Object.assign(env, { CC: tool(`${p}gcc`, `gcc-${triple}`, 'to build better-sqlite3'), CXX: gxx, LINK: gxx, AR: tool(`${p}ar`, binutilsPackage(arch), 'to build better-sqlite3') });
  }
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, '.build-'));
  const t0 = performance.now();
  log(`compiling better-sqlite3 (SQLite included) for ${arch} against Node ${runtimeSpec().node}: about 1.5 min`);
  try {
    const src = join(tmp, 'better-sqlite3');
    for (const f of ['package.json', 'binding.gyp', 'src', 'deps']) cpSync(join(sqliteDir(), f), join(src, f), { recursive: true });
    await runAsync(process.execPath, [nodeGyp(), 'rebuild', '--release', `--arch=${arch}`, `--nodedir=${runtimeDir}`, '--silent'], { cwd: src, env });
    run(strip, ['--strip-unneeded', '-o', join(tmp, 'out.node'), join(src, 'build/Release/better_sqlite3.node')]);
    copyFileSync(join(tmp, 'out.node'), out);
    for (const f of readdirSync(cache)) if (f.startsWith(`better_sqlite3-${arch}-`) && join(cache, f) !== out) rmSync(join(cache, f)); // older inputs'
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`better-sqlite3 built for ${arch} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return out;
}

// ---------------------------------------------------------------- the folder

const agentArtifactName = (version, arch) => `tether-agent-${version}-linux-${arch}.tar.gz`;

/** The key of everything that goes into one hub tarball (the tree's files by content). */
function artifactKey(arch, o, tree) {
  const rt = runtimeSpec();
  const h = createHash('sha256');
  const add = (name, data) => h.update(`${name}\0${data.length}\0`).update(data);
  add('script', readFileSync(self));
  add('agent-script', readFileSync(agentScript));
  add('version', o.version);
  add('arch', arch);
  add('epoch', String(o.epoch));
  add('runtime', `${rt.node} ${rt.integrity?.[arch]}`);
  add('sqlite', sqliteSourceKey(arch, rt.node));
  for (const dir of ['packaging/hub', 'packaging/install.sh', 'packages/web/dist']) {
    const abs = join(root, dir);
    for (const f of statSync(abs).isDirectory() ? walk(abs) : ['']) add(`${dir}/${f} ${statSync(join(abs, f)).mode & 0o111 ? 'x' : '-'}`, readFileSync(join(abs, f)));
  }
  for (const f of bundleFiles()) add(`lib/${basename(f)}`, readFileSync(f));
  for (const p of tree) {
    if (p.fetch) add(`fetch/${p.name}`, `${p.fetch.version} ${p.fetch.integrity}`);
    else for (const f of packageFiles(p.src, p.workspace)) add(`nm/${p.dest}/${f}`, readFileSync(join(p.src, f)));
  }
  for (const a of Object.keys(ARCHES)) add(`agent/${a}`, readFileSync(`${join(o.agents, agentArtifactName(o.version, a))}.sha256`));
  return h.digest('hex');
}

function stage(top, arch, o, tree, runtimeDir, ptyNode, sqliteNode) {
  const pack = join(root, 'packaging/hub');
  for (const f of walk(pack)) copy(join(pack, f), join(top, f), statSync(join(pack, f)).mode & 0o111 ? 0o755 : 0o644);
  writeFileSync(join(top, 'VERSION'), `${o.version}\n`, { mode: 0o644 });
  copy(join(runtimeDir, 'node'), join(top, 'runtime/node'), 0o755);
  copy(join(runtimeDir, 'LICENSE'), join(top, 'runtime/LICENSE'), 0o644);
  for (const f of bundleFiles()) copy(f, join(top, 'lib', basename(f)), 0o644);
  stampVersion(join(top, 'lib'), o.version);
  const nm = join(top, 'lib/node_modules');
  for (const p of tree) {
    const src = p.fetch ? fetchPackage(p.fetch) : p.src;
    for (const f of packageFiles(src, p.workspace)) copy(join(src, f), join(nm, p.dest, f), /\.node$/.test(f) ? 0o755 : 0o644);
  }
  // The hub says its version (GET /api/v1/version, the console's footer) from @tether/protocol's constant.
  const proto = join(nm, '@tether/protocol/dist/src');
  const re = /\bexport const TETHER_VERSION = '[^']*';/;
  const hits = walk(proto).filter((f) => re.test(readFileSync(join(proto, f), 'utf8')));
  if (hits.length !== 1) fail(`@tether/protocol should define TETHER_VERSION once, found ${hits.length}`);
  writeFileSync(join(proto, hits[0]), readFileSync(join(proto, hits[0]), 'utf8').replace(re, `export const TETHER_VERSION = ${JSON.stringify(o.version)};`));
  copy(sqliteNode, join(nm, 'better-sqlite3/build/Release/better_sqlite3.node'), 0o755);
  const web = join(root, 'packages/web/dist');
  if (!existsSync(join(web, 'index.html'))) fail('packages/web/dist/index.html not found: build first (npm run build)');
  for (const f of walk(web)) copy(join(web, f), join(nm, '@tether/web/dist', f), 0o644);
  copy(join(root, 'packaging/install.sh'), join(nm, '@tether/hub/packaging/install.sh'), 0o644);
  copy(join(root, 'packaging/install.sh'), join(top, 'share/install.sh'), 0o755);
  const pty = join(nm, 'node-pty');
  for (const f of ptyRuntimeFiles()) copy(join(ptyDir(), f), join(pty, f), 0o644);
  copy(ptyNode, join(pty, 'build/Release/pty.node'), 0o755);
  for (const a of Object.keys(ARCHES)) {
    const name = agentArtifactName(o.version, a);
    copy(join(o.agents, name), join(top, 'artifacts', name), 0o644);
    copy(join(o.agents, `${name}.sha256`), join(top, 'artifacts', `${name}.sha256`), 0o644);
  }
  const files = walk(top);
  writeFileSync(join(top, 'MANIFEST.sha256'), files.map((f) => `${fileSha256(join(top, f))}  ${f}\n`).join(''), { mode: 0o644 });
  for (const d of [top, ...walkDirs(top)]) chmodSync(d, 0o755);
  return files.reduce((n, f) => n + statSync(join(top, f)).size, 0);
}

/** The staged folder runs on its own runtime: its version, `hub --help`, SQLite and argon2 as the hub loads them. */
function smoke(top, arch, o) {
  const runner = runnerFor(arch);
  const node = join(top, 'runtime/node');
  const exe = runner[0] ?? node;
  const pre = runner[0] ? [...runner.slice(1), node] : [];
  const said = run(exe, [...pre, join(top, 'lib/tether.mjs'), '--version'], { timeout: 120_000 }).trim();
  if (said !== o.version) fail(`${arch}: \`tether --version\` says ${said}, the artifact is ${o.version}`);
  const help = run(exe, [...pre, join(top, 'lib/tether.mjs'), 'hub', '--help'], { timeout: 120_000 });
  if (!/--listen/.test(help)) fail(`${arch}: \`tether hub --help\` on the packaged runtime printed no --listen:\n${help}`);
  const script = `
    const req = require('node:module').createRequire(process.argv[1]);
    const Database = req('better-sqlite3');
    const db = new Database(':memory:');
    const sqlite = db.prepare('select sqlite_version() as v').get().v;
    req('@node-rs/argon2').hash('tether').then(async (h) => {
      const ok = await req('@node-rs/argon2').verify(h, 'tether');
      console.log(JSON.stringify({ version: process.version, arch: process.arch, sqlite, argon2: ok }));
    });`;
  const r = JSON.parse(run(exe, [...pre, '-e', script, join(top, 'lib/node_modules/@tether/hub/package.json')], { timeout: 120_000 }).trim().split('\n').pop());
  if (r.version !== `v${runtimeSpec().node}` || r.arch !== arch || !/^3\.\d+\.\d+$/.test(r.sqlite) || r.argon2 !== true) fail(`${arch}: the hub's native modules on the packaged runtime: got ${JSON.stringify(r)}`);
  return r;
}

// ---------------------------------------------------------------- main

async function main() {
  const o = options();
  mkdirSync(o.out, { recursive: true });
  // the agents it carries, both architectures, same version and output folder (cached there)
  const agents = spawnSync(process.execPath, [agentScript, '--arch', Object.keys(ARCHES).join(','), '--version', o.version, '--out', o.agents], { stdio: 'inherit' });
  if (agents.status !== 0) fail('scripts/package-agent.mjs failed: the hub artifact carries both agent artifacts');
  const stampFile = join(o.out, '.package-hub.json');
  let stamps = {};
  try {
    stamps = readJson(stampFile);
  } catch {
    /* none yet */
  }
  // the native builds of every architecture first, side by side (the compiler is single-threaded)
  checkTar();
  const built = {};
  await Promise.all(o.arches.map(async (arch) => {
    runnerFor(arch);
    const runtimeDir = ensureRuntime(arch);
    built[arch] = { runtimeDir, ptyNode: ensurePty(arch, runtimeDir), sqliteNode: await ensureSqlite(arch, runtimeDir) };
  }));
  for (const arch of o.arches) {
    const name = `tether-hub-${o.version}-linux-${arch}`;
    const file = join(o.out, `${name}.tar.gz`);
    const tree = hubTree(arch);
    const key = artifactKey(arch, o, tree);
    const s = stamps[`${name}.tar.gz`];
    if (!o.force && s?.key === key && existsSync(file) && statSync(file).size === s.size && existsSync(`${file}.sha256`)) {
      log(`${shown(file)}: up to date`);
      continue;
    }
    const t0 = performance.now();
    const { runtimeDir, ptyNode, sqliteNode } = built[arch];
    const stageDir = mkdtempSync(join(o.out, '.stage-'));
    try {
      const top = join(stageDir, name);
      const unpacked = stage(top, arch, o, tree, runtimeDir, ptyNode, sqliteNode);
      const ran = smoke(top, arch, o);
      const tmp = join(stageDir, `${name}.tar.gz`);
      await tarball(stageDir, name, tmp, o.epoch);
      const hex = fileSha256(tmp);
      const size = statSync(tmp).size;
      writeFileSync(join(stageDir, 'sha256'), `${hex}  ${name}.tar.gz\n`);
      renameSync(tmp, file);
      renameSync(join(stageDir, 'sha256'), `${file}.sha256`);
      const agentsBytes = Object.keys(ARCHES).reduce((n, a) => n + statSync(join(o.agents, agentArtifactName(o.version, a))).size, 0);
      stamps[`${name}.tar.gz`] = { key, size, sha256: hex, unpacked, agents: agentsBytes, packages: tree.length, sqlite: ran.sqlite };
      writeFileSync(stampFile, JSON.stringify(stamps, null, 2) + '\n');
      log(`${shown(file)}: ${mb(size)} (${mb(size - agentsBytes)} without the agents it carries; ${mb(unpacked)} unpacked; ${tree.length} packages; SQLite ${ran.sqlite}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      rmSync(stageDir, { recursive: true, force: true });
    }
  }
}

await runScript(main);
