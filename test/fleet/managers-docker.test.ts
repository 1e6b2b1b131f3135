// The Docker manager against a real engine: Podman's Docker-compatible API (test/fleet/setup.sh
// starts it), driven through the hub's API and the CLI by a real agent whose docker_socket points
// at it. Containers are made from the fleet's host image (no registry here) and labelled with this
// test's pid, so that prunes and cleanup touch nothing else on the shared engine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestAgent, TestHub, cli, waitFor } from '@tether/testkit';
import { fleetEnv, type FleetEnv } from './env.js';
import { run } from './exec.js';

const LABEL = `tether.test=${process.pid}`;
const enc = encodeURIComponent;

describe('docker manager (Podman Docker API)', () => {
  let hub: TestHub;
  let env: FleetEnv;
  let agent: TestAgent;
  let locked: TestAgent;
  let readOnly: TestAgent;
  let noEngine: TestAgent;
  let importer: TestAgent;
  let roots: string;
  let id: string;
  const ids: Record<string, string> = {};
  const name = `tt-${process.pid}-app`;
  const tag = `localhost/tether-test-${process.pid}:gone`;
  const imported = `localhost/tether-import-${process.pid}:v1`;
  let cliEnv: NodeJS.ProcessEnv;

  const url = (host: string, p: string) => `/api/v1/hosts/${host}/docker${p}`;
  const status = async (method: string, path: string, body?: unknown) => {
    const r = await hub.raw(method, path, body);
    return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, any> };
  };

  before(async () => {
    env = await fleetEnv();
    hub = await TestHub.start();
    const toml = (extra = '') => `docker_socket = ${JSON.stringify(env.socket)}\n${extra}`;
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker'], toml: toml() });
    locked = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics'], toml: toml() });
    readOnly = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker'], toml: toml('docker_read_only = true') });
    noEngine = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker'], toml: 'docker_socket = "/nonexistent/docker.sock"' });
    roots = mkdtempSync(join(tmpdir(), 'tether-import-'));
    importer = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker', 'files'], toml: toml(`file_roots = [${JSON.stringify(roots)}]`) });
    for (const [k, a] of Object.entries({ agent, locked, readOnly, noEngine, importer })) {
      ids[k] = await a.waitConnected(20_000);
      await hub.waitOnline(ids[k]!);
    }
    id = ids.agent!;
    cliEnv = { TETHER_HUB: hub.url, TETHER_SESSION: hub.token, HOME: agent.stateDir };
  });

  after(async () => {
    const r = await run('podman', ['ps', '-aq', '--filter', `label=${LABEL}`], { allowFailure: true });
    const left = r.stdout.split('\n').filter(Boolean);
    if (left.length) await run('podman', ['rm', '-f', '-t', '0', ...left], { allowFailure: true });
    await run('podman', ['rmi', tag], { allowFailure: true });
    await run('podman', ['rmi', imported], { allowFailure: true });
    for (const a of [agent, locked, readOnly, noEngine, importer]) await a?.stop();
    await hub?.cleanup();
    for (const a of [agent, locked, readOnly, noEngine, importer]) a?.cleanup();
    if (roots) rmSync(roots, { recursive: true, force: true });
  });

  test('info names the engine; a host without a Docker socket answers 409 unavailable, one without the capability 403 refused', async () => {
    const info = await hub.api('GET', url(id, ''));
    assert.ok(info.version.ApiVersion, 'the engine reports its API version');
    assert.equal(info.readOnly, false);
    const none = await status('GET', url(ids.noEngine!, '/containers'));
    assert.equal(none.status, 409);
    assert.equal(none.body.error, 'unavailable');
    assert.match(none.body.message, /no Docker engine.*\/nonexistent\/docker\.sock/);
    const refused = await status('GET', url(ids.locked!, '/containers'));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'refused');
    assert.match(refused.body.message, /does not allow docker/);
  });

  test('run a container (name, env, labels, restart policy); list, inspect, logs demultiplexed, top, stats', async () => {
    const created = await hub.api('POST', url(id, '/containers'), {
      image: env.image,
      name,
      command: ['/bin/sh', '-c', 'echo "out $GREETING"; echo err >&2; while true; do echo tick; sleep 0.2; done'],
      env: { GREETING: 'hello' },
      labels: { 'tether.test': String(process.pid) },
      restart: 'no',
      start: true,
    });
    assert.match(created.id, /^[0-9a-f]{64}$/);
    const list = await hub.api('GET', url(id, '/containers'));
    const row = list.containers.find((c: { names: string[] }) => c.names.includes(name));
    assert.ok(row, 'listed among running containers');
    assert.equal(row.state, 'running');
    assert.equal(row.labels['tether.test'], String(process.pid));
    const inspect = await hub.api('GET', url(id, `/containers/${name}`));
    assert.equal(inspect.Id, created.id);
    assert.ok(inspect.Config.Env.includes('GREETING=hello'));

    const logs = await waitFor(async () => {
      const l = await hub.api('GET', url(id, `/containers/${name}/logs?tail=100`));
      return l.logs.some((c: { data: string }) => c.data.includes('tick')) ? l : undefined;
    }, 'logs with ticks', 15_000, 300);
    const out = logs.logs.filter((c: { stream: string }) => c.stream === 'stdout').map((c: { data: string }) => c.data).join('');
    const err = logs.logs.filter((c: { stream: string }) => c.stream === 'stderr').map((c: { data: string }) => c.data).join('');
    assert.match(out, /^out hello\n/, 'stdout, with no frame headers left in it');
    assert.equal(err, 'err\n', 'stderr apart from stdout');

    const top = await hub.api('GET', url(id, `/containers/${name}/top`));
    assert.ok(top.titles.length > 0);
    assert.ok(top.processes.some((p: string[]) => p.join(' ').includes('sh')), `top shows the shell: ${JSON.stringify(top.processes)}`);
    const stats = await hub.api('GET', url(id, `/containers/${name}/stats`));
    assert.ok(stats.memoryBytes > 0, `memory in use: ${JSON.stringify(stats)}`);
    assert.ok(stats.pids >= 1);
  });

  test('logs follow: new lines are streamed to the client as they are written', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${hub.url}${url(id, `/containers/${name}/logs?follow=true&tail=0`)}`, { headers: { authorization: `Bearer ${hub.token}` }, signal: ctrl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const t0 = Date.now();
    while ((text.match(/tick/g) ?? []).length < 3 && Date.now() - t0 < 10_000) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    assert.ok((text.match(/tick/g) ?? []).length >= 3, `new lines arrive while following: ${JSON.stringify(text)}`);
    ctrl.abort();
    await waitFor(() => agent.proc.lines.length > 0, 'agent alive');
  });

  test('pause, unpause, stop, start, restart, kill, rename, remove; a bad container id is 400, a missing one 404', async () => {
    const state = async (ref: string) => (await hub.api('GET', url(id, `/containers/${ref}`))).State.Status as string;
    await hub.api('POST', url(id, `/containers/${name}/pause`));
    assert.equal(await state(name), 'paused');
    await hub.api('POST', url(id, `/containers/${name}/unpause`));
    assert.equal(await state(name), 'running');
    await hub.api('POST', url(id, `/containers/${name}/stop?timeoutSec=1`));
    assert.equal(await state(name), 'exited');
    await hub.api('POST', url(id, `/containers/${name}/start`));
    assert.equal(await state(name), 'running');
    await hub.api('POST', url(id, `/containers/${name}/restart?timeoutSec=1`));
    assert.equal(await state(name), 'running');
    await hub.api('POST', url(id, `/containers/${name}/kill?signal=SIGKILL`));
    await waitFor(async () => (await state(name)) === 'exited', 'killed container exited', 10_000, 200);
    const renamed = `${name}-2`;
    await hub.api('POST', url(id, `/containers/${name}/rename`), { name: renamed });
    assert.equal((await status('GET', url(id, `/containers/${name}`))).status, 404, 'the old name is gone');
    assert.equal(await state(renamed), 'exited');

    for (const bad of ['-rf', 'a;b', '.hidden', '$(id)']) {
      const r = await status('POST', url(id, `/containers/${enc(bad)}/start`));
      assert.equal(r.status, 400, `${bad} is refused before it reaches the agent`);
    }
    const missing = await status('POST', url(id, `/containers/no-such-container-${process.pid}/start`));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');

    await hub.api('DELETE', url(id, `/containers/${renamed}?force=true`));
    const all = await hub.api('GET', url(id, '/containers?all=true'));
    assert.ok(!all.containers.some((c: { names: string[] }) => c.names.includes(renamed)), 'removed');
  });

  test('images: list, inspect, remove a tag; prune removes only labelled stopped containers; a pull without a registry fails plainly', async () => {
    const images = await hub.api('GET', url(id, '/images'));
    assert.ok(images.images.some((i: { tags: string[] }) => i.tags.includes(env.image)), 'the host image is listed');
    const ins = await hub.api('GET', url(id, `/images/inspect?ref=${enc(env.image)}`));
    assert.ok(ins.Id);

    await run('podman', ['tag', env.image, tag]);
    const removed = await hub.api('DELETE', url(id, `/images?ref=${enc(tag)}`));
    assert.ok(removed.removed.length >= 1, JSON.stringify(removed));
    assert.equal((await run('podman', ['image', 'exists', tag], { allowFailure: true })).code, 1, 'the tag is gone');
    assert.equal((await run('podman', ['image', 'exists', env.image], { allowFailure: true })).code, 0, 'the image itself stays');

    const stopped = await hub.api('POST', url(id, '/containers'), { image: env.image, name: `${name}-stopped`, command: ['/bin/true'], labels: { 'tether.test': String(process.pid) } });
    const pruned = await hub.api('POST', url(id, '/prune'), { what: 'containers', label: LABEL });
    assert.ok(pruned.removed.some((r: string) => r.startsWith(stopped.id.slice(0, 12))), `pruned: ${JSON.stringify(pruned)}`);

    const pull = await status('POST', url(id, '/images/pull'), { ref: '127.0.0.1:1/nothing/here:1' });
    assert.ok(pull.status === 502 || pull.status === 404, `${pull.status} ${JSON.stringify(pull.body)}`);
    assert.ok(pull.body.message.length > 0);
  });

  test('image import: a tarball inside the file roots becomes an image; without files, outside the roots, missing or read-only it is refused', async () => {
    const fs = join(roots, 'rootfs');
    mkdirSync(join(fs, 'etc'), { recursive: true });
    writeFileSync(join(fs, 'etc', 'tether-imported'), 'x'.repeat(64 * 1024));
    const tarball = join(roots, 'rootfs.tar');
    await run('tar', ['-cf', tarball, '-C', fs, '.']);
    const imp = ids.importer!;

    const r = await status('POST', url(imp, '/images/import'), { path: tarball, ref: imported });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(String(r.body.id), /^sha256:[0-9a-f]{64}$/);
    const images = (await hub.api('GET', url(imp, '/images'))).images as { id: string; tags: string[] }[];
    const mine = images.find((i) => i.tags.includes(imported));
    assert.ok(mine, `the image list has ${imported}`);
    assert.equal(mine.id, r.body.id);
    const detail = await hub.api('GET', url(imp, `/images/inspect?ref=${enc(imported)}`));
    assert.equal(detail.RootFS?.Layers?.length, 1, 'one layer, from the tarball');
    assert.ok(Number(detail.Size) >= 64 * 1024, `size ${detail.Size} holds the file`);
    const audit = await hub.api('GET', `/api/v1/audit?action=${enc('POST /api/v1/hosts/*')}`);
    assert.ok(JSON.stringify(audit).includes('/docker/images/import'), 'the import is audited');

    const noFiles = await status('POST', url(id, '/images/import'), { path: tarball, ref: imported });
    assert.equal(noFiles.status, 403);
    assert.match(noFiles.body.message, /needs the files capability/);
    const outside = await status('POST', url(imp, '/images/import'), { path: '/etc/passwd', ref: imported });
    assert.equal(outside.status, 403, JSON.stringify(outside.body));
    const escape = await status('POST', url(imp, '/images/import'), { path: `${roots}/../../etc/passwd`, ref: imported });
    assert.equal(escape.status, 403, JSON.stringify(escape.body));
    assert.equal((await status('POST', url(imp, '/images/import'), { path: join(roots, 'missing.tar'), ref: imported })).status, 404);
    assert.equal((await status('POST', url(imp, '/images/import'), { path: fs, ref: imported })).status, 400, 'a directory is not a tarball');
    assert.equal((await status('POST', url(imp, '/images/import'), { path: tarball, ref: 'Bad Ref!' })).status, 400);
    const ro = await status('POST', url(ids.readOnly!, '/images/import'), { path: tarball, ref: imported });
    assert.equal(ro.status, 403);
    assert.equal(ro.body.error, 'read_only');

    const rm = await hub.api('DELETE', url(imp, `/images?ref=${enc(imported)}`));
    assert.ok(rm.removed.length >= 1);
  });

  test('read-only mode: reads work, every change is refused by the agent (403 read_only)', async () => {
    const ro = ids.readOnly!;
    assert.equal((await hub.api('GET', url(ro, ''))).readOnly, true);
    assert.ok(Array.isArray((await hub.api('GET', url(ro, '/containers?all=true'))).containers));
    const r = await status('POST', url(ro, '/containers'), { image: env.image, name: `${name}-ro`, command: ['/bin/true'], labels: { 'tether.test': String(process.pid) } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error, 'read_only');
    const p = await status('POST', url(ro, '/prune'), { what: 'containers', label: LABEL });
    assert.equal(p.status, 403);
  });

  test('CLI: docker ps/run/logs/rm with --json', async () => {
    const runOut = await cli(['docker', 'run', id, env.image, '--name', `${name}-cli`, '-l', `tether.test=${process.pid}`, '--json', '--', '/bin/sh', '-c', 'echo from-cli; sleep 30'], cliEnv);
    assert.equal(runOut.code, 0, runOut.stderr);
    const cid = JSON.parse(runOut.stdout).id as string;
    const ps = await cli(['docker', 'ps', id, '--json'], cliEnv);
    assert.equal(ps.code, 0, ps.stderr);
    assert.ok(JSON.parse(ps.stdout).containers.some((c: { id: string }) => c.id === cid));
    const logs = await waitFor(async () => {
      const l = await cli(['docker', 'logs', id, `${name}-cli`], cliEnv);
      return l.stdout.includes('from-cli') ? l : undefined;
    }, 'cli logs', 10_000, 300);
    assert.equal(logs.code, 0);
    const rm = await cli(['docker', 'rm', id, `${name}-cli`, '-f', '--json'], cliEnv);
    assert.equal(rm.code, 0, rm.stderr);
    const bad = await cli(['docker', 'stop', id, '-bad'], cliEnv);
    assert.notEqual(bad.code, 0);
  });
});
