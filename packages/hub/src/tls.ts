/**
 * Optional TLS for the hub: a certificate and key given in the configuration, or a self-signed
 * certificate generated on first start under <data>/tls and kept. Agents pin a self-signed
 * certificate by its SHA-256 fingerprint, which `tether token create` prints with the agent command.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { HubConfig } from './config.js';

export interface HubTls {
  cert: string;
  key: string;
  /** `sha256:` + 64 lowercase hex digits of the DER certificate */
  fingerprint: string;
  source: 'files' | 'self-signed';
  certFile: string;
  /**
   * For a certificate no public authority vouches for (generated here, or a self-issued one in
   * files): its public key as curl pins it (`--pinnedpubkey sha256//…`), so the one-line install
   * can trust this hub and no other. Undefined for a certificate issued by someone else.
   */
  installPin?: InstallPin;
}

export interface InstallPin {
  /** `sha256//` + base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (curl's --pinnedpubkey) */
  pubkey: string;
  /** the certificate's fingerprint, which the installed agent pins (hub_fingerprint) */
  fingerprint: string;
}

/** The pins for a self-issued certificate (its issuer is itself and its signature checks with its own key), else undefined. */
export function installPin(pem: string): InstallPin | undefined {
  const c = new X509Certificate(pem);
  // (not checkIssued: OpenSSL wants keyCertSign there, which a server certificate does not carry)
  if (!(c.issuer === c.subject && c.verify(c.publicKey))) return undefined;
  const spki = c.publicKey.export({ type: 'spki', format: 'der' });
  return { pubkey: 'sha256//' + createHash('sha256').update(spki).digest('base64'), fingerprint: certFingerprint(pem) };
}

export function certFingerprint(pem: string): string {
  return 'sha256:' + createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

export async function loadTls(cfg: Pick<HubConfig, 'tls' | 'dataDir' | 'listen'>, now: number): Promise<HubTls | undefined> {
  if (cfg.tls.kind === 'none') return undefined;
  if (cfg.tls.kind === 'files') {
    const cert = readFileSync(cfg.tls.cert, 'utf8');
    const key = readFileSync(cfg.tls.key, 'utf8');
    const pin = installPin(cert);
    return { cert, key, fingerprint: certFingerprint(cert), source: 'files', certFile: cfg.tls.cert, ...(pin ? { installPin: pin } : {}) };
  }
  const dir = join(cfg.dataDir, 'tls');
  const certFile = join(dir, 'hub-cert.pem');
  const keyFile = join(dir, 'hub-key.pem');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { generate } = await import('selfsigned');
    const names = new Set(['localhost', hostname()]);
    const ips = new Set(['127.0.0.1', '::1']);
    const h = cfg.listen.host;
    if (h && h !== '0.0.0.0' && h !== '::') (isIP(h) ? ips : names).add(h);
    const pems = await generate([{ name: 'commonName', value: `tether-hub ${hostname()}`.slice(0, 64) }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(now + 10 * 365 * 86400_000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [...[...names].map((value) => ({ type: 2 as const, value })), ...[...ips].map((ip) => ({ type: 7 as const, ip }))] },
      ],
    });
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, pems.cert, { mode: 0o644 });
  }
  const cert = readFileSync(certFile, 'utf8');
  const pin = installPin(cert);
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint: certFingerprint(cert), source: 'self-signed', certFile, ...(pin ? { installPin: pin } : {}) };
}
