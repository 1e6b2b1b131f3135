import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseDurationSec, parseListen, resolveConfig, seconds, str, type Field } from '../src/index.js';

const spec = {
  listen: { toml: 'listen', env: 'T_LISTEN', default: { host: '127.0.0.1', port: 8080 }, parse: parseListen } as Field<{ host: string; port: number }>,
  heartbeat: { toml: 'heartbeat', env: 'T_HB', default: 10, parse: seconds(0.05, 3600) } as Field<number>,
  name: { toml: 'name', default: 'x', parse: str({ max: 5 }) } as Field<string>,
};

function file(content: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'tether-cfg-')), 'c.toml');
  writeFileSync(p, content);
  return p;
}

test('flags beat environment, which beats the file, which beats defaults', () => {
  const f = file('heartbeat = "30s"\nlisten = "0.0.0.0:9000"\nname = "file"\n');
  assert.deepEqual(resolveConfig(spec, { file: f }), { listen: { host: '0.0.0.0', port: 9000 }, heartbeat: 30, name: 'file' });
  assert.equal(resolveConfig(spec, { file: f, env: { T_HB: '5' } }).heartbeat, 5);
  assert.equal(resolveConfig(spec, { file: f, env: { T_HB: '5' }, flags: { heartbeat: '2m' } }).heartbeat, 120);
  assert.deepEqual(resolveConfig(spec, {}), { listen: { host: '127.0.0.1', port: 8080 }, heartbeat: 10, name: 'x' });
});

test('every problem is reported at once, naming where the bad value came from', () => {
  try {
    resolveConfig(spec, { env: { T_LISTEN: 'nonsense' }, flags: { heartbeat: 'soon', name: 'toolong' } });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 3);
    assert.match(err.message, /environment T_LISTEN: expected host:port/);
    assert.match(err.message, /flag --heartbeat: expected a duration/);
    assert.match(err.message, /flag --name: longer than 5/);
  }
});

test('unknown keys and broken TOML in the file are errors, not silently ignored', () => {
  assert.throws(() => resolveConfig(spec, { file: file('hartbeat = 3\n') }), /unknown key "hartbeat"/);
  assert.throws(() => resolveConfig(spec, { file: file('listen = \n') }), /config file/);
  assert.throws(() => resolveConfig(spec, { file: '/nonexistent/tether.toml' }), /config file/);
});

test('durations and listen addresses', () => {
  assert.equal(parseDurationSec('500ms'), 0.5);
  assert.equal(parseDurationSec('7d'), 604800);
  assert.equal(parseDurationSec(3), 3);
  assert.throws(() => parseDurationSec('-1s'));
  assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
  assert.throws(() => parseListen('host:99999'));
  assert.throws(() => seconds(1, 2)('3s'), /between 1 s and 2 s/);
});
