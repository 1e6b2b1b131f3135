import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES, checkBody } from '../src/index.js';

const facts = {
  hostname: 'h1',
  os: { name: 'Debian', id: 'debian', version: '12', pretty: 'Debian 12' },
  platform: 'linux',
  kernel: '6.1',
  arch: 'x64',
  cpu: { model: 'x', physicalCores: 1, logicalCores: 2 },
  memoryBytes: 1024,
  ips: ['10.0.0.1'],
  macs: ['02:00:00:00:00:01'],
};

test('a frame encoded by one end decodes at the other with type, id and reply-to intact', () => {
  const f = encodeFrame('error', { code: 'x', message: 'y' }, { re: 'abc-1' });
  const d = decodeFrame(f);
  assert.ok(d.ok);
  assert.equal(d.msg.type, 'error');
  assert.equal(d.msg.re, 'abc-1');
  assert.deepEqual(d.msg.body, { code: 'x', message: 'y' });
  assert.equal(d.msg.v, 1);
});

test('invalid JSON is refused with a reason, not an exception', () => {
  const d = decodeFrame('{not json');
  assert.equal(d.ok, false);
  assert.equal(!d.ok && d.code, 'not_json');
});

test('an envelope with extra or missing fields is refused and says which', () => {
  const d = decodeFrame(JSON.stringify({ v: 1, type: 'error', body: {} }));
  assert.ok(!d.ok && d.code === 'bad_envelope' && /id/.test(d.error), JSON.stringify(d));
  const e = decodeFrame(JSON.stringify({ v: 1, type: 'error', id: 'a', body: {}, extra: 1 }));
  assert.ok(!e.ok && e.code === 'bad_envelope');
});

test('unknown message types are refused and keep their id for the reply', () => {
  const d = decodeFrame(JSON.stringify({ v: 1, type: 'launch.missiles', id: 'm1', body: {} }));
  assert.ok(!d.ok && d.code === 'unknown_type' && d.id === 'm1');
});

test('a body that breaks its schema is refused with the path of the problem', () => {
  const hello = { protocol: 1, agentVersion: '1', signature: 'a'.repeat(86), facts: { ...facts, memoryBytes: -1 }, capabilities: ['metrics'] };
  const d = decodeFrame(JSON.stringify({ v: 1, type: 'hello', id: 'h', body: hello }));
  assert.ok(!d.ok && d.code === 'bad_body' && d.error.includes('/facts/memoryBytes'), JSON.stringify(d));
});

test('capabilities outside the known set are refused', () => {
  const hello = { protocol: 1, agentVersion: '1', signature: 'a'.repeat(86), facts, capabilities: ['root-shell'] };
  assert.equal(checkBody('hello', hello), false);
  assert.equal(checkBody('hello', { ...hello, capabilities: ['metrics', 'exec'] }), true);
});

test('frames over the size limit are refused before parsing', () => {
  const big = 'x'.repeat(MAX_FRAME_BYTES + 1);
  const d = decodeFrame(big);
  assert.ok(!d.ok && d.code === 'too_large');
  const small = decodeFrame(encodeFrame('error', { code: 'a', message: 'b' }), 10);
  assert.ok(!small.ok && small.code === 'too_large');
});

test('oversized strings inside a valid envelope are refused by the schema bounds', () => {
  const d = decodeFrame(JSON.stringify({ v: 1, type: 'error', id: 'x', body: { code: 'c', message: 'm'.repeat(5000) } }));
  assert.ok(!d.ok && d.code === 'bad_body');
});
