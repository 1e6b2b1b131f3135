/**
 * Remote execution on a real agent process: argv without a shell, environment and working
 * directory, stdin, run-as, timeout, kill, bounded output, sync and async modes, per-host runs.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { TestAgent, TestHub, testDatabases, waitFor } from '@tether/testkit';

type TaskView = { id: string; state: string; status: string; ok: boolean | null; exitCode: number | null; signal: string | null; stdout: string; stderr: string; stdoutBytes: number; truncated: boolean; error: string | null; hostname: string };
type JobResult = { job: { id: string; state: string; counts: Record<string, number> }; tasks: TaskView[] };

for (const db of testDatabases()) {
  describe(`exec on one host (${db})`, () => {
    let hub: TestHub;
    let agent: TestAgent;
    let id: string;
    let scratch: string;
    const exec = (body: Record<string, unknown>) => hub.raw('POST', '/api/v1/exec', { target: { hosts: [id] }, ...body });
    const run = async (body: Record<string, unknown>): Promise<TaskView> => {
      const r = await exec(body);
      const text = await r.text();
      assert.equal(r.status, 200, text);
      const j = JSON.parse(text) as JobResult;
      assert.equal(j.tasks.length, 1);
      return j.tasks[0]!;
    };
    before(async () => {
      hub = await TestHub.start({ db });
      scratch = mkdtempSync(join(tmpdir(), 'tether-exec-'));
      agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec', 'files'], fileRoots: [join(scratch, 'root')] });
      id = await agent.waitConnected();
    });
    after(async () => {
      await agent.stop();
      agent.cleanup();
      await hub.cleanup();
      rmSync(scratch, { recursive: true, force: true });
    });

    test('sync: argv, environment and working directory; exit code, stdout and stderr', async () => {
      const t = await run({ command: ['sh', '-c', 'echo "$GREETING from $(pwd)"; echo oops >&2; exit 3'], env: { GREETING: 'hello' }, cwd: scratch });
      assert.equal(t.state, 'done');
      assert.equal(t.status, 'exited');
      assert.equal(t.exitCode, 3);
      assert.equal(t.ok, false);
      assert.equal(t.stdout, `hello from ${scratch}\n`);
      assert.equal(t.stderr, 'oops\n');
    });

    test('arguments are never interpreted by a shell', async () => {
      const marker = join(scratch, 'pwned');
      const evil = `$(touch ${marker}); \`touch ${marker}\`; touch ${marker} && echo x | tee ${marker}`;
      const t = await run({ command: ['echo', evil] });
      assert.equal(t.exitCode, 0);
      assert.equal(t.stdout, evil + '\n');
      assert.equal(existsSync(marker), false);
      // and a command name with shell syntax is a (missing) file name, not a script
      const t2 = await run({ command: [`true; touch ${marker}`] });
      assert.equal(t2.status, 'failed');
      assert.match(t2.error!, /command not found/);
      assert.equal(existsSync(marker), false);
    });

    test('shell only when asked for explicitly', async () => {
      const t = await run({ command: ['echo $((6*7)) | tr 4 X'], shell: true });
      assert.equal(t.stdout, 'X2\n');
      const bad = await exec({ command: ['echo', 'two'], shell: true });
      assert.equal(bad.status, 400);
    });

    test('the environment is clean: the agent’s own variables (its token) do not leak', async () => {
      const t = await run({ command: ['env'] });
      assert.doesNotMatch(t.stdout, /TETHER_TOKEN|TETHER_LOG_LEVEL/);
      assert.match(t.stdout, /^PATH=/m);
      assert.match(t.stdout, /^TETHER_TASK_ID=t_/m);
    });

    test('stdin is fed to the command', async () => {
      const t = await run({ command: ['wc', '-c'], stdin: 'x'.repeat(100_000) });
      assert.equal(t.stdout.trim(), '100000');
    });

    test('run as another user (setuid, sudo-less): uid, gid and HOME switch', async () => {
      const t = await run({ command: ['sh', '-c', 'id -u; id -g; echo $HOME; id -G'], user: 'nobody' });
      assert.equal(t.exitCode, 0, JSON.stringify(t));
      const [uid, gid, home, groups] = t.stdout.trim().split('\n');
      assert.equal(uid, '65534');
      assert.equal(gid, '65534');
      assert.equal(home, '/nonexistent');
      assert.equal(groups, '65534', 'no supplementary groups of the agent carried over');
      const su = await run({ command: ['id', '-un'], user: 'nobody', runAs: 'su' });
      assert.equal(su.stdout.trim(), 'nobody', su.stderr + (su.error ?? ''));
      const ghost = await run({ command: ['id'], user: 'no-such-user' });
      assert.equal(ghost.status, 'failed');
      assert.match(ghost.error!, /no such user/);
    });

    test('timeout ends the whole process group', async () => {
      const t0 = Date.now();
      const t = await run({ command: ['sh', '-c', 'sleep 30 & sleep 30; echo never'], timeoutSec: 1 });
      assert.equal(t.status, 'timeout');
      assert.equal(t.signal, 'SIGTERM');
      assert.ok(Date.now() - t0 < 15_000);
      assert.match(t.error!, /timed out after 1 s/);
    });

    test('output beyond the bound is cut in the middle and marked; byte counts stay exact', async () => {
      const t = await run({ command: ['sh', '-c', 'head -c 1000000 /dev/zero | tr "\\0" a; echo; echo END'], maxOutput: 4096 });
      assert.equal(t.truncated, true);
      assert.equal(t.stdoutBytes, 1_000_005);
      assert.match(t.stdout, /^a{1024}\n…\[\d+ bytes not kept\]…\n/);
      assert.ok(t.stdout.endsWith('a\nEND\n'));
      assert.ok(t.stdout.length < 4200);
    });

    test('a command that does not exist fails with a reason; validation errors are 400', async () => {
      const t = await run({ command: ['/no/such/binary'] });
      assert.equal(t.status, 'failed');
      assert.match(t.error!, /command not found/);
      assert.equal((await exec({ command: [] })).status, 400);
      assert.equal((await exec({ command: ['x'], cwd: 'relative' })).status, 400);
      assert.equal((await exec({ command: ['x'], env: { 'BAD-NAME': '1' } })).status, 400);
      assert.equal((await hub.raw('POST', '/api/v1/exec', { target: { hosts: ['nope'] }, command: ['true'] })).status, 404);
      assert.equal((await hub.raw('POST', '/api/v1/exec', { target: { selector: 'env=none' }, command: ['true'] })).status, 400);
      const missingCwd = await run({ command: ['true'], cwd: '/no/such/dir' });
      assert.equal(missingCwd.status, 'failed');
      assert.match(missingCwd.error!, /does not exist/);
    });

    test('async: job id at once, live output over the stream, kill, record kept', async () => {
      const r = await exec({ command: ['sh', '-c', 'echo started; sleep 60'], mode: 'async' });
      assert.equal(r.status, 202);
      const j = (await r.json()) as JobResult;
      const taskId = j.tasks[0]!.id;
      const ws = new WebSocket(hub.url.replace('http', 'ws') + `/api/v1/jobs/${j.job.id}/stream`, { headers: { authorization: `Bearer ${hub.token}` } });
      const events: any[] = [];
      ws.on('message', (m) => events.push(JSON.parse(String(m))));
      await waitFor(() => events.some((e) => e.type === 'output' && e.data.includes('started')), 'live output', 10_000);
      const live = await hub.api('GET', `/api/v1/tasks/${taskId}`);
      assert.equal(live.task.state, 'running');
      assert.ok(live.task.pid > 0);
      assert.match(live.live.map((c: { data: string }) => c.data).join(''), /started/);
      const k = await hub.api('POST', `/api/v1/tasks/${taskId}/kill`, { signal: 'SIGKILL' });
      assert.equal(k.result, 'sent');
      await waitFor(() => events.some((e) => e.type === 'job' && e.job.state !== 'running'), 'job end event', 10_000);
      const t = (await hub.api('GET', `/api/v1/tasks/${taskId}`)).task;
      assert.equal(t.status, 'killed');
      assert.equal(t.signal, 'SIGKILL');
      assert.equal(t.stdout, 'started\n');
      const runs = await hub.api('GET', `/api/v1/hosts/${id}/tasks`);
      assert.ok(runs.tasks.some((x: { id: string }) => x.id === taskId));
      const job = await hub.api('GET', `/api/v1/jobs/${j.job.id}`);
      assert.equal(job.job.state, 'failed');
      assert.equal(job.job.createdBy, 'admin');
      assert.deepEqual(job.job.spec.command, ['sh', '-c', 'echo started; sleep 60']);
      assert.equal((await hub.raw('POST', `/api/v1/tasks/${taskId}/kill`, {})).status, 409);
      ws.close();
    });

    test('deleteAfter removes the file once the command ended, only inside the file roots', async () => {
      const root = join(scratch, 'root');
      mkdirSync(root, { recursive: true });
      const script = join(root, 'job.sh');
      writeFileSync(script, 'echo from script\n');
      const t = await run({ command: ['sh', script], deleteAfter: script });
      assert.equal(t.stdout, 'from script\n');
      assert.equal(existsSync(script), false);
      const outside = join(scratch, 'keep.txt');
      writeFileSync(outside, 'x');
      const refused = await run({ command: ['true'], deleteAfter: outside });
      assert.equal(refused.status, 'refused');
      assert.match(refused.error!, /outside this agent's file roots/);
      assert.equal(existsSync(outside), true);
      symlinkSync(outside, join(root, 'link'));
      const viaLink = await run({ command: ['true'], deleteAfter: join(root, 'link') });
      assert.equal(viaLink.status, 'refused', 'a link out of the roots is followed and refused');
      assert.equal(existsSync(outside), true);
    });

    test('the callback URL gets the job summary when it ends', async () => {
      const got: string[] = [];
      const srv = createServer((req, res) => {
        let b = '';
        req.on('data', (c: Buffer) => (b += c.toString()));
        req.on('end', () => {
          got.push(b);
          res.end('ok');
        });
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      try {
        const port = (srv.address() as AddressInfo).port;
        const r = await exec({ command: ['echo', 'cb'], callbackUrl: `http://127.0.0.1:${port}/done` });
        const j = (await r.json()) as JobResult;
        await waitFor(() => got.length > 0, 'callback', 10_000);
        const body = JSON.parse(got[0]!) as { job: { id: string; state: string }; tasks: { status: string; exitCode: number }[] };
        assert.equal(body.job.id, j.job.id);
        assert.equal(body.job.state, 'succeeded');
        assert.deepEqual(body.tasks.map((x) => [x.status, x.exitCode]), [['exited', 0]]);
      } finally {
        srv.close();
      }
    });

    test('env values and stdin are not shown back in job views', async () => {
      const r = await exec({ command: ['true'], env: { SECRET: 'hunter2' }, stdin: 'pass' });
      const j = (await r.json()) as { job: { spec: { env: Record<string, string>; stdin: string } } };
      assert.equal(j.job.spec.env.SECRET, '[redacted]');
      assert.equal(j.job.spec.stdin, '[4 bytes]');
    });
  });
}
