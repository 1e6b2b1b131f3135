// Commands, jobs and terminals in their own transient scopes (task_scopes = "auto"), on a real host
// with systemd as PID 1: the agent runs as the unit tether-agent with the limits drop-in install.sh
// writes (MemoryMax=64M) and KillMode=control-group as in its real unit. A command that needs more
// memory than the agent may have completes, a command keeps running across `systemctl restart
// tether-agent` and the hub gets its real result, a kill reaches a process that left the task's
// process group, and a terminal's shell is in a scope of its own.
//
// The host runs --privileged --cgroupns=private: only then does its systemd get the memory controller
// on this machine's hybrid cgroups (without, the controllers are mounted read-only and MemoryMax is
// recorded but not enforced). The test measures enforcement rather than assuming it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { TestHub } from '@tether/testkit';
import { renderLimits } from '@tether/agent';
import { waitFor } from './exec.js';
import { defaultAgentCommand, startFleet, type Fleet, type FleetHost } from './fleet.js';

const CONFIG = '/etc/tether/agent.toml';
const UNIT = 'tether-agent.service';
const SCOPE_LINE = /^\d+:[^:\n]*:\/(?:.*\/)?(tether-(?:task|terminal)-[A-Za-z0-9:_.-]+\.scope)$/m;
// Needs more than 64 MiB resident: the shell keeps the 100 MiB command substitution in memory.
const HOG = 'x=$(head -c 100M /dev/zero | tr "\\0" a); echo "held ${#x} bytes"; cat /proc/self/cgroup';

describe('task scopes: commands, jobs and terminals outside the agent’s cgroup (systemd host)', () => {
  let hub: TestHub;
  let fleet: Fleet;
  let h: FleetHost;
  let id: string;

  const mainPid = async () => Number(await h.systemctl('show', '-p', 'MainPID', '--value', UNIT));
  const runTask = async (body: Record<string, unknown>) => (await hub.api('POST', '/api/v1/exec', { target: { hosts: [id] }, mode: 'async', ...body })).tasks[0].id as string;
  const task = async (taskId: string) => (await hub.api('GET', `/api/v1/tasks/${taskId}`)).task;
  const taskDone = (taskId: string, timeoutMs = 30_000) =>
    waitFor(`task ${taskId} done`, async () => {
      const t = await task(taskId);
      return t.state === 'done' ? t : undefined;
    }, { timeoutMs });

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '2s' });
    fleet = await startFleet({
      count: 1,
      hubPort: hub.port,
      hostnamePrefix: 'scopes',
      podmanArgs: ['--privileged', '--cgroupns=private'],
      agentCommand: (o) => [...defaultAgentCommand(o), '--config', CONFIG],
    });
    h = fleet.hosts[0]!;
    await h.exec(['mkdir', '-p', '/etc/tether', `/etc/systemd/system/${UNIT}.d`]);
    await h.writeFile(CONFIG, 'capabilities = ["metrics", "exec", "terminal"]\n');
    // What install.sh writes from [limits] memory = "64M", and the real unit's KillMode.
    await h.writeFile(`/etc/systemd/system/${UNIT}.d/limits.conf`, renderLimits({ memory: '64M' }, '/var/lib/tether-agent'));
    await h.writeFile(`/etc/systemd/system/${UNIT}.d/kill-mode.conf`, '[Service]\nKillMode=control-group\n');
    await h.startAgent(await hub.enrollToken({ singleUse: true }));
    const rows = await waitFor('agent online', async () => {
      const r = (await hub.hosts('?status=online')).hosts;
      return r.length === 1 ? r : undefined;
    }, { timeoutMs: 30_000 });
    id = rows[0].id;
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('the agent runs under MemoryMax=64M, and the kernel enforces it here (measured, not assumed)', async (t) => {
    assert.equal(await h.systemctl('show', '-p', 'MemoryMax', '--value', UNIT), String(64 * 1024 * 1024));
    const v1 = await h.exec(['cat', `/sys/fs/cgroup/memory/system.slice/${UNIT}/memory.limit_in_bytes`], { allowFailure: true });
    const v2 = await h.exec(['cat', `/sys/fs/cgroup/system.slice/${UNIT}/memory.max`], { allowFailure: true });
    const limit = v1.code === 0 ? v1.stdout.trim() : v2.stdout.trim();
    t.diagnostic(`the agent's cgroup memory limit as the kernel has it: ${limit || 'none (controller not available)'}`);
    assert.equal(limit, String(64 * 1024 * 1024), 'the memory controller is there: the limit is in the kernel');
    // The same command in a unit of its own under the agent's limit: the kernel kills it.
    const control = await h.exec(['systemd-run', '--wait', '--quiet', '-p', 'MemoryMax=64M', '-p', 'MemorySwapMax=0', '/bin/sh', '-c', HOG], { allowFailure: true, timeoutMs: 60_000 });
    assert.notEqual(control.code, 0, `under 64M the command is killed: ${control.stdout}${control.stderr}`);
  });

  test('a command that needs more memory than the agent may have completes in its own scope; the agent stays up', async () => {
    const before = await mainPid();
    const t = await taskDone(await runTask({ command: ['sh', '-c', HOG], timeoutSec: 60 }), 60_000);
    assert.equal(t.status, 'exited', JSON.stringify(t));
    assert.equal(t.exitCode, 0);
    assert.match(t.stdout, /^held 104857600 bytes$/m);
    const scope = SCOPE_LINE.exec(t.stdout)?.[1];
    assert.match(scope ?? '', /^tether-task-.+\.scope$/, `in a task scope: ${t.stdout}`);
    assert.doesNotMatch(t.stdout, /tether-agent\.service/);
    assert.equal(await h.agentState(), 'active');
    assert.equal(await mainPid(), before, 'the same agent process');
    assert.equal(await h.systemctl('show', '-p', 'NRestarts', '--value', UNIT), '0');
  });

  test('a task keeps running across `systemctl restart tether-agent`, and the hub gets its real result', async () => {
    const taskId = await runTask({ command: ['sh', '-c', 'sleep 8; echo finished'] });
    const running = await waitFor('task running', async () => {
      const t = await task(taskId);
      return t.state === 'running' && t.pid ? t : undefined;
    });
    const cgroup = (await h.exec(['cat', `/proc/${running.pid}/cgroup`])).stdout;
    const scope = SCOPE_LINE.exec(cgroup)?.[1];
    assert.match(scope ?? '', /^tether-task-/, `the task's waiter is in its scope: ${cgroup}`);
    assert.equal(await h.unitState(scope!), 'active');
    const agentBefore = await mainPid();
    const t0 = Date.now();
    await h.restartAgent(); // KillMode=control-group: everything in the agent's cgroup goes
    assert.notEqual(await mainPid(), agentBefore, 'a new agent process');
    assert.ok(Date.now() - t0 < 8000, 'restarted while the task ran');
    assert.equal((await h.exec(['kill', '-0', String(running.pid)], { allowFailure: true })).code, 0, 'the task lived through the restart');
    const done = await taskDone(taskId);
    assert.deepEqual([done.status, done.exitCode, done.stdout], ['exited', 0, 'finished\n'], JSON.stringify(done));
    assert.match(await h.agentLogs(200), /re-attached/);
    await waitFor('task directory removed', async () => (await h.exec(['test', '-e', `/var/lib/tether-agent/tasks/${taskId}`], { allowFailure: true })).code !== 0);
    await waitFor('scope collected', async () => (await h.unitState(scope!)) !== 'active');
  });

  test('a kill and a timeout reach every process of the task’s scope, one that left its process group too', async () => {
    const taskId = await runTask({ command: ['sh', '-c', 'setsid sleep 301 & sleep 302'] });
    const sleeps = async () => (await h.exec(['pgrep', '-x', 'sleep'], { allowFailure: true })).stdout.trim().split('\n').filter(Boolean);
    await waitFor('both sleeps running', async () => (await sleeps()).length === 2);
    assert.equal((await hub.api('POST', `/api/v1/tasks/${taskId}/kill`, { signal: 'TERM' })).result, 'sent');
    const t = await taskDone(taskId);
    assert.deepEqual([t.status, t.signal], ['killed', 'SIGTERM'], JSON.stringify(t));
    await waitFor('no sleep left', async () => (await sleeps()).length === 0, { timeoutMs: 5000 });
    // A timeout: SIGTERM (ignored here, by the command and what it starts), SIGKILL to the scope after the grace.
    const t0 = Date.now();
    const slow = await taskDone(await runTask({ command: ['sh', '-c', 'trap "" TERM; setsid sleep 303 & sleep 304'], timeoutSec: 1 }));
    assert.deepEqual([slow.status, slow.signal], ['timeout', 'SIGKILL'], JSON.stringify(slow));
    assert.ok(Date.now() - t0 < 15_000);
    await waitFor('no sleep left after the timeout', async () => (await sleeps()).length === 0, { timeoutMs: 5000 });
  });

  /** A terminal through the hub: the shell's pid, and what it printed for one line of input. */
  const terminal = async (query: string, input: string) => {
    const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/api/v1/hosts/${id}/terminal?cols=120&rows=24${query}`, { headers: { authorization: `Bearer ${hub.token}` } });
    let out = '';
    const pid = await new Promise<number>((resolve, reject) => {
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; data?: string; pid?: number; reason?: string };
        if (m.type === 'output') out += m.data!;
        else if (m.type === 'opened') resolve(m.pid!);
        else if (m.type === 'exit') reject(new Error(`terminal ended: ${m.reason}`));
      });
      ws.on('error', reject);
    });
    ws.send(JSON.stringify({ type: 'input', data: `${input}; echo END-$((6*7))\r` }));
    await waitFor('output', () => /END-42/.test(out), { timeoutMs: 10_000 });
    return { ws, pid, out: out.replace(/\r/g, '') };
  };

  test('another user: a task and a terminal get that user’s uid and gid, never the agent’s groups; the terminal its own groups', async () => {
    await h.exec(['useradd', '-m', '-s', '/bin/sh', '-G', 'adm', 'ops']);
    const t = await taskDone(await runTask({ command: ['id'], user: 'ops' }));
    assert.equal(t.exitCode, 0, JSON.stringify(t));
    assert.match(t.stdout, /^uid=\d+\(ops\) gid=\d+\(ops\) groups=\d+\(ops\)$/m, 'setuid tasks drop supplementary groups, as a piped start does');
    const term = await terminal('&user=ops', 'id; cat /proc/$$/cgroup');
    try {
      assert.match(term.out, /uid=\d+\(ops\) gid=\d+\(ops\) groups=\d+\(ops\),4\(adm\)/, term.out);
      assert.doesNotMatch(term.out, /groups=.*\b0\(root\)/);
      assert.match(SCOPE_LINE.exec(term.out)?.[1] ?? '', /^tether-terminal-/, JSON.stringify(term.out));
    } finally {
      term.ws.close();
    }
  });

  test('a terminal’s shell runs in a scope of its own, and still ends when the agent does', async () => {
    const { ws, pid, out } = await terminal('', 'cat /proc/$$/cgroup');
    try {
      const scope = SCOPE_LINE.exec(out)?.[1];
      assert.match(scope ?? '', /^tether-terminal-.+\.scope$/, out);
      assert.doesNotMatch(out, /tether-agent\.service/);
      const shellCgroup = (await h.exec(['cat', `/proc/${pid}/cgroup`])).stdout;
      assert.ok(shellCgroup.includes(`/${scope}\n`), 'the shell the agent reported is the one in the scope');
      // The pty is the agent's: the shell still ends with it, as before.
      await h.restartAgent();
      await waitFor('shell ended with the agent', async () => (await h.exec(['kill', '-0', String(pid)], { allowFailure: true })).code !== 0, { timeoutMs: 10_000 });
    } finally {
      ws.close();
    }
  });
});
