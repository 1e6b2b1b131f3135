// Tasks that outlive the agent (tasks/detached.ts): output in files, a waiter that writes the exit
// status, re-attaching after a restart. This machine has no systemd, so these run the waiter as the
// agent's child (placement without a scope); the scope itself is covered by test/fleet/task-scopes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { TaskResultBody } from '@tether/protocol';
import { FILE_CAP, TaskLedger, TaskManager, WAITER_SCRIPT, loadAgentConfig, reattachTask, runTask, scopeArgs, scopeSupport, scopeUnitName, type Agent } from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'tether-detached-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ODD = ['two words', `it's "quoted"`, '$(touch /tmp/tether-pwned)', '`id`', 'line\nbreak', '-n', '--', '-e', '', '*', '\\n', '; exit 7', '$HOME', '>&3'];

/** A process standing in for a waiter an earlier agent started: pid and start time as meta.json has them. */
/** Polls `cond` every 20 ms until it holds (5 s at most): the tests wait for conditions, not for time. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5000; !cond(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fakeWaiter(dir: string, extra: Record<string, unknown> = {}) {
  const p = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ v: 1, pid: p.pid, pidStart: start, startedAt: Date.now() - 1000, maxOutput: 1024, stream: true, attach: 0, ...extra }));
  writeFileSync(join(dir, 'stdout'), '');
  writeFileSync(join(dir, 'stderr'), '');
  writeFileSync(join(dir, 'exit'), '');
  return p;
}

test('the waiter script is a constant and passes every argument through as one word, with its exit status on fd 3', () => {
  const d = tmp();
  try {
    const r = spawnSync('/bin/sh', ['-c', `${WAITER_SCRIPT}`, 'tether-task', '/usr/bin/printf', '%s\\0', ...ODD], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), ODD);
    assert.equal(r.output[3], '0\n');
    assert.equal(existsSync('/tmp/tether-pwned'), false);
    const failed = spawnSync('/bin/sh', ['-c', WAITER_SCRIPT, 'tether-task', '/bin/sh', '-c', 'echo err >&2; exit 7'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
    assert.equal(failed.stderr, 'err\n', "the command's stderr, and nothing of the waiter's");
    assert.equal(failed.output[3], '7\n');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('detached run: odd arguments, stdin, exit code and both streams as a piped run reports them; never a shell builtin', async () => {
  const d = tmp();
  try {
    const r = await runTask({ command: ['printf', '%s\\0', ...ODD], placement: { dir: join(d, 'a') } }).done;
    assert.equal(r.status, 'exited');
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), ODD);
    const io = await runTask({ command: ['sh', '-c', 'cat; echo oops >&2; exit 4'], stdin: 'in put\n', placement: { dir: join(d, 'b') } }).done;
    assert.deepEqual([io.status, io.exitCode, io.stdout, io.stderr, io.stdoutBytes, io.stderrBytes], ['exited', 4, 'in put\n', 'oops\n', 7, 5]);
    // echo is a builtin of the waiter's shell, which would read "\n": the command runs /usr/bin/echo.
    const echo = await runTask({ command: ['echo', 'a\\nb'], placement: { dir: join(d, 'c') } }).done;
    assert.equal(echo.stdout, 'a\\nb\n');
    for (const [cmd, msg] of [['exit'], ['-n'], ['/no/such/thing'], ['/etc/passwd']].map((c) => [c, c[0] === '/etc/passwd' ? /permission denied: \/etc\/passwd/ : /command not found/] as const)) {
      const f = await runTask({ command: [...cmd], placement: { dir: join(d, 'x') } }).done;
      assert.equal(f.status, 'failed', cmd[0]);
      assert.match(f.error!, msg);
    }
    const env = await runTask({ command: ['env'], env: { A: 'b c' }, placement: { dir: join(d, 'e') } }).done;
    assert.match(env.stdout, /^A=b c$/m);
    assert.doesNotMatch(env.stdout, /TETHER_|NODE_/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('detached run: a kill reaches the process group (the waiter lives to record it); a timeout ends it as timeout', async () => {
  const d = tmp();
  try {
    const h = runTask({ command: ['sh', '-c', 'sleep 30 & wait'], placement: { dir: join(d, 'k') } });
    await until(() => spawnSync('pgrep', ['-g', String(h.pid), '-x', 'sleep']).status === 0, 'the command’s sleep');
    assert.equal(h.kill('SIGTERM'), true);
    const k = await h.done;
    assert.deepEqual([k.status, k.signal, k.exitCode], ['killed', 'SIGTERM', null]);
    assert.equal(readFileSync(join(d, 'k', 'exit'), 'utf8'), '143\n');
    const t0 = Date.now();
    const t = await runTask({ command: ['sleep', '30'], timeoutSec: 0.3, placement: { dir: join(d, 't') } }).done;
    assert.equal(t.status, 'timeout');
    assert.equal(t.signal, 'SIGTERM');
    assert.match(t.error!, /timed out after 0.3 s/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('detached run: output streams live from the files; a stream past FILE_CAP is cut back to its head on disk, counted whole', async () => {
  const d = tmp();
  try {
    const live: string[] = [];
    const h = runTask({ command: ['sh', '-c', 'echo one; sleep 0.4; echo two'], placement: { dir: join(d, 'l') } }, (s, t) => live.push(`${s}:${t}`));
    await until(() => live.length > 0, 'the first line');
    assert.deepEqual(live, ['stdout:one\n'], 'the first line arrives before the command ends');
    await h.done;
    assert.deepEqual(live, ['stdout:one\n', 'stdout:two\n']);
    // Written with pauses, so that every cut comes in a pause: the count is exact.
    const mib = 1024 * 1024;
    const big = await runTask({ command: ['sh', '-c', 'for i in 1 2 3 4 5 6; do head -c 1048576 /dev/zero | tr "\\0" x; sleep 0.6; done'], maxOutput: 4096, placement: { dir: join(d, 'b') } }).done;
    assert.equal(big.stdoutBytes, 6 * mib);
    assert.equal(big.truncated, true);
    assert.match(big.stdout, new RegExp(`^x{1024}\\n…\\[${6 * mib - 4096} bytes not kept\\]…\\nx{3072}$`));
    assert.ok(statSync(join(d, 'b', 'stdout')).size <= FILE_CAP + mib, `file cut back: ${statSync(join(d, 'b', 'stdout')).size}`);
    assert.equal(readFileSync(join(d, 'b', 'stdout')).subarray(0, 1024).toString(), 'x'.repeat(1024), 'the head stays at the start of the file');
    assert.ok(JSON.parse(readFileSync(join(d, 'b', 'progress.json'), 'utf8')).stdout > 0);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('re-attach: a waiter still running is followed from where its files are, and its real exit status reported', async () => {
  const d = tmp();
  const dir = join(d, 'tasks', 't1');
  const p = fakeWaiter(dir);
  try {
    writeFileSync(join(dir, 'stdout'), 'before restart\n');
    const live: string[] = [];
    const r = reattachTask(dir, (s, t) => live.push(`${s}:${t}`))!;
    assert.ok(r);
    assert.equal(r.handle.pid, p.pid);
    assert.equal(r.handle.seqBase, 2 ** 32, 'live chunks go on above what the earlier agent numbered');
    let ended = false;
    void r.handle.done.then(() => (ended = true));
    appendFileSync(join(dir, 'stdout'), 'after restart\n');
    appendFileSync(join(dir, 'stderr'), 'warn\n');
    await until(() => live.length >= 2, 'what came after the restart');
    assert.deepEqual(live.sort(), ['stderr:warn\n', 'stdout:after restart\n'], 'only what came after is sent live');
    assert.equal(ended, false, 'still running');
    writeFileSync(join(dir, 'exit'), '3\n');
    const o = await r.handle.done;
    assert.deepEqual([o.status, o.exitCode, o.signal, o.stdout, o.stderr], ['exited', 3, null, 'before restart\nafter restart\n', 'warn\n']);
    assert.equal(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).attach, 1);
  } finally {
    p.kill('SIGKILL');
    rmSync(d, { recursive: true, force: true });
  }
});

test('re-attach: an exit file already there is the result; a waiter gone without one is lost with its output; no meta: nothing to follow', async () => {
  const d = tmp();
  try {
    const a = join(d, 'tasks', 'a');
    const pa = fakeWaiter(a);
    pa.kill('SIGKILL');
    writeFileSync(join(a, 'stdout'), 'done\n');
    writeFileSync(join(a, 'exit'), '137\n');
    const ra = await reattachTask(a, undefined)!.handle.done;
    assert.deepEqual([ra.status, ra.exitCode, ra.signal, ra.stdout], ['exited', null, 'SIGKILL', 'done\n'], '128+N reads as signal N, as a shell reports it');
    const b = join(d, 'tasks', 'b');
    const pb = fakeWaiter(b);
    writeFileSync(join(b, 'stdout'), 'partial\n');
    pb.kill('SIGKILL');
    await new Promise((res) => pb.on('exit', res));
    const rb = await reattachTask(b, undefined)!.handle.done;
    assert.equal(rb.status, 'lost');
    assert.equal(rb.stdout, 'partial\n');
    assert.match(rb.error!, /without its exit status/);
    mkdirSync(join(d, 'tasks', 'c'));
    assert.equal(reattachTask(join(d, 'tasks', 'c'), undefined), undefined);
    assert.equal(reattachTask(join(d, 'tasks', 'none'), undefined), undefined);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('re-attach: a kill reaches the re-attached process group; a timeout begun earlier is finished; a bundle directory is removed', async () => {
  const d = tmp();
  try {
    const dir = join(d, 'tasks', 'k');
    const bundleDir = join(d, 'bundles', 'k');
    mkdirSync(bundleDir, { recursive: true });
    const p = fakeWaiter(dir, { cleanup: [bundleDir, '/etc/passwd'] });
    const r = reattachTask(dir, undefined)!;
    assert.equal(r.handle.kill('SIGTERM'), true);
    const o = await r.handle.done;
    assert.deepEqual([o.status, o.signal], ['killed', 'SIGTERM']);
    assert.equal(p.signalCode, 'SIGTERM');
    assert.equal(existsSync(bundleDir), false);
    assert.equal(existsSync('/etc/passwd'), true, 'nothing outside the state directory');
    const t = join(d, 'tasks', 't');
    const pt = fakeWaiter(t, { timeoutSec: 0.5 });
    const ot = await reattachTask(t, undefined)!.handle.done;
    assert.deepEqual([ot.status, ot.signal], ['timeout', 'SIGTERM']);
    assert.equal(pt.signalCode, 'SIGTERM');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

function fakeAgent(stateDir: string, taskScopes: 'auto' | 'off' = 'off') {
  const sent: { type: string; body: any }[] = [];
  const agent = Object.assign(new EventEmitter(), {
    cfg: { stateDir, taskScopes },
    bufferedAmount: 0,
    send(type: string, body: unknown) {
      sent.push({ type, body });
      return 'm1';
    },
  });
  return { agent: agent as unknown as Agent, bus: agent as EventEmitter, sent };
}
const results = (sent: { type: string; body: any }[]) => sent.filter((m) => m.type === 'task.result').map((m) => m.body as TaskResultBody);

test('manager: on start, a task the ledger has as running is re-attached and its real result sent; one with no trace is lost; stray task directories go', async () => {
  const state = tmp();
  const p = fakeWaiter(join(state, 'tasks', 'alive'));
  try {
    const l = new TaskLedger(state);
    l.markStarted('alive');
    l.markStarted('gone');
    l.close();
    mkdirSync(join(state, 'tasks', 'stray'), { recursive: true });
    const { agent, bus, sent } = fakeAgent(state);
    const m = new TaskManager(agent, pino({ level: 'silent' }), { capabilities: ['exec'] });
    assert.equal(m.runningCount, 1);
    assert.deepEqual(readdirSync(join(state, 'tasks')), ['alive']);
    assert.equal(m.ledger.readResult('gone')!.status, 'lost', 'in the outbox, sent once connected');
    bus.emit('connected');
    assert.deepEqual(sent.find((s) => s.type === 'task.sync')!.body.running, ['alive']);
    writeFileSync(join(state, 'tasks', 'alive', 'stdout'), 'finished\n');
    writeFileSync(join(state, 'tasks', 'alive', 'exit'), '0\n');
    for (let i = 0; i < 40 && !results(sent).some((x) => x.taskId === 'alive'); i++) await sleep(50);
    const r = results(sent).find((x) => x.taskId === 'alive')!;
    assert.deepEqual([r.status, r.exitCode, r.stdout], ['exited', 0, 'finished\n']);
    assert.equal(existsSync(join(state, 'tasks', 'alive')), false, 'its directory goes once the result is in the outbox');
    assert.equal(m.ledger.state('alive'), 'done');
    m.close();
  } finally {
    p.kill('SIGKILL');
    rmSync(state, { recursive: true, force: true });
  }
});

test('manager: without systemd (task_scopes auto) tasks stay piped children; with files placement a task survives the manager closing and the next one reports it', async (t) => {
  const state = tmp();
  try {
    if (scopeSupport()) t.diagnostic('this machine runs systemd as root: task_scopes = "auto" would use scopes, so the piped case runs with "off"');
    const a = fakeAgent(state, scopeSupport() ? 'off' : 'auto');
    const m1 = new TaskManager(a.agent, pino({ level: 'silent' }), { capabilities: ['exec'] });
    a.bus.emit('message', { type: 'task.start', id: 'm1', body: { taskId: 'p1', exec: { command: ['echo', 'piped'] } } });
    for (let i = 0; i < 40 && !results(a.sent).length; i++) await sleep(50);
    assert.equal(results(a.sent)[0]!.stdout, 'piped\n');
    assert.equal(existsSync(join(state, 'tasks')), false, 'no task files without scopes');
    m1.close();

    const b = fakeAgent(state);
    const m2 = new TaskManager(b.agent, pino({ level: 'silent' }), { capabilities: ['exec'], placement: 'files' });
    b.bus.emit('message', { type: 'task.start', id: 'm2', body: { taskId: 'f1', exec: { command: ['sh', '-c', 'sleep 0.6; echo finished'] } } });
    await until(() => existsSync(join(state, 'tasks', 'f1', 'meta.json')), 'the task’s meta.json');
    assert.ok(existsSync(join(state, 'tasks', 'f1', 'meta.json')));
    m2.close(); // the agent stops; the command goes on
    const c = fakeAgent(state);
    const m3 = new TaskManager(c.agent, pino({ level: 'silent' }), { capabilities: ['exec'] });
    assert.equal(m3.runningCount, 1);
    for (let i = 0; i < 60 && !results(c.sent).length; i++) await sleep(50);
    const r = results(c.sent)[0]!;
    assert.deepEqual([r.taskId, r.status, r.exitCode, r.stdout], ['f1', 'exited', 0, 'finished\n']);
    m3.close();
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('manager: a task id of dots gets a directory of its own, never the state directory', async () => {
  const state = tmp();
  try {
    const a = fakeAgent(state);
    const m = new TaskManager(a.agent, pino({ level: 'silent' }), { capabilities: ['exec'], placement: 'files' });
    for (const taskId of ['..', '.']) a.bus.emit('message', { type: 'task.start', id: 'm', body: { taskId, exec: { command: ['echo', taskId] } } });
    for (let i = 0; i < 40 && results(a.sent).length < 2; i++) await sleep(50);
    assert.deepEqual(results(a.sent).map((r) => r.stdout).sort(), ['.\n', '..\n']);
    assert.ok(existsSync(join(state, 'tasks.journal')), 'the state directory is still there');
    assert.deepEqual(readdirSync(join(state, 'tasks')), []);
    m.close();
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('scope arguments: argument arrays only, a unit name systemd accepts whatever the id, uid/gid when another user', () => {
  const u = scopeUnitName('task', 'job:1/../x y');
  assert.match(u, /^tether-task-job:1_\.\._x_y-[0-9a-f]{8}$/);
  assert.notEqual(scopeUnitName('task', 'a'), scopeUnitName('task', 'a'), 'a random part each time');
  assert.deepEqual(scopeArgs({ unit: 'tether-task-a-1', description: 'Tether task a\n', uid: 1000, gid: 1001 }), ['--scope', '--quiet', '--collect', '--no-ask-password', '--unit=tether-task-a-1', '--description=Tether task a?', '--uid=1000', '--gid=1001', '--']);
  assert.equal(scopeArgs({ unit: 'u', description: 'd' }).some((a) => a.startsWith('--uid')), false);
});

test('config: task_scopes is auto by default, off when asked, anything else refused', () => {
  const d = tmp();
  try {
    const cfg = (toml: string, env: NodeJS.ProcessEnv = {}) => {
      const f = join(d, `${Math.random()}.toml`);
      writeFileSync(f, `hub = "http://hub.example:8080"\n${toml}`);
      return loadAgentConfig({ config: f }, env);
    };
    assert.equal(cfg('').taskScopes, 'auto');
    assert.equal(cfg('task_scopes = "off"\n').taskScopes, 'off');
    assert.equal(cfg('', { TETHER_TASK_SCOPES: 'off' }).taskScopes, 'off');
    assert.throws(() => cfg('task_scopes = "always"\n'), /task_scopes/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
