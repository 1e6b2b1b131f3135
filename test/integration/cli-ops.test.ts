/**
 * The CLI as scripts and terminals meet it, against a real hub and agent: how the password is
 * taken, exit codes, closed pipes, table widths, and a hub that stops answering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ADMIN_PASSWORD, BIN, TestAgent, TestHub, cli, runCli, tempDir } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let agent: TestAgent;
let agentId: string;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-cli-ops-');
  env = await hub.cliEnv(dir);
  agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec', 'process'] });
  agentId = await agent.waitConnected();
});
after(async () => {
  await agent?.stop();
  agent?.cleanup();
  await hub?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('login --password-stdin reads standard input even when TETHER_PASSWORD is set: the explicit flag wins', async () => {
  const own = { ...env, TETHER_CLI_CONFIG: join(dir, 'stdin.json'), TETHER_PASSWORD: 'not-the-password' };
  const r = await cli(['login', '--hub', hub.url, '--password-stdin'], own, ADMIN_PASSWORD + '\n');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /logged in/);
  // Without the flag the variable is what counts (and here it is wrong).
  const fromEnv = await cli(['login', '--hub', hub.url], own, ADMIN_PASSWORD + '\n');
  assert.equal(fromEnv.code, 1);
  assert.match(fromEnv.stderr, /wrong username or password/);
});

test("exec on one host exits with the command's own status; a signal gives 128+N, --timeout 124; several hosts: 0 or 1", async () => {
  const three = await cli(['exec', '-t', agentId, '--', 'sh', '-c', 'exit 3'], env);
  assert.equal(three.code, 3, three.stderr);
  assert.match(three.stderr, /exit 3/);
  const killed = await cli(['exec', '-t', agentId, '--', 'sh', '-c', 'kill -KILL $$'], env);
  assert.equal(killed.code, 128 + 9, killed.stderr);
  const slow = await cli(['exec', '-t', agentId, '--timeout', '1s', '--', 'sleep', '20'], env);
  assert.equal(slow.code, 124, slow.stderr);
  // The same host named twice is still one host; a job on several hosts says 0 or 1.
  const other = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec'] });
  try {
    const otherId = await other.waitConnected();
    const many = await cli(['exec', '-t', `${agentId},${otherId}`, '--', 'sh', '-c', 'exit 3'], env);
    assert.equal(many.code, 1, many.stderr);
    assert.match(many.stderr, /0\/2 succeeded/);
    const ok = await cli(['exec', '-t', `${agentId},${otherId}`, '--', 'true'], env);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await other.stop();
    other.cleanup();
  }
});

test('a reader that closes the pipe early ends the command quietly with status 0 (no EPIPE crash)', async () => {
  for (const args of [['hosts'], ['proc', 'ls', agentId], ['exec', '-t', agentId, '--', 'sh', '-c', 'seq 1 100000']]) {
    const p = runCli(args, { env });
    p.child.stdout!.destroy(); // the read end closes before the command has written anything
    const code = await p.exited;
    assert.equal(code, 0, `${args.join(' ')}: ${p.output()}`);
    assert.doesNotMatch(p.output(), /EPIPE|Error/, args.join(' '));
  }
});

test('tables are cut to the terminal width (identifiers whole), to COLUMNS when piped, never with --wide or when piped without COLUMNS', async () => {
  const marker = `tt-wide-${process.pid}-${'x'.repeat(400)}`;
  const long: ChildProcess = spawn('sh', ['-c', 'sleep 300', marker], { stdio: 'ignore' });
  try {
    const mine = (stdout: string) => stdout.split('\n').find((l) => l.startsWith(`${long.pid} `) || l.includes(` ${long.pid} `));
    const piped = await cli(['proc', 'ls', agentId], env);
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(mine(piped.stdout)?.includes(marker), 'piped without COLUMNS: whole lines, as ps gives grep');

    const cols = await cli(['proc', 'ls', agentId], { ...env, COLUMNS: '100' });
    assert.equal(cols.code, 0, cols.stderr);
    const lines = cols.stdout.trimEnd().split('\n');
    assert.ok(lines.every((l) => l.length <= 100), `every line within COLUMNS=100: ${lines.map((l) => l.length).sort((a, b) => b - a)[0]}`);
    const row = mine(cols.stdout);
    assert.ok(row, 'the process is listed with its pid whole');
    assert.match(row!, /sh -c sleep 300 tt-wide-\d+-x+…/, 'the command cut, marked with …');
    assert.match(lines[0]!, /^PID +USER +CPU% +RSS +S +COMMAND +LISTEN$/, 'headings line up with the cut columns');

    const wide = await cli(['proc', 'ls', agentId, '--wide'], { ...env, COLUMNS: '100' });
    assert.ok(mine(wide.stdout)?.includes(marker), '--wide: never cut');

    // On a terminal: its width (a pty from script(1), 90 columns).
    const envs = Object.entries({ ...env, TETHER_NODE: process.execPath }).map(([k, v]) => `${k}=${JSON.stringify(v ?? '')}`).join(' ');
    const tty = spawnSync('script', ['-qec', `stty cols 90; env -u COLUMNS ${envs} sh ${BIN} proc ls ${agentId}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(tty.status, 0, tty.stderr + tty.stdout);
    const ttyLines = tty.stdout.replace(/\r/g, '').trimEnd().split('\n');
    assert.ok(ttyLines.length > 3, tty.stdout);
    assert.ok(ttyLines.every((l) => l.length <= 90), `every line within the terminal's 90 columns: ${Math.max(...ttyLines.map((l) => l.length))}`);
    assert.ok(ttyLines.some((l) => /tt-wide-\d+-x*…/.test(l)), 'the long command is cut on the terminal too');
  } finally {
    long.kill();
  }
});

test('signals are taken as TERM or SIGTERM alike: process signal, task kill, docker kill (API) and the CLI', async () => {
  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  const gone = new Promise((r) => sleeper.on('exit', (_c, sig) => r(sig)));
  const r = await hub.raw('POST', `/api/v1/hosts/${agentId}/ps/${sleeper.pid}/signal`, { signal: 'TERM' });
  assert.equal(r.status, 200, await r.text());
  assert.equal(await gone, 'SIGTERM');
  const bad = await hub.raw('POST', `/api/v1/hosts/${agentId}/ps/${sleeper.pid}/signal`, { signal: 'NOPE' });
  assert.equal(bad.status, 400);

  const run = async (signal: string, cliArgs: string[] | undefined) => {
    const job = await hub.api('POST', '/api/v1/exec', { target: { hosts: [agentId] }, command: ['sleep', '60'], mode: 'async' });
    const task = job.tasks[0].id as string;
    const started = Date.now();
    while ((await hub.api('GET', `/api/v1/tasks/${task}`)).task.state !== 'running') {
      assert.ok(Date.now() - started < 15_000, 'task running');
      await new Promise((res) => setTimeout(res, 50));
    }
    if (cliArgs) {
      const k = await cli(['task', 'kill', task, ...cliArgs], env);
      assert.equal(k.code, 0, k.stderr);
    } else assert.equal((await hub.api('POST', `/api/v1/tasks/${task}/kill`, { signal })).result, 'sent');
    for (;;) {
      const t = (await hub.api('GET', `/api/v1/tasks/${task}`)).task;
      if (t.state === 'done') return t;
      assert.ok(Date.now() - started < 15_000, 'task ended');
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  assert.equal((await run('KILL', undefined)).signal, 'SIGKILL');
  assert.equal((await run('', ['-s', 'hup'])).signal, 'SIGHUP');
  const unknown = await cli(['task', 'kill', 'any', '-s', 'NOPE'], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown signal "NOPE": one of TERM, KILL/);

  // Docker's kill takes the short form too: past validation, this agent refuses (no docker capability).
  const dk = await hub.raw('POST', `/api/v1/hosts/${agentId}/docker/containers/abc/kill?signal=KILL`);
  assert.equal(dk.status, 403, await dk.text());
});

test('a hub frozen with SIGSTOP: commands end with "hub not responding (no answer in N s)", exit 1, never hang; streams too', async () => {
  const exact = (s: string) => `tether: hub not responding (no answer in ${s}) at ${hub.url}\n`;
  const stop = () => process.kill(hub.proc.pid, 'SIGSTOP');
  const cont = () => process.kill(hub.proc.pid, 'SIGCONT');
  const timed = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const t0 = Date.now();
    const r = await cli(args, { ...env, ...extra }, undefined, 40_000);
    return { ...r, ms: Date.now() - t0 };
  };
  // Streaming first: the job's output flows, then the hub stops answering.
  const p = runCli(['--request-timeout', '1s', 'exec', '-t', agentId, '--', 'sh', '-c', 'echo begin; sleep 30'], { env });
  await p.waitForLine(/^begin$/, 15_000);
  stop();
  try {
    const t0 = Date.now();
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('hung'), 15_000))]);
    assert.equal(code, 1, p.output());
    assert.ok(Date.now() - t0 < 8000, `the stream noticed within ${Date.now() - t0} ms`);
    assert.match(p.output(), /hub not responding \(no answer in 1 s\) at http:\/\/127\.0\.0\.1:\d+; the job goes on: follow it with `tether job watch j_/);

    const viaEnv = await timed(['hosts'], { TETHER_REQUEST_TIMEOUT: '1s' });
    assert.equal(viaEnv.code, 1);
    assert.equal(viaEnv.stderr, exact('1 s'));
    assert.ok(viaEnv.ms < 8000, `${viaEnv.ms} ms`);
    const viaFlag = await timed(['hosts', '--request-timeout', '1500ms'], { TETHER_REQUEST_TIMEOUT: '30s' });
    assert.equal(viaFlag.stderr, exact('1.5 s'), 'the flag wins over the environment');
    // A manager call may wait on its host for minutes, but only while the hub answers.
    const manager = await timed(['--request-timeout', '1s', 'proc', 'ls', agentId]);
    assert.equal(manager.code, 1);
    assert.equal(manager.stderr, exact('1 s'));
    assert.ok(manager.ms < 9000, `${manager.ms} ms`);
    const dflt = await timed(['hosts']);
    assert.equal(dflt.code, 1);
    assert.equal(dflt.stderr, exact('15 s'), 'the default is 15 s');
    assert.ok(dflt.ms >= 15_000 && dflt.ms < 25_000, `${dflt.ms} ms`);
  } finally {
    cont();
  }
  const after = await cli(['hosts'], env);
  assert.equal(after.code, 0, 'the hub answers again once it runs');
  const bad = await cli(['hosts', '--request-timeout', 'soon'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--request-timeout: expected a duration such as 15s/);
});
