import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { checkBody } from '@tether/protocol';
import { accessFacts, gatherFacts } from '../src/facts.js';

test('the facts name the file roots and terminal accounts only where the capability is on, with the agent’s own account', () => {
  const cfg = { fileRoots: ['/srv/data', '/var/log'], terminalUsers: ['ops', 'deploy'] };
  const all = accessFacts({ ...cfg, capabilities: ['metrics', 'files', 'terminal'] });
  assert.deepEqual(all, { fileRoots: ['/srv/data', '/var/log'], terminalUsers: ['ops', 'deploy'], user: os.userInfo().username });
  const none = accessFacts({ ...cfg, capabilities: ['metrics'] });
  assert.deepEqual([none.fileRoots, none.terminalUsers], [[], []]);
});

test('the facts with what the agent opens pass the protocol’s schema (so a hub takes the hello), bounded in count and length', () => {
  const access = accessFacts({ capabilities: ['files', 'terminal'], fileRoots: [...Array.from({ length: 100 }, (_, n) => `/r${n}`), '/' + 'x'.repeat(5000)], terminalUsers: ['u'.repeat(65), 'ops'] });
  assert.equal(access.fileRoots.length, 64);
  assert.deepEqual(access.terminalUsers, ['ops']);
  const hello = { protocol: 1, agentVersion: 'test', agentId: 'a'.repeat(26), signature: 'A'.repeat(86), facts: { ...gatherFacts(), access }, capabilities: ['metrics'] };
  assert.equal(checkBody('hello', hello), true);
  assert.equal(checkBody('hello', { ...hello, facts: { ...hello.facts, access: { ...access, extra: 1 } } }), false);
});
