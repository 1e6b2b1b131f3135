/**
 * packages/cli/bin/tether, the launcher users run: it execs node (one pid, so signals and exit
 * status are node's own) with V8's helper pool sized to the CPUs it may use, unless told otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { TestHub, cli } from '@tether/testkit';

const hubs: TestHub[] = [];
after(async () => {
  for (const h of hubs) await h.cleanup();
});

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
const expected = Math.min(4, Math.max(1, cpus - 1));

test('the hub runs as node itself, with --v8-pool-size set from nproc', async () => {
  const hub = await TestHub.start();
  hubs.push(hub);
  // exec: the pid the launcher was started as is node's, not a shell waiting on a child
  assert.equal(readlinkSync(`/proc/${hub.proc.pid}/exe`), readlinkSync(`/proc/self/exe`));
  const argv = cmdline(hub.proc.pid);
  assert.deepEqual(argv.filter((a) => a.startsWith('--v8-pool-size')), [`--v8-pool-size=${expected}`], argv.join(' '));
  // node, its flags, the bundle, then the command
  assert.equal(argv[argv.findIndex((a) => a.endsWith('dist/bundle/tether.mjs')) + 1], 'hub', argv.join(' '));
});

test('a pool size in TETHER_NODE_FLAGS wins, and the other flags there reach node', async () => {
  const hub = await TestHub.start({ nodeArgs: ['--v8-pool-size=3', '--stack-size=900'] });
  hubs.push(hub);
  const argv = cmdline(hub.proc.pid);
  assert.deepEqual(argv.filter((a) => a.startsWith('--v8-pool-size')), ['--v8-pool-size=3'], argv.join(' '));
  assert.ok(argv.includes('--stack-size=900'), argv.join(' '));
});

test('a pool size in NODE_OPTIONS wins: none is added to the command line', async () => {
  const hub = await TestHub.start({ env: { NODE_OPTIONS: '--v8-pool-size=2' } });
  hubs.push(hub);
  const argv = cmdline(hub.proc.pid);
  assert.deepEqual(argv.filter((a) => a.startsWith('--v8-pool-size')), [], argv.join(' '));
  assert.match(readFileSync(`/proc/${hub.proc.pid}/environ`, 'utf8'), /(^|\0)NODE_OPTIONS=--v8-pool-size=2\0/);
});

test("exit status and output are node's own, through the exec", async () => {
  const r = await cli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  const bad = await cli(['no-such-command']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown command/);
  // node refusing a flag exits 9: that status comes back as it is
  const refused = await cli(['--version'], { TETHER_NODE_FLAGS: '--no-such-node-flag' });
  assert.equal(refused.code, 9, refused.stderr);
  assert.match(refused.stderr, /bad option: --no-such-node-flag/);
});
