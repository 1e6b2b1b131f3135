/**
 * `tether exec`, `tether job …`, `tether task …` and `tether runs` against a real hub and agents.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { TestAgent, TestHub, cli, runCli, tempDir, waitFor } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let yes: TestAgent;
let no: TestAgent;
let yesId: string;
let noId: string;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-cli-exec-');
  env = await hub.cliEnv(dir);
  yes = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { role: 'worker' } }), capabilities: ['metrics', 'exec'] });
  no = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { role: 'watcher' } }) });
  yesId = await yes.waitConnected();
  noId = await no.waitConnected();
});
after(async () => {
  for (const a of [yes, no]) {
    await a.stop();
    a.cleanup();
  }
  await hub.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('exec on one host prints its output as is and exits with 0', async () => {
  const r = await cli(['exec', '-t', yesId, '--', 'sh', '-c', 'echo one; echo two >&2'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one\n');
  assert.equal(r.stderr, 'two\n');
});

test('exec across hosts prefixes lines with the hostname and fails when any host fails', async () => {
  const r = await cli(['exec', '-t', 'role in (worker,watcher)', '--', 'echo', 'hi there'], env);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^\S+ +\| hi there$/m);
  assert.match(r.stderr, /refused: this host’s agent does not allow exec/);
  assert.match(r.stderr, /1\/2 succeeded/);
});

test('options reach the command: env, cwd, shell, stdin, timeout', async () => {
  const r = await cli(['exec', '-t', 'role=worker', '-e', 'A=1', '-e', 'B=two words', '--cwd', '/tmp', '--shell', '--', 'echo "$A $B $(pwd)"; cat'], env, 'from stdin\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '1 two words /tmp\n');
  const withStdin = await cli(['exec', '-t', 'role=worker', '--stdin', '--', 'cat'], env, 'piped\n');
  assert.equal(withStdin.stdout, 'piped\n');
  const slow = await cli(['exec', '-t', 'role=worker', '--timeout', '1s', '--', 'sleep', '20'], env);
  assert.equal(slow.code, 124, 'one host that hit --timeout: 124, as timeout(1)');
  assert.match(slow.stderr, /timeout \(SIGTERM\): timed out after 1 s/);
});

test('--json gives the finished job; bad arguments are clear errors', async () => {
  const r = await cli(['exec', '-t', 'role=worker', '--json', '--', 'uname', '-s'], env);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { job: { state: string }; tasks: { stdout: string }[] };
  assert.equal(j.job.state, 'succeeded');
  assert.equal(j.tasks[0]!.stdout, 'Linux\n');
  const both = await cli(['exec', '-t', 'x', '--parallel', '2', '--sequence', '--', 'true'], env);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /choose one of/);
  const sel = await cli(['exec', '-t', 'env in (a', '--', 'true'], env);
  assert.equal(sel.code, 1);
  const none = await cli(['exec', '-t', 'role=nothing', '--', 'true'], env);
  assert.match(none.stderr, /matches no hosts/);
});

test('streamed output arrives while the command runs; task kill ends it; job ls/show and runs record it', async () => {
  const p = runCli(['exec', '-t', yesId, '--', 'sh', '-c', 'echo begin; sleep 60; echo never'], { env });
  await waitFor(() => p.lines.some((l) => l === 'begin'), 'streamed first line', 15_000);
  const jobs = JSON.parse((await cli(['job', 'ls', '--state', 'running', '--json'], env)).stdout) as { jobs: { id: string }[] };
  assert.equal(jobs.jobs.length, 1);
  const show = JSON.parse((await cli(['job', 'show', jobs.jobs[0]!.id, '--json'], env)).stdout) as { tasks: { id: string; state: string }[] };
  assert.equal(show.tasks[0]!.state, 'running');
  const kill = await cli(['task', 'kill', show.tasks[0]!.id, '-s', 'SIGKILL'], env);
  assert.equal(kill.code, 0, kill.stderr);
  const code = await p.exited;
  assert.equal(code, 128 + 9, 'one host, ended by SIGKILL: 128+9, as a shell reports it');
  assert.ok(p.lines.some((l) => /killed \(SIGKILL\)/.test(l)));
  const runs = await cli(['runs', yesId], env);
  assert.match(runs.stdout, /killed \(SIGKILL\)/);
  const human = await cli(['job', 'show', jobs.jobs[0]!.id, '--output'], env);
  assert.match(human.stdout, /begin/);
  void noId;
});
