import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/**
 * What an agent signs to prove it holds its key: a domain-separated string with the hub's
 * one-time nonce, so a signature is good for exactly one connection to this protocol.
 */
export function authPayload(nonce: string, subject: string): Buffer {
  return Buffer.from(`tether-agent-auth/v1\n${nonce}\n${subject}`, 'utf8');
}

export function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

export function generateAgentKey(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: rawPublicKey(publicKey),
  };
}

/** Raw 32-byte Ed25519 public key, base64url. */
export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x) throw new Error('not an Ed25519 key');
  return jwk.x;
}

export function publicKeyFromPrivatePem(pem: string): string {
  return rawPublicKey(createPublicKey(createPrivateKey(pem)));
}

export function signPayload(privateKeyPem: string | KeyObject, payload: Buffer): string {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  return sign(null, payload, key).toString('base64url');
}

/** Never throws: a malformed key or signature is simply not valid. */
export function verifyPayload(publicKeyRaw: string, payload: Buffer, signature: string): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKeyRaw }, format: 'jwk' });
    const sig = Buffer.from(signature, 'base64url');
    if (sig.length !== 64) return false;
    return verify(null, payload, key, sig);
  } catch {
    return false;
  }
}
