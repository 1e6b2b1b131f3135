/**
 * A strict reader for script bundles: POSIX ustar archives (plus the pax `path` record and GNU
 * long names, which GNU tar writes for long paths). Only regular files and directories are
 * accepted; links, devices, absolute paths and `..` are refused, and every size is bounded, so
 * unpacking a bundle can never write outside its directory.
 */

export interface TarEntry {
  /** normalised relative path, no leading `./`, no trailing slash */
  path: string;
  type: 'file' | 'dir';
  mode: number;
  size: number;
  /** where the file's bytes start in the archive */
  offset: number;
}

export interface TarLimits {
  maxEntries?: number;
  maxBytes?: number;
}

export class TarError extends Error {}

/** Reads `length` bytes at `position` (a file handle, or a buffer for tests). */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

const octal = (b: Buffer, start: number, len: number): number => {
  const s = b.subarray(start, start + len).toString('ascii').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad number field ${JSON.stringify(s)} in a tar header`);
  return parseInt(s, 8);
};
const str = (b: Buffer, start: number, len: number): string => b.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');

/** Normalises a member path and refuses anything that could land outside the bundle directory. */
export function safeMemberPath(raw: string): string {
  if (raw.includes('\0')) throw new TarError('NUL in a member path');
  if (raw.startsWith('/')) throw new TarError(`absolute member path ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new TarError(`member path with .. ${JSON.stringify(raw)}`);
  if (parts.length === 0) return '';
  return parts.join('/');
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new TarError('bad pax record');
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Lists an archive's members (validating every header and checksum) without reading file bodies. */
export async function listTar(read: ReadAt, archiveSize: number, limits: TarLimits = {}): Promise<TarEntry[]> {
  const maxEntries = limits.maxEntries ?? 10_000;
  const maxBytes = limits.maxBytes ?? 1024 * 1024 * 1024;
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let pos = 0;
  let total = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (pos + 512 <= archiveSize) {
    const h = await read(pos, 512);
    if (h.every((b) => b === 0)) break; // end of archive
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== octal(h, 148, 8)) throw new TarError(`bad tar header checksum at byte ${pos}`);
    const type = String.fromCharCode(h[156]!) || '0';
    const size = octal(h, 124, 12);
    const body = pos + 512;
    const next = body + Math.ceil(size / 512) * 512;
    if (next > archiveSize) throw new TarError('truncated tar archive');
    if (type === 'L' || type === 'x' || type === 'g') {
      if (size > 64 * 1024) throw new TarError('tar extended header too large');
      const data = await read(body, size);
      if (type === 'L') longName = data.toString('utf8').replace(/\0.*$/s, '');
      else if (type === 'x') paxPath = parsePax(data).path ?? paxPath;
      pos = next;
      continue;
    }
    const name = paxPath ?? longName ?? (h.subarray(257, 262).toString('ascii') === 'ustar' && str(h, 345, 155) ? `${str(h, 345, 155)}/${str(h, 0, 100)}` : str(h, 0, 100));
    longName = paxPath = undefined;
    const path = safeMemberPath(name);
    if (type === '0' || type === '\0' || type === '7') {
      if (path === '') throw new TarError('a file member without a name');
      total += size;
      if (total > maxBytes) throw new TarError(`bundle unpacks to more than ${maxBytes} bytes`);
      if (seen.has(path)) throw new TarError(`member ${path} appears twice`);
      seen.add(path);
      entries.push({ path, type: 'file', mode: octal(h, 100, 8) & 0o777, size, offset: body });
    } else if (type === '5') {
      if (path !== '') entries.push({ path, type: 'dir', mode: octal(h, 100, 8) & 0o777, size: 0, offset: body });
    } else {
      throw new TarError(`member ${JSON.stringify(path)} is a ${type === '1' ? 'hard link' : type === '2' ? 'symbolic link' : `type ${JSON.stringify(type)} entry`}: bundles hold only files and directories`);
    }
    if (entries.length > maxEntries) throw new TarError(`more than ${maxEntries} members`);
    pos = next;
  }
  return entries;
}

/** What a bundle's manifest.json says. */
export interface BundleManifest {
  /** the command to run, relative to the bundle directory: ["./deploy.sh", "--fast"] */
  entry: string[];
  name?: string;
  description?: string;
}

export function parseManifest(text: string): BundleManifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new TarError(`manifest.json is not JSON: ${(err as Error).message}`);
  }
  const o = m as Record<string, unknown>;
  if (!o || typeof o !== 'object' || !Array.isArray(o.entry) || o.entry.length === 0 || o.entry.length > 256 || !o.entry.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 4096)) {
    throw new TarError('manifest.json needs "entry": a non-empty list of strings (the command, relative to the bundle)');
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length > 200)) throw new TarError('manifest.json "name" must be a short string');
  if (o.description !== undefined && (typeof o.description !== 'string' || o.description.length > 4096)) throw new TarError('manifest.json "description" must be a string');
  return { entry: o.entry as string[], ...(o.name ? { name: o.name as string } : {}), ...(o.description ? { description: o.description as string } : {}) };
}
