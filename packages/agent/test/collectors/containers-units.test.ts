// The containers and units collectors against fixtures: a fake engine on a unix socket answering
// with JSON shaped like Docker's and Podman's, and a fake systemctl. Pins down what is reported,
// and that a container is inspected only when something about it moved.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as wire from '@tether/protocol';
import { containersCollector, healthFromStatus, needsInspect, parseFailedUnits, unitsCollector } from '../../src/collectors/index.js';

const dir = join(tmpdir(), `tether-cu-${process.pid}`);
mkdirSync(dir, { recursive: true });

const listRow = (id: string, name: string, state: string, status: string) => ({ Id: id, Names: [`/${name}`], Image: 'localhost/app:1', State: state, Status: status, Labels: {} });
const inspect = (restarts: number, over: Record<string, unknown> = {}) => ({
  RestartCount: restarts,
  State: { Status: 'running', Running: true, OOMKilled: false, ExitCode: 0, StartedAt: '2026-11-22T07:11:25.399670601Z', FinishedAt: '0001-01-01T00:00:00Z', ...over },
});

let rows: Record<string, unknown>[] = [];
const details = new Map<string, Record<string, unknown>>();
const calls: string[] = [];
const sock = join(dir, 'engine.sock');
const server: Server = createServer((req, res) => {
  calls.push(`${req.method} ${req.url}`);
  const m = /^\/v1\.41\/containers\/([^/]+)\/json$/.exec(req.url ?? '');
  const body = req.url === '/v1.41/containers/json?all=1' ? rows : m ? details.get(m[1]!) : undefined;
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? { message: 'no such container' }));
});
await new Promise<void>((r) => server.listen(sock, r));
after(() => server.close());

test('containers: list plus inspect gives restarts, OOM kill, exit code, health and times; unchanged containers are not inspected again', async () => {
  rows = [listRow('aaa', 'web', 'running', 'Up 3 hours (healthy)'), listRow('bbb', 'loop', 'restarting', 'Restarting (1) 2 seconds ago'), listRow('ccc', 'db', 'running', 'Up 2 hours (unhealthy)')];
  details.set('aaa', inspect(0, { Health: { Status: 'healthy' } }));
  details.set('bbb', inspect(7, { Status: 'restarting', Running: false, ExitCode: 1, FinishedAt: '2026-11-22T07:11:26.000000000Z' }));
  details.set('ccc', inspect(0, { Health: { Status: 'unhealthy' }, OOMKilled: true, ExitCode: 137 }));
  const c = containersCollector({ socket: sock });
  const first = await c.collect(1000);
  assert.ok(first);
  assert.deepEqual(wire.metricsErrors('containers', first), []);
  assert.equal(first.truncated, false);
  const byName = Object.fromEntries(first.containers.map((x) => [x.name, x]));
  assert.deepEqual(byName.web, { id: 'aaa', name: 'web', image: 'localhost/app:1', state: 'running', status: 'Up 3 hours (healthy)', health: 'healthy', restartCount: 0, oomKilled: false, exitCode: 0, startedAt: Date.parse('2026-11-22T07:11:25.399Z') });
  assert.equal(byName.loop!.restartCount, 7);
  assert.equal(byName.loop!.exitCode, 1);
  assert.equal(byName.loop!.finishedAt, Date.parse('2026-11-22T07:11:26Z'));
  assert.equal(byName.db!.health, 'unhealthy');
  assert.equal(byName.db!.oomKilled, true);
  assert.equal(calls.filter((x) => x.includes('/json') && !x.includes('?all')).length, 3, 'everything inspected once');

  calls.length = 0;
  details.set('bbb', inspect(9, { Status: 'restarting', Running: false, ExitCode: 1 }));
  const second = await c.collect(2000);
  assert.deepEqual(calls.sort(), ['GET /v1.41/containers/bbb/json', 'GET /v1.41/containers/ccc/json', 'GET /v1.41/containers/json?all=1'], 'the healthy, unchanged one is not inspected');
  assert.equal(second!.containers.find((x) => x.name === 'loop')!.restartCount, 9);
  assert.equal(second!.containers.find((x) => x.name === 'web')!.startedAt, Date.parse('2026-11-22T07:11:25.399Z'), 'what was seen is kept');
});

test('containers: a container restarted at once (Podman lists it as "Up Less than a second" every time) is inspected each time', () => {
  const row = { id: 'x', name: 'x', image: 'i', state: 'running', status: 'Up Less than a second', restartCount: 0, oomKilled: false, exitCode: 0 };
  assert.equal(needsInspect(row, { state: 'running', status: 'Up Less than a second' }), true);
  assert.equal(needsInspect({ ...row, status: 'Up 12 seconds' }, { state: 'running', status: 'Up 12 seconds' }), true);
  assert.equal(needsInspect({ ...row, status: 'Up 3 hours' }, { state: 'running', status: 'Up 3 hours' }), false);
  assert.equal(needsInspect({ ...row, status: 'Exited (1) 3 hours ago', state: 'exited' }, { state: 'running', status: 'Up 3 hours' }), true);
  assert.equal(needsInspect({ ...row, status: 'Up 3 hours' }, { state: 'running', status: 'Up 3 hours' }, 'healthy'), true, 'Podman: the health is known only from inspecting');
  assert.equal(needsInspect({ ...row, status: 'Up 3 hours (healthy)', health: 'healthy' }, { state: 'running', status: 'Up 3 hours (healthy)' }, 'healthy'), false, 'Docker: the list says healthy');
  assert.equal(healthFromStatus('Up 5 seconds (health: starting)'), 'starting');
  assert.equal(healthFromStatus('Up 5 minutes'), undefined);
});

test('containers: bounded count; no engine answering means nothing to report', async () => {
  rows = Array.from({ length: 12 }, (_, i) => listRow(`id${i}`, `c${i}`, 'exited', 'Exited (0) 3 hours ago'));
  const r = await containersCollector({ socket: sock, maxContainers: 5, maxInspect: 2 }).collect(1);
  assert.equal(r!.containers.length, 5);
  assert.equal(r!.truncated, true);
  assert.equal(await containersCollector({ socket: join(dir, 'none.sock') }).collect(1), undefined);
});

const FAILED = [
  '● nginx.service     loaded failed failed A high performance web server',
  'run-r3c0e1.service loaded failed failed /usr/bin/false',
  'cron.service loaded active running Regular background program processing daemon',
  '',
].join('\n');

test('units: failed units from systemctl --plain --no-legend output, bounded', () => {
  const { failed, truncated } = parseFailedUnits(FAILED);
  assert.deepEqual(failed.map((u) => u.unit), ['nginx.service', 'run-r3c0e1.service']);
  assert.deepEqual(failed[0], { unit: 'nginx.service', load: 'loaded', active: 'failed', sub: 'failed', description: 'A high performance web server' });
  assert.equal(truncated, false);
  assert.equal(parseFailedUnits(FAILED, 1).truncated, true);
});

test('units: runs systemctl with an argument array only where systemd is the init system', async () => {
  const runDir = join(dir, 'run-systemd');
  const fake = join(dir, 'systemctl');
  writeFileSync(fake, `#!/bin/sh\necho "$@" > ${dir}/args\ncat <<'X'\n${FAILED}\nX\n`);
  chmodSync(fake, 0o755);
  assert.equal(await unitsCollector({ runDir, systemctl: fake }).collect(1), undefined, 'no /run/systemd/system: nothing');
  mkdirSync(runDir, { recursive: true });
  const r = await unitsCollector({ runDir, systemctl: fake }).collect(5);
  assert.equal(r!.ts, 5);
  assert.deepEqual(r!.failed.map((u) => u.unit), ['nginx.service', 'run-r3c0e1.service']);
  assert.deepEqual(wire.metricsErrors('units', r), []);
});
