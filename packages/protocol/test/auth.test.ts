import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authPayload, generateAgentKey, newNonce, publicKeyFromPrivatePem, signPayload, verifyPayload } from '../src/index.js';

test('a signature over the nonce verifies with the matching public key', () => {
  const k = generateAgentKey();
  assert.equal(k.publicKey.length, 43);
  assert.equal(publicKeyFromPrivatePem(k.privateKeyPem), k.publicKey);
  const n = newNonce();
  const sig = signPayload(k.privateKeyPem, authPayload(n, 'agent-1'));
  assert.equal(sig.length, 86);
  assert.equal(verifyPayload(k.publicKey, authPayload(n, 'agent-1'), sig), true);
});

test('the same signature is worthless for another nonce, subject or key', () => {
  const k = generateAgentKey();
  const other = generateAgentKey();
  const n = newNonce();
  const sig = signPayload(k.privateKeyPem, authPayload(n, 'agent-1'));
  assert.equal(verifyPayload(k.publicKey, authPayload(newNonce(), 'agent-1'), sig), false);
  assert.equal(verifyPayload(k.publicKey, authPayload(n, 'agent-2'), sig), false);
  assert.equal(verifyPayload(other.publicKey, authPayload(n, 'agent-1'), sig), false);
});

test('malformed keys and signatures are simply invalid', () => {
  const n = newNonce();
  assert.equal(verifyPayload('not-a-key', authPayload(n, 'a'), 'x'.repeat(86)), false);
  assert.equal(verifyPayload(generateAgentKey().publicKey, authPayload(n, 'a'), 'short'), false);
});
