/**
 * `install.sh` as the hub serves it: packaging/install.sh with `@@TETHER_HUB@@` replaced by the
 * hub's public base URL, `@@TETHER_VERSION@@` by the newest artifact version, and, for a hub whose
 * TLS certificate is self-issued, `@@TETHER_PIN@@` and `@@TETHER_FINGERPRINT@@` by the pins of its
 * key and certificate (the script then talks to this hub only, and its agent pins it). All land in a
 * shell script that runs as root, so each is checked against a pattern with no shell
 * metacharacters before it is put in; a value that fails is an error, never a script.
 */
import { open } from 'node:fs/promises';
import { VERSION_RE } from './store.js';

/** What a base URL put into the script may look like: scheme, host[:port] (brackets for IPv6), a plain path. */
export const BASE_URL_RE = /^https?:\/\/[A-Za-z0-9.:\-[\]]+(\/[A-Za-z0-9._~\-/]*)?$/;
const MAX_INSTALLER_BYTES = 1024 * 1024;

export class InstallerError extends Error {
  constructor(
    readonly status: 400 | 500,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The public_url setting: an http(s) URL matching BASE_URL_RE, kept without trailing slashes. */
export function parsePublicUrl(raw: unknown): string {
  if (typeof raw !== 'string') throw new Error('expected a URL like https://hub.example.com');
  const s = raw.trim().replace(/\/+$/, '');
  let ok = BASE_URL_RE.test(s);
  if (ok) {
    try {
      new URL(s);
    } catch {
      ok = false;
    }
  }
  if (!ok || s.length > 1024) throw new Error(`expected http(s)://host[:port][/path] with letters, digits and . _ ~ - / only (it goes into the installer script), got ${JSON.stringify(raw.slice(0, 120))}`);
  return s;
}

/** The base URL for a request that came without public_url set: its scheme and Host. */
export function requestBaseUrl(protocol: string, host: string | undefined): string {
  if (!host) throw new InstallerError(400, 'no_host', 'the request has no Host header, so the hub cannot say its own address: set public_url (TETHER_PUBLIC_URL)');
  const url = `${protocol}://${host.trim()}`;
  if (!BASE_URL_RE.test(url) || url.length > 1024) throw new InstallerError(400, 'bad_host', `the request's Host ${JSON.stringify(host.slice(0, 120))} cannot go into the installer (letters, digits, . : - [ ] only): ask for the hub by its name or address, or set public_url (TETHER_PUBLIC_URL)`);
  return url;
}

/** The first installer template found among `candidates`, or undefined. */
export async function readInstaller(candidates: string[]): Promise<{ path: string; text: string } | undefined> {
  for (const path of candidates) {
    try {
      const fh = await open(path, 'r');
      try {
        const st = await fh.stat();
        if (!st.isFile() || st.size > MAX_INSTALLER_BYTES) continue;
        return { path, text: await fh.readFile('utf8') };
      } finally {
        await fh.close();
      }
    } catch {
      /* not there: try the next */
    }
  }
  return undefined;
}

export const PUBKEY_PIN_RE = /^sha256\/\/[A-Za-z0-9+/]{43}=$/;
export const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;

/** The template with its placeholders replaced; throws InstallerError (500) when a value fails its pattern. */
export function renderInstaller(template: string, hub: string, version: string, pin?: { pubkey: string; fingerprint: string }): string {
  if (!BASE_URL_RE.test(hub)) throw new InstallerError(500, 'bad_hub_url', `the hub's URL ${JSON.stringify(hub.slice(0, 120))} cannot go into the installer`);
  if (version !== '' && !VERSION_RE.test(version)) throw new InstallerError(500, 'bad_version', `the artifact version ${JSON.stringify(version.slice(0, 120))} cannot go into the installer`);
  if (pin && !(PUBKEY_PIN_RE.test(pin.pubkey) && FINGERPRINT_RE.test(pin.fingerprint))) throw new InstallerError(500, 'bad_pin', 'the TLS pins cannot go into the installer');
  return template
    .replaceAll('@@TETHER_HUB@@', hub)
    .replaceAll('@@TETHER_VERSION@@', version)
    .replaceAll('@@TETHER_PIN@@', pin?.pubkey ?? '')
    .replaceAll('@@TETHER_FINGERPRINT@@', pin?.fingerprint ?? '');
}
