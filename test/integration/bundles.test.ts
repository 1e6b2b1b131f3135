/**
 * Script bundles end to end: upload a tar with a manifest, run it on a real agent (which fetches
 * it over a signed transfer, checks its sha256, unpacks it in a fresh directory, runs the entry
 * there and removes it), and refuse archives that could write outside their directory.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestAgent, TestHub, tempDir } from '@tether/testkit';

type Task = { status: string; exitCode: number | null; stdout: string; stderr: string; error: string | null; ok: boolean };

describe('script bundles', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let id: string;
  const dir = tempDir('tether-bundle-');
  const upload = (file: string, name?: string) =>
    fetch(`${hub.url}/api/v1/bundles${name ? `?name=${name}` : ''}`, { method: 'POST', headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/x-tar' }, body: readFileSync(file) });
  const tarOf = (src: string, out: string) => execFileSync('tar', ['-cf', out, '-C', src, '.']);

  before(async () => {
    hub = await TestHub.start();
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'exec'] });
    id = await agent.waitConnected();
    const src = join(dir, 'src');
    mkdirSync(join(src, 'lib'), { recursive: true });
    writeFileSync(join(src, 'manifest.json'), JSON.stringify({ name: 'hello', entry: ['./run.sh', 'default-arg'] }));
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho "args: $*"\necho "cwd: $(pwd)"\ncat lib/data.txt\necho "task: $TETHER_TASK_ID"\n');
    chmodSync(join(src, 'run.sh'), 0o755);
    writeFileSync(join(src, 'lib', 'data.txt'), 'bundled data\n');
    tarOf(src, join(dir, 'ok.tar'));
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    await hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('upload, run with the manifest entry and with given args; the agent cleans up after itself', async () => {
    const r = await upload(join(dir, 'ok.tar'));
    assert.equal(r.status, 201, await r.clone().text());
    const b = (await r.json()) as { id: string; name: string; files: number; sha256: string; manifest: { entry: string[] } };
    assert.equal(b.name, 'hello');
    assert.equal(b.files, 3);
    assert.deepEqual(b.manifest.entry, ['./run.sh', 'default-arg']);
    const list = await hub.api<{ bundles: { id: string }[] }>('GET', '/api/v1/bundles');
    assert.ok(list.bundles.some((x) => x.id === b.id));

    const run = await hub.api<{ job: { state: string }; tasks: Task[] }>('POST', `/api/v1/bundles/${b.id}/run`, { target: { hosts: [id] } });
    const t = run.tasks[0]!;
    assert.equal(t.status, 'exited', JSON.stringify(t));
    assert.equal(t.exitCode, 0, t.stderr);
    const [args, cwd, data, task] = t.stdout.trim().split('\n');
    assert.equal(args, 'args: default-arg');
    assert.match(cwd!, /\/bundles\/t_[A-Za-z0-9_-]+$/);
    assert.equal(data, 'bundled data');
    assert.match(task!, /^task: t_/);
    assert.equal(existsSync(cwd!.slice(5)), false, 'the bundle directory is gone');
    assert.deepEqual(readdirSync(join(agent.stateDir, 'bundles')), [], 'no archive or directory left behind');

    const withArgs = await hub.api<{ tasks: Task[] }>('POST', `/api/v1/bundles/${b.id}/run`, { target: { hosts: [id] }, args: ['./run.sh', 'a', 'b c'], env: { X: '1' } });
    assert.match(withArgs.tasks[0]!.stdout, /^args: a b c$/m);
  });

  test('archives with links or paths out of their directory are refused at upload', async () => {
    const src = join(dir, 'evil');
    mkdirSync(src);
    writeFileSync(join(src, 'manifest.json'), '{"entry":["./x"]}');
    symlinkSync('/etc/passwd', join(src, 'x'));
    tarOf(src, join(dir, 'link.tar'));
    const r = await upload(join(dir, 'link.tar'));
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { message: string }).message, /symbolic link/);
    const noManifest = join(dir, 'nomanifest');
    mkdirSync(noManifest);
    writeFileSync(join(noManifest, 'run.sh'), 'true');
    tarOf(noManifest, join(dir, 'nm.tar'));
    const r2 = await upload(join(dir, 'nm.tar'));
    assert.equal(r2.status, 400);
    assert.match(((await r2.json()) as { message: string }).message, /manifest\.json/);
    writeFileSync(join(dir, 'junk.tar'), 'not a tar archive at all'.repeat(40));
    assert.equal((await upload(join(dir, 'junk.tar'))).status, 400);
  });

  test('an agent without exec refuses a bundle', async () => {
    const watcher = TestAgent.start(hub.url, { token: await hub.enrollToken() });
    try {
      const wid = await watcher.waitConnected();
      const b = (await (await upload(join(dir, 'ok.tar'))).json()) as { id: string };
      const run = await hub.api<{ tasks: Task[] }>('POST', `/api/v1/bundles/${b.id}/run`, { target: { hosts: [wid] } });
      assert.equal(run.tasks[0]!.status, 'refused');
    } finally {
      await watcher.stop();
      watcher.cleanup();
    }
  });
});
