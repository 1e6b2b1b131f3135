/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30 s, the parameters every authenticator app supports) and
 * recovery codes.
 */
import { randomBytes } from 'node:crypto';
import * as OTPAuth from 'otpauth';
import { renderSVG, renderUnicodeCompact } from 'uqr';
import { sha256 } from './store.js';

const PERIOD = 30;

function totp(secret: string, username = '', issuer = 'Tether'): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ issuer, label: username, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: OTPAuth.Secret.fromBase32(secret) });
}

export function newTotpSecret(): string {
  return new OTPAuth.Secret({ size: 20 }).base32;
}

export function totpUri(secret: string, username: string, issuer: string): string {
  return totp(secret, username, issuer).toString();
}

/** QR code of the otpauth URI: SVG for the console, Unicode blocks for a terminal. */
export function qrCode(uri: string): { svg: string; text: string } {
  return { svg: renderSVG(uri), text: renderUnicodeCompact(uri) };
}

/** The time step a code belongs to (one step of clock drift either way), or undefined. */
export function totpStep(secret: string, code: string, now: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secret).validate({ token: code, timestamp: now, window: 1 });
  return delta === null ? undefined : Math.floor(now / 1000 / PERIOD) + delta;
}

export const currentStep = (now: number): number => Math.floor(now / 1000 / PERIOD);

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Ten codes of 80 random bits each, shown as xxxx-xxxx-xxxx-xxxx; only their SHA-256 is kept. */
export function newRecoveryCodes(n = 10): { codes: string[]; hashes: string[] } {
  const codes: string[] = [];
  for (let i = 0; i < n; i++) {
    const b = randomBytes(16);
    let s = '';
    for (let j = 0; j < 16; j++) s += B32[b[j]! & 31];
    codes.push(s.match(/.{4}/g)!.join('-'));
  }
  return { codes, hashes: codes.map((c) => sha256(c.replace(/-/g, ''))) };
}
