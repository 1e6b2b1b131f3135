#!/usr/bin/env node
// The agent artifact: one tarball per architecture that runs on a bare Linux host (glibc), with its
// own Node runtime, so a host needs nothing installed and runs the runtime CI tested the agent on.
//
//   node scripts/package-agent.mjs [--arch x64,arm64] [--version V] [--out DIR] [--force]
//   (or TETHER_PACKAGE_ARCH, TETHER_PACKAGE_VERSION, TETHER_PACKAGE_OUT; `npm run package:agent`)
//
// writes DIR (default dist/artifacts) /tether-agent-<version>-linux-<arch>.tar.gz and a sibling
// .sha256 (sha256sum's format). The tarball holds one folder, tether-agent-<version>-linux-<arch>/:
//
//   VERSION                 the version, one line
//   bin/tether-agent        sh launcher: runtime/node + V8 flags + lib/tether.mjs agent "$@"
//   bin/tether              sh launcher: the command line (no `tether hub`: the hub is not in here)
//   runtime/node, LICENSE   the official Node build from the npm package node-linux-<arch> (the
//                           version and its integrity pinned in scripts/runtime.json), stripped
//   lib/                    the bundled command (packages/cli/dist/bundle, no source maps) and
//   lib/node_modules/node-pty/  what node-pty loads at run time, its native part built for <arch>
//   share/                  packaging/agent/share (files for installing the agent on a host)
//   MANIFEST.sha256         every other file, sha256sum's format, sorted: sha256sum -c passes
//
// bin/ and share/ are copied from packaging/agent/. node-pty uses N-API, so one build per
// architecture serves every Node: the host architecture's is the one `npm ci` built (checked to use
// nothing but N-API), the other is cross-built with Debian's cross compiler against the runtime's
// own headers, in a copy outside node_modules. Before a tarball is written, the staged folder is run:
// `agent --help` and a pty spawning echo, on its own runtime (under qemu-user for a foreign one).
//
// Reproducible: the same inputs give the same bytes (GNU tar sorted, owner 0, one mtime —
// SOURCE_DATE_EPOCH or a fixed one —, no atime/ctime, pax names without pids; gzip -n). Modes are
// set, not inherited: 0755 for executables, 0644 for the rest. gzip, not xz: a minimal Debian
// host has no xz.
//
// Caches, all keyed by their inputs, so an unchanged tree costs a few hashes (`npm run build`
// runs this): the runtime packages, extracted and stripped, under .cache/runtime/; cross-built
// node-pty under .cache/node-pty/; and a tarball is rebuilt only when the key of everything that goes
// into it (bundle, node-pty, runtime, packaging/agent, this script, version, mtime) changed, recorded
// in DIR/.package-agent.json. --force (TETHER_PACKAGE_FORCE=1) rebuilds the tarballs regardless.
//
// A missing tool stops it with the Debian package to install. The build passes --skip-missing-tools:
// it skips (and says so) an architecture this machine cannot make yet, since `npm test` builds
// before scripts/prepare-tests.sh installs the cross tools; the tests package again, strictly.
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const self = fileURLToPath(import.meta.url);
const started = performance.now();

// The architectures an artifact can be made for: npm's and Node's name, GNU's triple, Debian's name,
// qemu's name.
export const ARCHES = {
  x64: { triple: 'x86_64-linux-gnu', deb: 'amd64', qemu: 'x86_64' },
  arm64: { triple: 'aarch64-linux-gnu', deb: 'arm64', qemu: 'aarch64' },
};
// A fixed time for every entry when SOURCE_DATE_EPOCH is not set: 2026-01-01T00:00:00Z.
export const DEFAULT_EPOCH = 1767225600;
const GZIP_LEVEL = 9;
// What the cross build runs; part of its cache key.
const PTY_RECIPE = 'node-gyp rebuild --arch=<arch> --nodedir=<runtime>; CC/CXX/LINK/AR=<triple>-tools; no npm_config_* in env; v2';

export class Failure extends Error {}
/** A tool this machine lacks: --skip-missing-tools (the build) skips the architecture that needs it. */
export class MissingTool extends Failure {}
export const fail = (msg, Kind = Failure) => {
  throw new Kind(msg);
};
export const log = (msg) => process.stderr.write(`${basename(process.argv[1] ?? 'package', '.mjs')}: ${msg}\n`);
export const sha256 = (data) => createHash('sha256').update(data).digest('hex');
export const fileSha256 = (path) => sha256(readFileSync(path));
export const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
export const shown = (f) => (relative(process.cwd(), f).startsWith('..') ? f : relative(process.cwd(), f));

// ---------------------------------------------------------------- arguments

/**
 * The options both packaging scripts take: --arch --version --out --force (and TETHER_PACKAGE_* in the
 * environment), plus `extra` (parseArgs' form); `usage` is printed for --help.
 */
export function packagingOptions(usage, extra = {}) {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string' },
      version: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...extra,
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const env = process.env;
  const arches = (values.arch ?? env.TETHER_PACKAGE_ARCH ?? 'x64,arm64').split(',').map((a) => a.trim()).filter(Boolean);
  for (const a of arches) if (!Object.hasOwn(ARCHES, a)) fail(`unknown architecture '${a}' (known: ${Object.keys(ARCHES).join(', ')})`);
  if (arches.length === 0) fail('no architecture given');
  const version = values.version ?? env.TETHER_PACKAGE_VERSION ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  if (!/^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/.test(version)) fail(`'${version}' is not a version (x.y.z, optionally -pre or +build)`);
  const epochText = env.SOURCE_DATE_EPOCH || String(DEFAULT_EPOCH);
  if (!/^\d+$/.test(epochText)) fail(`SOURCE_DATE_EPOCH '${epochText}' is not a number of seconds`);
  return {
    values,
    arches: [...new Set(arches)],
    version,
    out: resolve(values.out ?? env.TETHER_PACKAGE_OUT ?? join(root, 'dist/artifacts')),
    force: values.force ?? env.TETHER_PACKAGE_FORCE === '1',
    epoch: Number(epochText),
  };
}

function options() {
  const o = packagingOptions('usage: node scripts/package-agent.mjs [--arch x64,arm64] [--version V] [--out DIR] [--force] [--skip-missing-tools]', { 'skip-missing-tools': { type: 'boolean' } });
  return { ...o, skipMissingTools: o.values['skip-missing-tools'] ?? false };
}

// ---------------------------------------------------------------- tools

export function which(cmd) {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The command, or a failure that names the Debian package providing it. */
export function tool(cmd, aptPackage, why) {
  return which(cmd) ?? fail(`${cmd} not found (${why}): apt-get install ${aptPackage} (scripts/prepare-tests.sh installs it)`, MissingTool);
}

export const isHost = (arch) => arch === hostArch();
export const crossPrefix = (arch) => (isHost(arch) ? '' : `${ARCHES[arch].triple}-`);
export const binutilsPackage = (arch) => (isHost(arch) ? 'binutils' : `binutils-${ARCHES[arch].triple.replaceAll('_', '-')}`);

export function checkTar() {
  const r = spawnSync(tool('tar', 'tar', 'to make the tarball'), ['--version'], { encoding: 'utf8' });
  if (!/GNU tar/.test(r.stdout ?? '')) fail('tar is not GNU tar (--sort=name, --pax-option are needed for reproducible tarballs): apt-get install tar', MissingTool);
  tool('gzip', 'gzip', 'to compress the tarball');
}

/** How to run a program built for `arch` here: itself, or under qemu-user with the cross libraries. */
export function runnerFor(arch) {
  if (isHost(arch)) return [];
  const { qemu, triple, deb } = ARCHES[arch];
  const q = which(`qemu-${qemu}-static`) ?? which(`qemu-${qemu}`) ?? fail(`qemu-${qemu}-static not found (to smoke-test the ${arch} artifact): apt-get install qemu-user-static`, MissingTool);
  const sysroot = `/usr/${triple}`;
  if (!existsSync(join(sysroot, 'lib/libstdc++.so.6'))) fail(`${sysroot}/lib/libstdc++.so.6 not found (the ${arch} runtime needs it under qemu): apt-get install libstdc++6-${deb}-cross`, MissingTool);
  return [q, '-L', sysroot];
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${[cmd, ...args].join(' ')} exited with ${r.status ?? r.signal}:\n${(r.stdout ?? '') + (r.stderr ?? '')}`.trimEnd());
  return r.stdout;
}

// ---------------------------------------------------------------- inputs

/** Every file under dir (recursively), paths relative to it, sorted. */
export function walk(dir, base = dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, base, out);
    else if (e.isFile()) out.push(relative(base, p));
    else fail(`${p}: not a file or a folder`);
  }
  return out.sort();
}

export const runtimeSpec = () => JSON.parse(readFileSync(join(root, 'scripts/runtime.json'), 'utf8'));

export function bundleFiles() {
  const dir = join(root, 'packages/cli/dist/bundle');
  if (!existsSync(join(dir, 'tether.mjs'))) fail(`${relative(root, dir)}/tether.mjs not found: build first (npm run build)`);
  return walk(dir).filter((f) => f.endsWith('.mjs')).map((f) => join(dir, f));
}

export const ptyDir = () => join(root, 'node_modules/node-pty');

/**
 * The files node-pty loads on Linux: its package.json, its main module and what that requires,
 * following `require("./…")` from there (the Windows modules left out).
 */
export function ptyRuntimeFiles() {
  const dir = ptyDir();
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = new Set(['package.json', 'LICENSE']);
  const queue = [join(dir, pkg.main ?? 'index.js')];
  while (queue.length) {
    let f = queue.shift();
    if (!f.endsWith('.js')) f += '.js';
    const rel = relative(dir, f);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const m of readFileSync(f, 'utf8').matchAll(/require\(["'](\.{1,2}\/[^"']+)["']\)/g)) {
      if (/windows|conpty|winpty|conout/i.test(m[1])) continue;
      queue.push(join(dirname(f), m[1]));
    }
  }
  return [...files].sort();
}

function ptySourceKey(arch, runtimeVersion) {
  const h = createHash('sha256').update(`${PTY_RECIPE}\n${arch}\n${runtimeVersion}\n`);
  const dir = ptyDir();
  const addon = join(root, 'node_modules/node-addon-api');
  for (const f of ['package.json', 'binding.gyp', ...walk(join(dir, 'src/unix')).map((f) => `src/unix/${f}`)]) h.update(`${f}\n`).update(readFileSync(join(dir, f)));
  for (const f of walk(addon)) h.update(`node-addon-api/${f}\n`).update(readFileSync(join(addon, f)));
  return h.digest('hex');
}

/** The key of everything that goes into one tarball. */
function artifactKey(arch, o) {
  const rt = runtimeSpec();
  const h = createHash('sha256');
  const add = (name, data) => h.update(`${name}\0${data.length}\0`).update(data);
  add('script', readFileSync(self));
  add('version', o.version);
  add('arch', arch);
  add('epoch', String(o.epoch));
  add('runtime', `${rt.node} ${rt.integrity?.[arch]}`);
  const pack = join(root, 'packaging/agent');
  for (const f of walk(pack)) add(`packaging/${f} ${statSync(join(pack, f)).mode & 0o111 ? 'x' : '-'}`, readFileSync(join(pack, f)));
  for (const f of bundleFiles()) add(`lib/${basename(f)}`, readFileSync(f));
  for (const f of ptyRuntimeFiles()) add(`pty/${f}`, readFileSync(join(ptyDir(), f)));
  const built = join(ptyDir(), 'build/Release/pty.node');
  add('pty.node', isHost(arch) && existsSync(built) ? readFileSync(built) : ptySourceKey(arch, rt.node));
  return h.digest('hex');
}

// ---------------------------------------------------------------- the runtime

/**
 * .cache/runtime/node-v<V>-linux-<arch>/: node (stripped), LICENSE, include/node (headers, for the
 * native build), from `npm pack node-linux-<arch>@<V>` checked against the integrity pinned in
 * scripts/runtime.json and the one the registry reports.
 */
export function ensureRuntime(arch) {
  const rt = runtimeSpec();
  const pinned = rt.integrity?.[arch];
  const pkg = `node-linux-${arch}@${rt.node}`;
  const cache = join(root, '.cache/runtime');
  const dir = join(cache, `node-v${rt.node}-linux-${arch}`);
  const done = join(dir, '.complete');
  if (existsSync(done) && readFileSync(done, 'utf8') === `${pkg} ${pinned}\n`) return dir;
  if (!pinned) fail(`scripts/runtime.json pins no integrity for ${arch}: \`npm view ${pkg} dist.integrity\` says what the registry has; check it and pin it`);
  const strip = tool(`${crossPrefix(arch)}strip`, binutilsPackage(arch), `to strip the ${arch} runtime`);
  mkdirSync(cache, { recursive: true });
  const t0 = performance.now();
  log(`fetching ${pkg} (npm pack)`);
  const packed = JSON.parse(run('npm', ['pack', pkg, '--json', '--silent', '--pack-destination', cache], { cwd: cache }));
  const tgz = join(cache, packed[0].filename);
  try {
    const actual = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (packed[0].integrity !== pinned || actual !== pinned) fail(`${pkg}: integrity mismatch: pinned ${pinned} in scripts/runtime.json, the registry reports ${packed[0].integrity}, the file hashes to ${actual}`);
    const tmp = mkdtempSync(join(cache, '.tmp-'));
    try {
      run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE', 'package/include/node']);
      const before = statSync(join(tmp, 'package/bin/node')).size;
      run(strip, ['-o', join(tmp, 'node'), join(tmp, 'package/bin/node')]);
      renameSync(join(tmp, 'package/LICENSE'), join(tmp, 'LICENSE'));
      renameSync(join(tmp, 'package/include'), join(tmp, 'include'));
      rmSync(join(tmp, 'package'), { recursive: true });
      writeFileSync(join(tmp, '.complete'), `${pkg} ${pinned}\n`);
      chmodSync(tmp, 0o755);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      // other versions' runtimes for this architecture (before a bump of scripts/runtime.json)
      for (const f of readdirSync(cache)) if (f.startsWith('node-v') && f.endsWith(`-linux-${arch}`) && f !== basename(dir)) rmSync(join(cache, f), { recursive: true, force: true });
      log(`${pkg}: integrity checked, node stripped ${mb(before)} -> ${mb(statSync(join(dir, 'node')).size)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    rmSync(tgz, { force: true });
  }
  return dir;
}

// ---------------------------------------------------------------- node-pty's native part

/** Whether a .node file uses N-API alone (no V8, libuv or Node internals): then any Node can load it. */
export function napiOnly(file, arch) {
  const nm = tool(`${crossPrefix(arch)}nm`, binutilsPackage(arch), 'to check that node-pty uses N-API alone');
  const syms = run(nm, ['-D', file]).split('\n');
  const registers = syms.some((l) => / T napi_register_module_v1$/.test(l));
  const internal = syms.filter((l) => / U (_ZN2v8|_ZN4node|node_module_register|uv_)/.test(l));
  return registers && internal.length === 0;
}

/** pty.node for `arch`: the one `npm ci` built when it is for this architecture and N-API only, else a build of our own. */
export function ensurePty(arch, runtimeDir) {
  const built = join(ptyDir(), 'build/Release/pty.node');
  if (isHost(arch) && existsSync(built)) {
    if (napiOnly(built, arch)) return built;
    log(`${relative(root, built)} is built against Node internals, not N-API alone: building node-pty again`);
  }
  const key = ptySourceKey(arch, runtimeSpec().node).slice(0, 16);
  const cache = join(root, '.cache/node-pty');
  const out = join(cache, `pty-${arch}-${key}.node`);
  if (existsSync(out)) return out;
  const gyp = nodeGyp();
  const p = crossPrefix(arch);
  // node-gyp takes npm's config from the environment over its own command line: under `npm run`,
  // an npmrc's nodedir (here /usr, Node 20's headers) would replace the runtime's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package_config_node_gyp)_/i.test(k)));
  const gxx = tool(`${p}g++`, isHost(arch) ? 'g++' : `g++-${ARCHES[arch].triple.replaceAll('_', '-')}`, `to build node-pty for ${arch}`);
  tool('make', 'make', 'to build node-pty');
  tool('python3', 'python3', 'node-gyp runs on it');
  if (p) {
    if (!existsSync(`/usr/${ARCHES[arch].triple}/include/stdio.h`)) fail(`/usr/${ARCHES[arch].triple}/include not found (${arch} C library headers): apt-get install libc6-dev-${ARCHES[arch].deb}-cross`, MissingTool);
    Object.assign(env, { CC: tool(`${p}gcc`, `gcc-${ARCHES[arch].triple.replaceAll('_', '-')}`, 'to build node-pty'), CXX: gxx, LINK: gxx, AR: tool(`${p}ar`, binutilsPackage(arch), 'to build node-pty') });
  }
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, '.build-'));
  const t0 = performance.now();
  try {
    // node-gyp resolves node-addon-api from the package folder, as in node_modules
    const src = join(tmp, 'node_modules/node-pty');
    for (const f of ['package.json', 'binding.gyp', 'src']) cpSync(join(ptyDir(), f), join(src, f), { recursive: true });
    cpSync(join(root, 'node_modules/node-addon-api'), join(tmp, 'node_modules/node-addon-api'), { recursive: true });
    run(process.execPath, [gyp, 'rebuild', `--arch=${arch}`, `--nodedir=${runtimeDir}`, '--silent'], { cwd: src, env });
    const made = join(src, 'build/Release/pty.node');
    if (!napiOnly(made, arch)) fail(`${made}: not N-API alone`);
    copyFileSync(made, out);
    for (const f of readdirSync(cache)) if (f.startsWith(`pty-${arch}-`) && join(cache, f) !== out) rmSync(join(cache, f)); // older inputs'
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`node-pty built for ${arch} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return out;
}

/** npm's own node-gyp (npm sets npm_config_node_gyp for scripts; else beside the npm on PATH). */
export function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const npm = which('npm');
  if (npm) candidates.push(join(dirname(realpathSync(npm)), '../node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  return candidates.find((c) => c && existsSync(c)) ?? fail('node-gyp not found (it comes with npm): is npm installed?');
}

// ---------------------------------------------------------------- the folder

export function copy(from, to, mode) {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

function stage(top, arch, o, runtimeDir, ptyNode) {
  const pack = join(root, 'packaging/agent');
  for (const f of walk(pack)) copy(join(pack, f), join(top, f), statSync(join(pack, f)).mode & 0o111 ? 0o755 : 0o644);
  mkdirSync(join(top, 'share'), { recursive: true });
  writeFileSync(join(top, 'VERSION'), `${o.version}\n`, { mode: 0o644 });
  copy(join(runtimeDir, 'node'), join(top, 'runtime/node'), 0o755);
  copy(join(runtimeDir, 'LICENSE'), join(top, 'runtime/LICENSE'), 0o644);
  // lib/tether.mjs is run by runtime/node, never on its own (its #! would find another node): 0644
  for (const f of bundleFiles()) copy(f, join(top, 'lib', basename(f)), 0o644);
  stampVersion(join(top, 'lib'), o.version);
  const pty = join(top, 'lib/node_modules/node-pty');
  for (const f of ptyRuntimeFiles()) copy(join(ptyDir(), f), join(pty, f), 0o644);
  copy(ptyNode, join(pty, 'build/Release/pty.node'), 0o755);
  const files = walk(top);
  writeFileSync(join(top, 'MANIFEST.sha256'), files.map((f) => `${fileSha256(join(top, f))}  ${f}\n`).join(''), { mode: 0o644 });
  for (const d of [top, ...walkDirs(top)]) chmodSync(d, 0o755);
  return files.reduce((n, f) => n + statSync(join(top, f)).size, 0);
}

/**
 * The agent reports its version to the hub (hello's agentVersion) and `tether --version` prints it:
 * both read @tether/protocol's TETHER_VERSION, one constant in one chunk of the bundle. It becomes
 * the artifact's version, so that an artifact built with --version says what its VERSION file says.
 */
export function stampVersion(lib, version) {
  const re = /\bconst TETHER_VERSION = "[^"]*";/g;
  const hits = readdirSync(lib).filter((f) => f.endsWith('.mjs')).flatMap((f) => [...readFileSync(join(lib, f), 'utf8').matchAll(re)].map(() => f));
  if (hits.length !== 1) fail(`the bundle should define TETHER_VERSION once, found ${hits.length} (${hits.join(', ')}): scripts/package-agent.mjs sets it to the artifact's version`);
  const f = join(lib, hits[0]);
  writeFileSync(f, readFileSync(f, 'utf8').replace(re, `const TETHER_VERSION = ${JSON.stringify(version)};`));
}

export function walkDirs(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    out.push(join(dir, e.name));
    walkDirs(join(dir, e.name), out);
  }
  return out;
}

/** The staged folder runs on its own runtime: `agent --help`, and node-pty resolved from lib/ spawns echo in a pty. */
function smoke(top, arch, o) {
  const runner = runnerFor(arch);
  const node = join(top, 'runtime/node');
  const exe = runner[0] ?? node;
  const pre = runner[0] ? [...runner.slice(1), node] : [];
  const help = run(exe, [...pre, join(top, 'lib/tether.mjs'), 'agent', '--help'], { timeout: 120_000 });
  if (!/--hub/.test(help)) fail(`${arch}: \`tether agent --help\` on the packaged runtime printed no --hub:\n${help}`);
  const said = run(exe, [...pre, join(top, 'lib/tether.mjs'), '--version'], { timeout: 120_000 }).trim();
  if (said !== o.version) fail(`${arch}: \`tether --version\` says ${said}, the artifact is ${o.version}`);
  const script = `
    const pty = require('node:module').createRequire(process.argv[1])('node-pty');
    const t = pty.spawn('/bin/echo', ['tether-pty-ok'], {});
    let out = '';
    t.onData((d) => (out += d));
    t.onExit((e) => console.log(JSON.stringify({ version: process.version, arch: process.arch, out, exitCode: e.exitCode })));`;
  const r = JSON.parse(run(exe, [...pre, '-e', script, join(top, 'lib/tether.mjs')], { timeout: 120_000 }).trim().split('\n').pop());
  const want = { version: `v${runtimeSpec().node}`, arch, exitCode: 0 };
  if (r.version !== want.version || r.arch !== want.arch || r.exitCode !== 0 || !r.out.includes('tether-pty-ok')) fail(`${arch}: node-pty on the packaged runtime: got ${JSON.stringify(r)}, want ${JSON.stringify(want)} and tether-pty-ok`);
}

// ---------------------------------------------------------------- the tarball

/** GNU tar piped into gzip, both deterministic: sorted names, one mtime, owner 0, no atime/ctime, gzip without name or time. */
export async function tarball(stageDir, name, file, epoch) {
  const env = { ...process.env, LC_ALL: 'C', GZIP: '' };
  const tar = spawn('tar', ['--create', '--format=posix', '--sort=name', `--mtime=@${epoch}`, '--owner=0', '--group=0', '--numeric-owner', '--mode=go-w', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', stageDir, '-f', '-', name], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const gzip = spawn('gzip', ['-n', `-${GZIP_LEVEL}`], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const sink = createWriteStream(file);
  tar.stdout.pipe(gzip.stdin);
  gzip.stdout.pipe(sink);
  let errors = '';
  tar.stderr.on('data', (d) => (errors += d));
  gzip.stderr.on('data', (d) => (errors += d));
  const exited = (p) => new Promise((res) => p.on('close', (code) => res(code)));
  const [t, g] = await Promise.all([exited(tar), exited(gzip), new Promise((res, rej) => sink.on('close', res).on('error', rej))]);
  if (t !== 0 || g !== 0) fail(`tar (${t}) | gzip (${g}) failed: ${errors}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const o = options();
  mkdirSync(o.out, { recursive: true });
  const stampFile = join(o.out, '.package-agent.json');
  let stamps = {};
  try {
    stamps = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    /* none yet */
  }
  for (const arch of o.arches) {
    const name = `tether-agent-${o.version}-linux-${arch}`;
    const file = join(o.out, `${name}.tar.gz`);
    const key = artifactKey(arch, o);
    const s = stamps[`${name}.tar.gz`];
    if (!o.force && s?.key === key && existsSync(file) && statSync(file).size === s.size && existsSync(`${file}.sha256`)) {
      log(`${shown(file)}: up to date`);
      continue;
    }
    const t0 = performance.now();
    let runtimeDir, ptyNode;
    try {
      checkTar();
      runnerFor(arch);
      runtimeDir = ensureRuntime(arch);
      ptyNode = ensurePty(arch, runtimeDir);
    } catch (err) {
      if (!(o.skipMissingTools && err instanceof MissingTool)) throw err;
      log(`skipped ${name}: ${err.message}; then \`npm run package:agent\``);
      continue;
    }
    const stageDir = mkdtempSync(join(o.out, '.stage-'));
    try {
      const top = join(stageDir, name);
      const unpacked = stage(top, arch, o, runtimeDir, ptyNode);
      smoke(top, arch, o);
      const tmp = join(stageDir, `${name}.tar.gz`);
      await tarball(stageDir, name, tmp, o.epoch);
      const hex = fileSha256(tmp);
      const size = statSync(tmp).size;
      writeFileSync(join(stageDir, 'sha256'), `${hex}  ${name}.tar.gz\n`);
      renameSync(tmp, file);
      renameSync(join(stageDir, 'sha256'), `${file}.sha256`);
      stamps[`${name}.tar.gz`] = { key, size, sha256: hex, unpacked };
      writeFileSync(stampFile, JSON.stringify(stamps, null, 2) + '\n');
      log(`${shown(file)}: ${mb(size)} (${mb(unpacked)} unpacked) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      rmSync(stageDir, { recursive: true, force: true });
    }
  }
  if (process.env.TETHER_PACKAGE_TIMING) log(`done in ${(performance.now() - started).toFixed(0)} ms`);
}

/** Runs a packaging script's main: a Failure is one line on stderr and exit status 1, anything else a crash. */
export async function runScript(main) {
  try {
    await main();
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    log(err.message);
    process.exit(1);
  }
}

// Run as a script; imported (scripts/package-hub.mjs uses the runtime, native-build and tarball parts), do nothing.
if (process.argv[1] && realpathSync(resolve(process.argv[1])) === self) await runScript(main);
