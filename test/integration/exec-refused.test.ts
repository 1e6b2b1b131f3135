/**
 * Jobs on hosts whose agents do not allow exec: a job that such hosts would stop before it did
 * anything (rolling, sequence) is refused at creation naming them, and `skipRefused` (`tether exec
 * --skip-refused`) runs it on the others.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { TestAgent, TestHub, cli, simFacts, newSimIdentity, simConnect, tempDir, type RawAgent } from '@tether/testkit';

let hub: TestHub;
let dir: string;
let env: NodeJS.ProcessEnv;
let yes: TestAgent;
let no: TestAgent;
let yesId: string;
let noId: string;
let noName: string;
before(async () => {
  hub = await TestHub.start();
  dir = tempDir('tether-exec-refused-');
  env = await hub.cliEnv(dir);
  yes = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { tier: 'web' } }), capabilities: ['metrics', 'exec'] });
  no = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { tier: 'web' } }) });
  yesId = await yes.waitConnected();
  noId = await no.waitConnected();
  noName = (await hub.api('GET', `/api/v1/hosts/${noId}`)).hostname;
});
after(async () => {
  for (const a of [yes, no]) {
    await a?.stop();
    a?.cleanup();
  }
  await hub?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('a rolling job with a host whose agent does not allow exec is refused at creation, naming the host', async () => {
  const r = await hub.raw('POST', '/api/v1/exec', { target: { hosts: [yesId, noId] }, command: ['true'], strategy: { kind: 'rolling', batchSize: 1 }, mode: 'async' });
  const body = (await r.json()) as { error: string; message: string; hosts: { id: string; hostname: string }[]; count: number };
  assert.equal(r.status, 400, JSON.stringify(body));
  assert.equal(body.error, 'hosts_refuse_exec');
  assert.deepEqual(body.hosts, [{ id: noId, hostname: noName }]);
  assert.equal(body.count, 1);
  assert.ok(body.message.includes(`1 of 2 hosts would refuse this job`), body.message);
  assert.ok(body.message.includes(noName), body.message);
  assert.match(body.message, /skipRefused/);
  assert.equal((await hub.api('GET', '/api/v1/jobs')).jobs.length, 0, 'no job was made');

  const c = await cli(['exec', '-t', 'tier=web', '--rolling', '1', '--', 'true'], env);
  assert.equal(c.code, 1);
  assert.ok(c.stderr.includes(noName), c.stderr);
  assert.match(c.stderr, /--skip-refused/);
  assert.match(c.stderr, /\(400 hosts_refuse_exec\)/);

  // A parallel job does not stop at a failure: it runs, and the refusing host's task says why.
  const par = await cli(['exec', '-t', 'tier=web', '--', 'true'], env);
  assert.equal(par.code, 1);
  assert.match(par.stderr, /refused: this host’s agent does not allow exec/);
});

test('skipRefused runs the job on the other hosts; the left-out ones are skipped, not failures', async () => {
  const job = await hub.api('POST', '/api/v1/exec', { target: { hosts: [noId, yesId] }, command: ['echo', 'ran'], strategy: { kind: 'rolling', batchSize: 1 }, skipRefused: true, mode: 'sync' });
  assert.equal(job.job.state, 'succeeded', JSON.stringify(job.job));
  const byHost = new Map(job.tasks.map((t: any) => [t.hostId, t]));
  assert.equal((byHost.get(yesId) as any).stdout, 'ran\n');
  assert.equal((byHost.get(yesId) as any).batch, 0, 'the runnable host takes the first batch');
  assert.equal((byHost.get(noId) as any).state, 'skipped');
  assert.equal((byHost.get(noId) as any).status, 'refused');
  assert.match((byHost.get(noId) as any).error, /left out/);

  const c = await cli(['exec', '-t', 'tier=web', '--sequence', '--skip-refused', '--', 'echo', 'hi'], env);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /hi$/m);
  assert.ok(c.stderr.includes(`left out (their agents do not allow exec): ${noName}`), c.stderr);

  const none = await hub.raw('POST', '/api/v1/exec', { target: { hosts: [noId] }, command: ['true'], skipRefused: true, mode: 'async' });
  assert.equal(none.status, 400);
  assert.match(((await none.json()) as { message: string }).message, /nothing would run/);
});

test('many refusing hosts: the answer names 50 of them and counts them all', async () => {
  const token = await hub.enrollToken({ labels: { tier: 'sim' } });
  const sims: RawAgent[] = [];
  try {
    for (let i = 0; i < 55; i++) sims.push(await simConnect(hub.url, newSimIdentity(), { token, facts: simFacts(`sim-${String(i).padStart(2, '0')}`, `10.9.0.${i + 1}`, `02:00:00:00:09:${(i + 16).toString(16)}`) }));
    const r = await hub.raw('POST', '/api/v1/exec', { target: { selector: 'tier in (web,sim)' }, command: ['true'], strategy: { kind: 'sequence' }, mode: 'async' });
    const body = (await r.json()) as { message: string; hosts: { hostname: string }[]; count: number };
    assert.equal(r.status, 400);
    assert.equal(body.count, 56);
    assert.equal(body.hosts.length, 50);
    assert.match(body.message, /^56 of 57 hosts would refuse this job .* and 6 more\. Leave them out/);
  } finally {
    for (const s of sims) s.close();
  }
});

test('a script bundle run is refused the same way, and skipRefused runs it on the others', async () => {
  const src = tempDir('tether-bundle-src-');
  writeFileSync(join(src, 'manifest.json'), JSON.stringify({ entry: ['./run.sh'] }));
  writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho bundle-ran\n', { mode: 0o755 });
  const tar = execFileSync('tar', ['-C', src, '-c', 'manifest.json', 'run.sh']);
  rmSync(src, { recursive: true, force: true });
  const up = await fetch(`${hub.url}/api/v1/bundles?name=hello`, { method: 'POST', headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/x-tar' }, body: tar });
  assert.equal(up.status, 201);
  const bundle = (await up.json()) as { id: string };
  const refused = await hub.raw('POST', `/api/v1/bundles/${bundle.id}/run`, { target: { hosts: [yesId, noId] }, strategy: { kind: 'rolling', batchSize: 1 }, mode: 'async' });
  const body = (await refused.json()) as { error: string; hosts: { id: string }[] };
  assert.equal(refused.status, 400);
  assert.equal(body.error, 'hosts_refuse_exec');
  assert.deepEqual(body.hosts.map((h) => h.id), [noId]);
  const run = await hub.api('POST', `/api/v1/bundles/${bundle.id}/run`, { target: { hosts: [yesId, noId] }, strategy: { kind: 'rolling', batchSize: 1 }, skipRefused: true, mode: 'sync' });
  assert.equal(run.job.state, 'succeeded', JSON.stringify(run.job));
  const byHost = new Map(run.tasks.map((t: any) => [t.hostId, t]));
  assert.equal((byHost.get(yesId) as any).stdout, 'bundle-ran\n');
  assert.equal((byHost.get(noId) as any).state, 'skipped');
});
