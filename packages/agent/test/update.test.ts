// The agent upgrading itself (update.ts) on a real directory laid out as install.sh lays it out,
// with real tarballs; and the artifact launcher's own rollback (packaging/agent/bin/tether-agent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Updater, installedHome, readTrial, type Installed } from '../src/update.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const log = pino({ level: 'silent' });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An artifact folder as package-agent makes it, with a manifest. */
function artifact(parent: string, version: string, extra: Record<string, string> = {}): string {
  const name = `tether-agent-${version}-linux-${process.arch}`;
  const dir = join(parent, name);
  const files: Record<string, string> = { VERSION: version + '\n', 'bin/tether-agent': '#!/bin/sh\necho agent ' + version + '\n', 'lib/tether.mjs': '// ' + version + '\n', ...extra };
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  chmodSync(join(dir, 'bin/tether-agent'), 0o755);
  writeFileSync(join(dir, 'MANIFEST.sha256'), Object.keys(files).sort().map((p) => `${sha(readFileSync(join(dir, p)))}  ${p}`).join('\n') + '\n');
  return dir;
}

/** <prefix>/<from> installed and current; a tarball of <to> ready to fetch. */
function setup(from: string, to: string, tamper?: (dir: string) => void) {
  const root = mkdtempSync(join(tmpdir(), 'tether-update-'));
  const prefix = join(root, 'opt');
  mkdirSync(prefix);
  const home = artifact(root, from);
  execFileSync('mv', [home, join(prefix, from)]);
  symlinkSync(from, join(prefix, 'current'));
  const build = mkdtempSync(join(tmpdir(), 'tether-build-'));
  const dir = artifact(build, to);
  tamper?.(dir);
  const tarball = join(root, 'next.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', build, `tether-agent-${to}-linux-${process.arch}`]);
  const bytes = readFileSync(tarball);
  const installed: Installed = { home: join(prefix, from), prefix, version: from };
  const restarts: string[] = [];
  let now = 1_000_000;
  const updater = (o: { underSystemd?: boolean; fetched?: Buffer } = {}) =>
    new Updater({
      installed,
      fetchTransfer: async (_id, dest) => writeFileSync(dest, o.fetched ?? bytes),
      restart: (why) => restarts.push(why),
      underSystemd: o.underSystemd ?? true,
      log,
      now: () => now,
      trialMs: 1000,
    });
  const spec = { transferId: 't1', sha256: sha(bytes), size: bytes.length, version: to, arch: process.arch };
  return { prefix, installed, updater, spec, restarts, tick: (ms: number) => (now += ms), bytes };
}

const run = async (u: Updater, spec: Parameters<Updater['run']>[0]) => {
  const out: string[] = [];
  return { ...(await u.run(spec, (_s, t) => out.push(t)).done), live: out.join('') };
};

test('an upgrade installs beside the running version, records its trial, switches current and restarts', async () => {
  const s = setup('1.0.0', '1.1.0');
  const r = await run(s.updater(), s.spec);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /^installed 1\.1\.0 beside 1\.0\.0; restarting into it/);
  assert.match(r.live, /checksum verified/);
  assert.equal(readlinkSync(join(s.prefix, 'current')), '1.1.0');
  assert.ok(existsSync(join(s.prefix, '1.0.0/bin/tether-agent')), 'the previous version stays');
  assert.deepEqual({ ...readTrial(s.prefix)!, at: undefined, deadline: undefined }, { state: 'trial', from: '1.0.0', to: '1.1.0', at: undefined, deadline: undefined });
  assert.ok(!existsSync(join(s.prefix, '.incoming')), 'nothing left half-way');
  // The result is out first; the restart follows (1.5 s later).
  for (const until = Date.now() + 10_000; !s.restarts.length && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.restarts, ['upgrading to 1.1.0']);
});

test('a download whose SHA-256 differs is refused and nothing changes', async () => {
  const s = setup('1.0.0', '1.1.0');
  const bad = Buffer.from(s.bytes);
  bad[bad.length >> 1]! ^= 1;
  const r = await run(s.updater({ fetched: bad }), s.spec);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /upgrade to 1\.1\.0 refused: the download's SHA-256 is [0-9a-f]{64}, the hub announced [0-9a-f]{64}: damaged or tampered with; still running 1\.0\.0/);
  assert.equal(readlinkSync(join(s.prefix, 'current')), '1.0.0');
  assert.equal(readTrial(s.prefix), undefined);
  assert.ok(!existsSync(join(s.prefix, '1.1.0')) && !existsSync(join(s.prefix, '.incoming')));
});

test('an artifact whose files differ from its manifest, or that says another version, is refused', async () => {
  const s = setup('1.0.0', '1.1.0', (dir) => writeFileSync(join(dir, 'lib/tether.mjs'), '// changed after the manifest was written\n'));
  const r = await run(s.updater(), s.spec);
  assert.match(r.stderr, /lib\/tether\.mjs differs from the artifact's manifest/);
  const extra = setup('1.0.0', '1.1.0', (dir) => writeFileSync(join(dir, 'lib/extra.mjs'), 'x'));
  assert.match((await run(extra.updater(), extra.spec)).stderr, /lib\/extra\.mjs is in the artifact but not in its manifest/);
  const s2 = setup('1.0.0', '1.1.0');
  assert.match((await run(s2.updater(), { ...s2.spec, version: '1.2.0' })).stderr, /the artifact should hold one folder tether-agent-1\.2\.0-linux-/);
  assert.equal(readlinkSync(join(s.prefix, 'current')), '1.0.0');
});

test('refused outside systemd, for another architecture, or when not installed from an artifact', async () => {
  const s = setup('1.0.0', '1.1.0');
  assert.match((await run(s.updater({ underSystemd: false }), s.spec)).stderr, /not a systemd service: nothing would start the new version/);
  assert.match((await run(s.updater(), { ...s.spec, arch: process.arch === 'x64' ? 'arm64' : 'x64' })).stderr, /built for (arm64|x64), this host is/);
  const none = new Updater({ installed: undefined, fetchTransfer: async () => {}, restart: () => {}, underSystemd: true, log });
  assert.match((await run(none, s.spec)).stderr, /does not run from an installed artifact/);
  assert.equal(installedHome(join(REPO, 'packages/cli/dist/bundle/tether.mjs')), undefined, 'a checkout is not an installed artifact');
});

test('the new version confirms its trial on reaching the hub, or restores the previous one at the deadline', async (t) => {
  const s = setup('1.0.0', '1.1.0');
  await run(s.updater(), s.spec);
  // The new version starts: on trial.
  const next = { ...s.installed, home: join(s.prefix, '1.1.0'), version: '1.1.0' };
  const restarts: string[] = [];
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const make = () => new Updater({ installed: next, fetchTransfer: async () => {}, restart: (w) => restarts.push(w), underSystemd: true, log, now: () => 1_000_000, trialMs: 1000 });
  make().startTrial().connected();
  assert.equal(readTrial(s.prefix)!.state, 'ok', 'reached the hub: confirmed');
  // Once more on trial, and this time it never reaches the hub.
  const trial = JSON.parse(readFileSync(join(s.prefix, 'update.json'), 'utf8'));
  writeFileSync(join(s.prefix, 'update.json'), JSON.stringify({ ...trial, state: 'trial' }));
  make().startTrial();
  t.mock.timers.tick(10_000);
  assert.equal(readlinkSync(join(s.prefix, 'current')), '1.0.0');
  assert.equal(readTrial(s.prefix)!.state, 'rolled-back');
  assert.match(readTrial(s.prefix)!.why!, /version 1\.1\.0 did not reach the hub within 1 s/);
  assert.deepEqual(restarts, ['rolling back to 1.0.0']);
});

test('the launcher restores the previous version when a version on trial is past its deadline', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'tether-launcher-'));
  for (const v of ['1.0.0', '1.1.0']) mkdirSync(join(prefix, v, 'bin'), { recursive: true });
  writeFileSync(join(prefix, '1.1.0/VERSION'), '1.1.0\n');
  copyFileSync(join(REPO, 'packaging/agent/bin/tether-agent'), join(prefix, '1.1.0/bin/tether-agent'));
  writeFileSync(join(prefix, '1.0.0/bin/tether-agent'), '#!/bin/sh\necho "old agent $*"\n');
  chmodSync(join(prefix, '1.0.0/bin/tether-agent'), 0o755);
  symlinkSync('1.1.0', join(prefix, 'current'));
  // Before its deadline the launcher runs its own version (here: a runtime that is not there).
  writeFileSync(join(prefix, 'update.json'), JSON.stringify({ state: 'trial', from: '1.0.0', to: '1.1.0', deadline: Math.floor(Date.now() / 1000) + 3600, at: 'x' }) + '\n');
  assert.throws(() => execFileSync('sh', [join(prefix, 'current/bin/tether-agent'), '--config', 'c'], { stdio: 'pipe' }), /runtime\/node/);
  assert.equal(readlinkSync(join(prefix, 'current')), '1.1.0');
  // Past it: the previous version, with the same arguments.
  writeFileSync(join(prefix, 'update.json'), JSON.stringify({ state: 'trial', from: '1.0.0', to: '1.1.0', deadline: 100, at: 'x' }) + '\n');
  assert.equal(execFileSync('sh', [join(prefix, 'current/bin/tether-agent'), '--config', 'c'], { stdio: 'pipe' }).toString(), 'old agent --config c\n');
  assert.equal(readlinkSync(join(prefix, 'current')), '1.0.0');
  assert.match(readFileSync(join(prefix, 'update.json'), 'utf8'), /^\{"state":"rolled-back","from":"1\.0\.0"/);
});
