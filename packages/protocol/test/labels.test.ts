import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesSelector, parseLabelPairs, parseSelector, SelectorError, validateLabels } from '../src/index.js';

const web = { env: 'prod', role: 'web', zone: 'a' };
const db = { env: 'prod', role: 'db' };
const stg = { env: 'staging', role: 'web', canary: 'yes' };
const pick = (sel: string) => [web, db, stg].filter((l) => matchesSelector(l, parseSelector(sel)));

test('equality requirements are ANDed', () => {
  assert.deepEqual(pick('env=prod,role=web'), [web]);
  assert.deepEqual(pick('env==prod'), [web, db]);
});

test('inequality, existence and absence', () => {
  assert.deepEqual(pick('role!=web'), [db]);
  assert.deepEqual(pick('canary'), [stg]);
  assert.deepEqual(pick('!canary'), [web, db]);
  assert.deepEqual(pick('zone!=b'), [web, db, stg]);
});

test('set-based requirements', () => {
  assert.deepEqual(pick('env in (staging, dev)'), [stg]);
  assert.deepEqual(pick('role notin (db),env=prod'), [web]);
});

test('an empty selector matches everything', () => {
  assert.deepEqual(pick(''), [web, db, stg]);
});

test('malformed selectors are refused with a reason', () => {
  for (const bad of ['env=prod,', 'a b', 'env in ()', 'env in (a', '=x', 'k=v w', 'bad key=1']) {
    assert.throws(() => parseSelector(bad), SelectorError, bad);
  }
  assert.throws(() => parseSelector('x'.repeat(2000)), /1024/);
});

test('labels are validated: keys, values and count', () => {
  assert.deepEqual(validateLabels({ env: 'prod', 'team/owner': 'ops' }), []);
  assert.equal(validateLabels({ 'bad key': 'x' }).length, 1);
  assert.equal(validateLabels({ k: 'v with space' }).length, 1);
  assert.equal(validateLabels(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))).length, 1);
  assert.deepEqual(parseLabelPairs(['env=prod', 'role=web']), { env: 'prod', role: 'web' });
  assert.throws(() => parseLabelPairs(['novalue']), /key=value/);
});
