/**
 * Pinning the hub's TLS certificate by its SHA-256 fingerprint (`hub_fingerprint`): for a hub with
 * a self-signed certificate, no CA can vouch for it, so the agent accepts exactly the certificate
 * whose fingerprint came with its enrollment command, and no other, whoever signed it.
 *
 * The check runs when the TLS handshake completes, before any reply from the hub is read: the agent
 * sends its signed hello (and its enrollment token) only after the hub's challenge arrives, so a
 * wrong certificate never sees either.
 */
import tls from 'node:tls';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ClientOptions } from 'ws';

/** `sha256:ab12…`, `AB:12:…` or bare hex → 64 lowercase hex digits. */
export function normalizeFingerprint(raw: unknown): string {
  if (typeof raw !== 'string') throw new Error('expected a SHA-256 fingerprint');
  const hex = raw.trim().replace(/^sha256:/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`expected a SHA-256 fingerprint (sha256: and 64 hex digits), got ${JSON.stringify(raw.slice(0, 100))}`);
  return hex;
}

/** WebSocket options that accept only the pinned certificate; none when nothing is pinned (normal CA checks). */
export function pinnedTls(fingerprint: string | undefined): Pick<ClientOptions, 'createConnection'> {
  if (!fingerprint) return {};
  const want = Buffer.from(fingerprint, 'hex');
  return {
    createConnection: ((opts: tls.ConnectionOptions) => {
      const socket = tls.connect({ ...opts, rejectUnauthorized: false });
      socket.once('secureConnect', () => {
        const raw = socket.getPeerCertificate().raw;
        const got = raw ? createHash('sha256').update(raw).digest() : Buffer.alloc(32);
        if (!timingSafeEqual(got, want)) {
          socket.destroy(new Error(`hub certificate fingerprint sha256:${got.toString('hex')} does not match the pinned sha256:${fingerprint}`));
        }
      });
      return socket;
    }) as unknown as ClientOptions['createConnection'],
  };
}
