/**
 * /etc/hosts (capability `files`): read it as entries, and replace its entries after checking every
 * address and name, keeping the previous file as a backup next to it. Comment lines at the top of
 * the old file are kept. A write can name the sha256 it read, and is refused if the file changed.
 */
import { copyFileSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Capability, HostsEntry, HostsRequestBody, HostsResponseBody } from '@tether/protocol';
import { ManagerFailure, refusal, serve, type ManagerLink } from './common.js';

export interface HostsFileConfig {
  capabilities: Capability[];
  hostsFile: string;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\.?$/;
const BACKUPS_KEPT = 5;

export function parseHosts(text: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const body = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (!body) continue;
    const [ip, ...names] = body.split(/\s+/);
    if (!ip || !names.length) continue;
    const comment = hash >= 0 ? raw.slice(hash + 1).trim().slice(0, 256) : '';
    out.push({ ip: ip.slice(0, 45), names: names.slice(0, 32).map((n) => n.slice(0, 253)), ...(comment ? { comment } : {}) });
    if (out.length >= 4096) break;
  }
  return out;
}

export function checkEntries(entries: HostsEntry[]): void {
  for (const e of entries) {
    if (!isIP(e.ip)) throw new ManagerFailure('bad_request', `not an IP address: ${JSON.stringify(e.ip)}`);
    for (const n of e.names) if (!HOSTNAME.test(n)) throw new ManagerFailure('bad_request', `not a hostname: ${JSON.stringify(n)}`);
    if (e.comment && /[\n\r\0]/.test(e.comment)) throw new ManagerFailure('bad_request', 'a comment is one line');
  }
}

export function renderHosts(oldText: string, entries: HostsEntry[]): string {
  const header: string[] = [];
  for (const line of oldText.split('\n')) {
    if (line.trim().startsWith('#')) header.push(line);
    else if (line.trim()) break;
  }
  const body = entries.map((e) => `${e.ip}\t${e.names.join(' ')}${e.comment ? `\t# ${e.comment}` : ''}`);
  return [...header, ...body].join('\n') + '\n';
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export class HostsFileService {
  private unserve: (() => void) | undefined;

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: HostsFileConfig,
    private readonly log: Logger,
  ) {}

  start(): this {
    this.unserve = serve(this.link, 'hostsfile.request', 'hostsfile.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  async handle(req: HostsRequestBody): Promise<HostsResponseBody> {
    if (!this.cfg.capabilities.includes('files')) return refusal('files', this.cfg.capabilities);
    const file = this.cfg.hostsFile;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') text = '';
      else throw new ManagerFailure('permission', `cannot read ${file}: ${(err as Error).message}`);
    }
    if (text.length > 1024 * 1024) throw new ManagerFailure('failed', `${file} is larger than 1 MiB`);
    if (req.op === 'read') return { ok: true, entries: parseHosts(text), content: text, sha256: sha(text) };
    if (req.op !== 'write') throw new ManagerFailure('bad_request', `unknown hosts-file operation ${JSON.stringify(req.op)}`);
    if (!req.entries) throw new ManagerFailure('bad_request', 'write needs entries');
    checkEntries(req.entries);
    if (req.expectSha256 && req.expectSha256 !== sha(text)) throw new ManagerFailure('conflict', `${file} changed since it was read`);
    const next = renderHosts(text, req.entries);
    const backup = `${file}.tether-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
    copyFileSync(file, backup);
    const mode = statSync(file).mode & 0o7777;
    const tmp = join(dirname(file), `.${basename(file)}.tether-${process.pid}`);
    writeFileSync(tmp, next, { mode });
    try {
      renameSync(tmp, file);
    } catch (err) {
      // /etc/hosts is often a bind mount (containers): it cannot be replaced, only rewritten in place.
      rmSync(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' && (err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      writeFileSync(file, next);
    }
    this.pruneBackups(file);
    this.log.info({ file, entries: req.entries.length, backup }, 'hosts file written');
    return { ok: true, entries: parseHosts(next), sha256: sha(next), backup };
  }

  private pruneBackups(file: string): void {
    const dir = dirname(file);
    const prefix = `${basename(file)}.tether-`;
    const old = readdirSync(dir).filter((n) => n.startsWith(prefix)).sort();
    for (const n of old.slice(0, Math.max(0, old.length - BACKUPS_KEPT))) rmSync(join(dir, n), { force: true });
  }
}
