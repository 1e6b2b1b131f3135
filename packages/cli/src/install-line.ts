/**
 * The one-line install `tether token create --install-line` prints:
 * `curl -fsSL HUB/install.sh | sudo sh -s -- --token TOKEN [--allow …] [--file-root DIR] [--cpu N%] [--memory N[KMG]]`.
 * Each value is checked here, before a token is made for a line that would fail on the host, and
 * every word is shell-quoted when it needs to be. (The console builds the same line in
 * packages/web/src/pages/Enroll.tsx.)
 */
import { CAPABILITIES } from '@tether/protocol/lite';

export interface InstallLineOptions {
  /** capabilities the host's agent will allow; `metrics` is always among them */
  allow?: string[];
  fileRoot?: string;
  cpu?: string;
  memory?: string;
}

/** `--allow exec,files --allow docker` → ['metrics', 'exec', 'files', 'docker'] in CAPABILITIES' order. */
export function parseAllow(values: string[]): string[] {
  const asked = values.flatMap((v) => v.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  const unknown = asked.filter((c) => !(CAPABILITIES as readonly string[]).includes(c));
  if (unknown.length) throw new Error(`--allow: unknown capabilit${unknown.length > 1 ? 'ies' : 'y'} ${unknown.map((u) => JSON.stringify(u)).join(', ')}: one of ${CAPABILITIES.join(', ')}`);
  const set = new Set(['metrics', ...asked]);
  return CAPABILITIES.filter((c) => set.has(c));
}

/** The agent's CPU limit as systemd's CPUQuota takes it: 1% to 10000% (100% is one core). */
export function parseCpu(s: string): string {
  const v = s.trim();
  if (!/^[1-9]\d{0,4}%$/.test(v) || Number(v.slice(0, -1)) > 10000) throw new Error(`--cpu: expected a percentage of one core like 20% (1% to 10000%), got ${JSON.stringify(s)}`);
  return v;
}

/** The agent's memory limit: a whole number and K, M or G (binary units, as systemd's MemoryMax). */
export function parseMemory(s: string): string {
  const v = s.trim().toUpperCase();
  if (!/^[1-9]\d{0,9}[KMG]$/.test(v)) throw new Error(`--memory: expected a size like 128M (a whole number and K, M or G), got ${JSON.stringify(s)}`);
  return v;
}

export function parseFileRoot(s: string): string {
  if (!s.startsWith('/') || s.length > 4096 || /[\0\n\r]/.test(s)) throw new Error(`--file-root: expected an absolute path like /srv, got ${JSON.stringify(s.slice(0, 200))}`);
  return s;
}

/** A word as sh reads it: left alone when it holds only safe characters, else single-quoted. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * `pubkeyPin`: for a hub whose certificate is self-issued (GET /api/v1/agent-artifacts' tlsPin), curl
 * fetches install.sh with `-k --pinnedpubkey sha256//…`: no authority vouches for the certificate, so
 * the pin of its key does (curl checks it with -k too), and the script it gets carries the same pins.
 */
export function installLine(hub: string, token: string, o: InstallLineOptions = {}, pubkeyPin?: string): string {
  const args = ['--token', token];
  if (o.allow?.length) args.push('--allow', o.allow.join(','));
  if (o.fileRoot) args.push('--file-root', o.fileRoot);
  if (o.cpu) args.push('--cpu', o.cpu);
  if (o.memory) args.push('--memory', o.memory);
  const pin = pubkeyPin ? ` -k --pinnedpubkey ${shellQuote(pubkeyPin)}` : '';
  return `curl -fsSL${pin} ${shellQuote(hub.replace(/\/+$/, '') + '/install.sh')} | sudo sh -s -- ${args.map(shellQuote).join(' ')}`;
}
