import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskResultBody } from '@tether/protocol';
import { OutputKeeper, prepare, runExec, shellQuote, ExecError } from '../src/tasks/runner.js';
import { TaskLedger } from '../src/tasks/ledger.js';

const result = (taskId: string, stdout = ''): TaskResultBody => ({ taskId, status: 'exited', exitCode: 0, signal: null, stdout, stderr: '', stdoutBytes: stdout.length, stderrBytes: 0, truncated: false, startedAt: 1, endedAt: 2 });

test('output keeper: small output whole; large output keeps head and tail and counts everything', () => {
  const k = new OutputKeeper(8);
  k.push(Buffer.from('abc'));
  assert.equal(k.text(), 'abc');
  assert.equal(k.truncated, false);
  const big = new OutputKeeper(8);
  for (const c of 'abcdefghijklmnopqrstuvwxyz') big.push(Buffer.from(c));
  assert.equal(big.total, 26);
  assert.equal(big.truncated, true);
  assert.equal(big.text(), 'ab\n…[18 bytes not kept]…\nuvwxyz');
  const exact = new OutputKeeper(8);
  exact.push(Buffer.from('12345678'));
  assert.equal(exact.truncated, false);
  assert.equal(exact.text(), '12345678');
});

test('shell quoting keeps every word one word', () => {
  assert.equal(shellQuote(`it's $(x)`), `'it'\\''s $(x)'`);
});

test('prepare: argv as given, a shell only when asked, sudo and su forms, clean env', () => {
  const p = prepare({ command: ['ls', '-l', '$HOME'] }, 0);
  assert.equal(p.file, 'ls');
  assert.deepEqual(p.args, ['-l', '$HOME']);
  assert.equal(p.env.PATH?.includes('/usr/bin'), true);
  assert.equal(Object.keys(p.env).some((k) => k.startsWith('TETHER_') || k === 'NODE_OPTIONS'), false);
  const sh = prepare({ command: ['echo $HOME'], shell: true }, 0);
  assert.deepEqual([sh.file, ...sh.args], ['/bin/sh', '-c', 'echo $HOME']);
  const sudo = prepare({ command: ['id'], user: 'nobody', runAs: 'sudo', env: { A: 'b c' } }, 0);
  assert.deepEqual([sudo.file, ...sudo.args], ['sudo', '-n', '-H', '-u', 'nobody', '--', '/usr/bin/env', 'A=b c', 'id']);
  const su = prepare({ command: ['echo', "a'b"], user: 'nobody', runAs: 'su' }, 0);
  assert.deepEqual([su.file, ...su.args], ['su', '-s', '/bin/sh', '-c', `'echo' 'a'\\''b'`, 'nobody']);
  const setuid = prepare({ command: ['id'], user: 'nobody' }, 0);
  assert.equal(setuid.uid, 65534);
  assert.throws(() => prepare({ command: ['id'], user: 'nobody' }, 1000), ExecError);
  assert.throws(() => prepare({ command: ['a', 'b'], shell: true }, 0), /exactly one/);
  assert.throws(() => prepare({ command: ['a\0b'] }, 0), /NUL/);
});

test('runExec: stdin, exit code, and a kill reaches the process group', async () => {
  const r = await runExec({ command: ['sh', '-c', 'cat; exit 4'], stdin: 'in' }).done;
  assert.equal(r.status, 'exited');
  assert.equal(r.exitCode, 4);
  assert.equal(r.stdout, 'in');
  const h = runExec({ command: ['sh', '-c', 'sleep 30 & wait'] });
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(h.kill('SIGTERM'), true);
  const k = await h.done;
  assert.equal(k.status, 'killed');
  assert.equal(k.signal, 'SIGTERM');
});

test('ledger: started tasks survive a restart as interrupted; results wait in the outbox until acked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-ledger-'));
  try {
    const a = new TaskLedger(dir);
    a.markStarted('t1');
    a.markStarted('t2');
    a.putResult(result('t2', 'out'));
    a.close();
    const b = new TaskLedger(dir);
    assert.deepEqual(b.interrupted(), ['t1']);
    assert.equal(b.state('t2'), 'done');
    assert.deepEqual(b.pending(), ['t2']);
    assert.equal(b.readResult('t2')!.stdout, 'out');
    b.acked('t2');
    assert.equal(b.state('t2'), 'acked');
    assert.equal(b.outboxCount, 0);
    b.close();
    const c = new TaskLedger(dir);
    assert.equal(c.state('t2'), 'acked', 'an acknowledged id is still known, so it is never run again');
    c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ledger: over its byte budget the outbox drops the oldest output first, results last', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-ledger-'));
  try {
    const l = new TaskLedger(dir, { outboxMaxBytes: 3000 });
    l.putResult(result('old', 'x'.repeat(1500)));
    l.putResult(result('new', 'y'.repeat(1500)));
    assert.equal(l.readResult('old')!.stdout, '', 'the oldest result lost its output');
    assert.match(l.readResult('old')!.error!, /outbox was full/);
    assert.equal(l.readResult('new')!.stdout.length, 1500);
    assert.equal(l.stats.outputDropped, 1);
    assert.equal(l.outboxCount, 2);
    l.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ledger: a torn last journal line and a torn outbox write are ignored; compaction forgets old acked ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-ledger-'));
  let now = 1_000_000;
  try {
    const l = new TaskLedger(dir, { now: () => now, dedupeWindowMs: 1000 });
    l.markStarted('a');
    l.putResult(result('a'));
    l.acked('a');
    l.markStarted('b');
    l.close();
    const j = join(dir, 'tasks.journal');
    appendFileSync(j, '{"id":"c","s":"runn');
    writeFileSync(join(dir, 'outbox', 'x.json.tmp'), '{');
    now += 5000;
    const m = new TaskLedger(dir, { now: () => now, dedupeWindowMs: 1000 });
    assert.deepEqual(m.interrupted(), ['b']);
    assert.deepEqual(readdirSync(join(dir, 'outbox')), []);
    m.compact();
    assert.equal(m.state('a'), undefined);
    assert.equal(m.state('b'), 'running');
    assert.equal(readFileSync(j, 'utf8').trim().split('\n').length, 1);
    m.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
