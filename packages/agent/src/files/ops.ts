/**
 * The file operations themselves, on paths already resolved inside the roots (see paths.ts).
 * Everything streams; nothing holds a file in memory.
 */
import { constants as C, promises as fsp, type Stats } from 'node:fs';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileEntry, FileRequestBody } from '@tether/protocol';
import { groupName, lookupGroup, lookupUser, userName } from '../accounts.js';
import { checkOpened, FileOpError, toFileError, type Resolved } from './paths.js';

/** Entries listed per directory, and the JSON budget for them (a control frame is at most 1 MiB). */
export const MAX_LS_ENTRIES = 10_000;
const MAX_LS_JSON = 800 * 1024;
/** Names read from one directory before giving up on a complete sorted listing. */
const MAX_LS_SCAN = 200_000;

export function entryOf(name: string, st: Stats, target?: string): FileEntry {
  return {
    name: name.slice(0, 4096),
    type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other',
    mode: st.mode & 0o7777,
    owner: userName(st.uid).slice(0, 64),
    group: groupName(st.gid).slice(0, 64),
    size: st.size,
    mtime: Math.max(0, Math.floor(st.mtimeMs)),
    ...(target !== undefined ? { target: target.slice(0, 4096) } : {}),
  };
}

async function entryAt(path: string, name: string): Promise<FileEntry> {
  const st = await fsp.lstat(path);
  return entryOf(name, st, st.isSymbolicLink() ? await fsp.readlink(path).catch(() => '') : undefined);
}

export async function list(r: Resolved, requested: string): Promise<{ entries: FileEntry[]; truncated: boolean }> {
  let st: Stats;
  try {
    st = await fsp.stat(r.path);
  } catch (err) {
    throw toFileError(err, requested);
  }
  if (!st.isDirectory()) return { entries: [entryOf(basename(r.path), st)], truncated: false };
  const names: string[] = [];
  let truncated = false;
  try {
    const dir = await fsp.opendir(r.path, { bufferSize: 256 });
    for await (const d of dir) {
      if (names.length >= MAX_LS_SCAN) {
        truncated = true;
        break; // leaving the loop closes the directory
      }
      names.push(d.name);
    }
  } catch (err) {
    throw toFileError(err, requested);
  }
  // Byte order, like `LC_ALL=C ls`: stable and the same on every host.
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries: FileEntry[] = [];
  let json = 0;
  for (let i = 0; i < names.length; i += 64) {
    const batch = await Promise.all(names.slice(i, i + 64).map((n) => entryAt(join(r.path, n), n).catch(() => undefined)));
    for (const e of batch) {
      if (!e) continue; // removed while listing
      json += JSON.stringify(e).length + 1;
      if (entries.length >= MAX_LS_ENTRIES || json > MAX_LS_JSON) return { entries, truncated: true };
      entries.push(e);
    }
  }
  return { entries, truncated };
}

/** stat follows links (the resolver did); a dangling link is reported as the link itself. */
export async function stat(r: Resolved, requested: string): Promise<FileEntry> {
  try {
    return await entryAt(r.path, basename(requested) || '/');
  } catch (err) {
    throw toFileError(err, requested);
  }
}

export async function remove(r: Resolved, requested: string, recursive: boolean): Promise<void> {
  try {
    const st = await fsp.lstat(r.path);
    if (st.isDirectory()) {
      if (recursive) await fsp.rm(r.path, { recursive: true }); // rm removes links inside, never follows them
      else await fsp.rmdir(r.path);
    } else await fsp.unlink(r.path);
  } catch (err) {
    throw toFileError(err, requested);
  }
}

/** uid/gid for chown; -1 leaves that one unchanged. */
export function ownerIds(owner: string | undefined, group: string | undefined): { uid: number; gid: number } | undefined {
  if (owner === undefined && group === undefined) return undefined;
  let uid = -1;
  let gid = -1;
  if (owner !== undefined) {
    const u = lookupUser(owner);
    if (!u) throw new FileOpError('bad_request', `no such user on this host: ${owner}`);
    uid = u.uid;
  }
  if (group !== undefined) {
    const g = lookupGroup(group);
    if (!g) throw new FileOpError('bad_request', `no such group on this host: ${group}`);
    gid = g.gid;
  }
  return { uid, gid };
}

/** setuid, setgid and sticky: what a mode from the hub loses unless the agent's own file allows it. */
export const SPECIAL_BITS = 0o7000;

export async function makeDir(r: Resolved, requested: string, o: { recursive?: boolean; mode?: number; owner?: string; group?: string }): Promise<FileEntry> {
  const ids = ownerIds(o.owner, o.group);
  try {
    const existing = await fsp.lstat(r.path).catch(() => undefined);
    if (existing) {
      if (existing.isDirectory() && o.recursive) return entryOf(basename(r.path), existing);
      throw new FileOpError('exists', `${requested} already exists`);
    }
    if (!o.recursive) {
      const parent = await fsp.stat(dirname(r.path)).catch(() => undefined);
      if (!parent) throw new FileOpError('not_found', `${dirname(requested)} does not exist (create parents with recursive)`);
      if (!parent.isDirectory()) throw new FileOpError('not_a_directory', `${dirname(requested)} is not a directory`);
    }
    await fsp.mkdir(r.path, { recursive: Boolean(o.recursive), mode: o.mode ?? 0o755 });
    // Owner first: a chown clears setuid and setgid, so the mode set after it is the one that stays.
    if (ids) await fsp.lchown(r.path, ids.uid, ids.gid);
    if (o.mode !== undefined) await fsp.chmod(r.path, o.mode); // exact bits, whatever the umask
    return await entryAt(r.path, basename(r.path));
  } catch (err) {
    throw toFileError(err, requested);
  }
}

/** Counts and hashes what flows through; fails past `max` bytes or after `idleMs` without data. */
export class Hasher extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private idle: NodeJS.Timeout | undefined;
  constructor(private readonly o: { max?: number; exact?: number; idleMs?: number; what?: string } = {}) {
    super();
    this.arm();
  }
  private arm(): void {
    if (!this.o.idleMs) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.destroy(new FileOpError('transfer', `${this.o.what ?? 'transfer'}: no data for ${Math.round(this.o.idleMs! / 1000)} s`)), this.o.idleMs);
    this.idle.unref();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const limit = this.o.exact ?? this.o.max;
    if (limit !== undefined && this.bytes > limit) {
      cb(new FileOpError('too_large', `${this.o.what ?? 'transfer'}: more than ${limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.arm();
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.idle);
    if (this.o.exact !== undefined && this.bytes !== this.o.exact) {
      cb(new FileOpError('transfer', `${this.o.what ?? 'transfer'}: ended after ${this.bytes} of ${this.o.exact} bytes`));
      return;
    }
    cb();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.idle);
    cb(err);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Opens a regular file for reading without following a final link, checks what was opened and
 * returns a hashing stream of exactly its size at open time.
 */
export async function openForSend(r: Resolved, requested: string, roots: readonly string[], idleMs: number): Promise<{ stream: Readable; hasher: Hasher; size: number; mode: number; close: () => Promise<void> }> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(r.path, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    throw toFileError(err, requested);
  }
  try {
    await checkOpened(fh.fd, roots, requested);
    const st = await fh.stat();
    if (st.isDirectory()) throw new FileOpError('is_a_directory', `${requested} is a directory`);
    if (!st.isFile()) throw new FileOpError('bad_request', `${requested} is not a regular file`);
    // The stream owns the descriptor from here on and closes it when it ends or is destroyed.
    const raw = fh.createReadStream({ start: 0, ...(st.size > 0 ? { end: st.size - 1 } : {}), highWaterMark: 256 * 1024 });
    const hasher = new Hasher({ exact: st.size, idleMs, what: `reading ${requested}` });
    raw.on('error', (e) => hasher.destroy(toFileError(e, requested)));
    raw.pipe(hasher);
    return {
      stream: hasher,
      hasher,
      size: st.size,
      mode: st.mode & 0o7777,
      close: async () => {
        if (!raw.closed) await new Promise<void>((res) => raw.once('close', () => res()).destroy());
      },
    };
  } catch (err) {
    await fh.close().catch(() => {});
    throw toFileError(err, requested);
  }
}

export interface Source {
  body: Readable;
  /** bytes the source announces (Content-Length), if it does */
  size: number | undefined;
}

export interface ReceiveOptions {
  sha256?: string;
  size?: number;
  /** hard ceiling when the size is not known in advance */
  maxBytes: number;
  mode?: number;
  /** keep setuid, setgid and sticky bits (of `mode`, or of the file replaced); otherwise they are dropped */
  specialModes?: boolean;
  owner?: string;
  group?: string;
  noClobber?: boolean;
  idleMs: number;
  what: string;
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await fsp.open(dir, C.O_RDONLY | C.O_DIRECTORY).catch(() => undefined);
  if (!d) return;
  await d.sync().catch(() => {});
  await d.close().catch(() => {});
}

/**
 * Writes a stream into place: a temporary file in the target's directory, sha256 computed while
 * writing and checked, mode and owner set, fsync, then an atomic rename (or link, for no-clobber).
 * The temporary file is removed on any failure, so a failed transfer leaves nothing behind.
 */
export async function receiveInto(r: Resolved, requested: string, roots: readonly string[], o: ReceiveOptions, open: () => Promise<Source>): Promise<{ sha256: string; bytes: number }> {
  const ids = ownerIds(o.owner, o.group);
  const existing = await fsp.lstat(r.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw toFileError(err, requested);
  });
  if (existing?.isDirectory()) throw new FileOpError('is_a_directory', `${requested} is a directory`);
  if (existing && o.noClobber) throw new FileOpError('exists', `${requested} already exists (no-clobber)`);
  const dir = dirname(r.path);
  const dst = await fsp.stat(dir).catch(() => undefined);
  if (!dst) throw new FileOpError('not_found', `${dirname(requested)} does not exist`);
  if (!dst.isDirectory()) throw new FileOpError('not_a_directory', `${dirname(requested)} is not a directory`);
  if (o.size !== undefined) {
    if (o.size > o.maxBytes) throw new FileOpError('too_large', `${o.size} bytes is more than this agent accepts (${o.maxBytes})`);
    const fs = await fsp.statfs(dir).catch(() => undefined);
    if (fs && fs.bavail * fs.bsize < o.size) throw new FileOpError('no_space', `${o.size} bytes do not fit: ${fs.bavail * fs.bsize} bytes free in ${dirname(requested)}`);
  }
  // Replacing a file keeps its mode and owner unless new ones are asked for (as cp onto it would),
  // except a setuid or setgid bit: new contents under an old setuid bit would be a new setuid program.
  const mode = (o.mode ?? (existing?.isFile() ? existing.mode & 0o7777 : 0o644)) & (o.specialModes ? 0o7777 : 0o777);
  const chown = ids ?? (existing?.isFile() && process.getuid?.() === 0 ? { uid: existing.uid, gid: existing.gid } : undefined);

  const tmp = join(dir, `.tether-${randomBytes(8).toString('hex')}.part`);
  let fh: fsp.FileHandle | undefined;
  let body: Readable | undefined;
  try {
    fh = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    await checkOpened(fh.fd, roots, requested);
    const src = await open();
    body = src.body;
    if (o.size !== undefined && src.size !== undefined && src.size !== o.size) throw new FileOpError('transfer', `${o.what}: announced ${src.size} bytes, expected ${o.size}`);
    const expect = o.size ?? src.size;
    if (expect !== undefined && expect > o.maxBytes) throw new FileOpError('too_large', `${o.what}: ${expect} bytes is more than this agent accepts (${o.maxBytes})`);
    if (o.size === undefined && src.size !== undefined) {
      const fs = await fsp.statfs(dir).catch(() => undefined);
      if (fs && fs.bavail * fs.bsize < src.size) throw new FileOpError('no_space', `${src.size} bytes do not fit: ${fs.bavail * fs.bsize} bytes free in ${dirname(requested)}`);
    }
    const hasher = new Hasher({ ...(expect !== undefined ? { exact: expect } : { max: o.maxBytes }), idleMs: o.idleMs, what: o.what });
    const out = fh;
    // Written by hand rather than through a WriteStream, which would keep the handle referenced
    // (and close() waiting) until the stream closes; awaiting each write is the backpressure.
    await pipeline(body, hasher, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        let off = 0;
        while (off < chunk.length) off += (await out.write(chunk, off, chunk.length - off)).bytesWritten;
      }
    });
    const sha256 = hasher.digest();
    if (o.sha256 && o.sha256 !== sha256) throw new FileOpError('checksum', `sha256 mismatch: expected ${o.sha256}, received ${sha256}; ${requested} was not written`);
    // Owner first: a chown clears setuid and setgid, so the mode set after it is the one that stays.
    if (chown) await fh.chown(chown.uid, chown.gid);
    await fh.chmod(mode);
    await fh.sync();
    await fh.close();
    fh = undefined;
    if (o.noClobber) {
      // link() fails if the name exists: no window in which another writer's file is replaced.
      await fsp.link(tmp, r.path);
      await fsp.unlink(tmp);
    } else await fsp.rename(tmp, r.path);
    await fsyncDir(dir);
    return { sha256, bytes: hasher.bytes };
  } catch (err) {
    body?.destroy();
    await fh?.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    throw toFileError(err, requested);
  }
}
