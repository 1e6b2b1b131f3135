/**
 * Agent artifacts the hub hands out for the one-line install: `tether-agent-<version>-linux-<arch>.tar.gz`
 * files in one directory (`artifacts_dir`), written there by `npm run package:agent` or copied in by
 * an operator. The hub owns no table for them: the directory is the truth, read again on every list
 * (a directory read and one stat per artifact; hashes are kept by device, inode, size and mtime, so a
 * file is hashed once unless it changes).
 *
 * What is served must be what was hashed, and nothing outside the directory: names must match
 * ARTIFACT_RE exactly, a symlink counts only when it resolves inside the directory, anything that
 * is not a regular file is skipped (opened non-blocking, so a FIFO planted under an artifact's name
 * cannot hold a request), a file that changes while it is hashed is skipped until it settles, and a
 * sibling `<file>.sha256` (sha256sum format) that names another hash takes its artifact out of the
 * list. Every walk is bounded: entries read, artifacts kept, bytes per artifact.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, opendir, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';

export const ARTIFACT_RE = /^tether-agent-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)-linux-(x64|arm64)\.tar\.gz$/;
/** A version as artifacts carry it (semver without build metadata). */
export const VERSION_RE = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
export const ARCHES = ['x64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

/** Directory entries read per scan: a directory with more is not an artifacts directory. */
export const MAX_DIR_ENTRIES = 10_000;
/** Artifacts listed at most (the newest are not guaranteed past this: keep the directory pruned). */
export const MAX_ARTIFACTS = 256;
/** An agent tarball is tens of MiB; anything past this is not one. */
export const MAX_ARTIFACT_BYTES = 1024 ** 3;
const MAX_SIDECAR_BYTES = 4096;
const READ_CHUNK = 1024 * 1024;

export interface Artifact {
  file: string;
  version: string;
  arch: Arch;
  size: number;
  sha256: string;
}

/** An artifact opened for sending: `stream()` reads the very file that was hashed. */
export interface OpenedArtifact {
  artifact: Artifact;
  stream(): Readable;
  close(): Promise<void>;
}

/** Semver precedence (no build metadata): a release ranks above its pre-releases; identifiers compare numerically when both are numbers. */
export function compareVersions(a: string, b: string): number {
  const [ac, ap] = splitVersion(a);
  const [bc, bp] = splitVersion(b);
  for (let i = 0; i < 3; i++) if (ac[i]! !== bc[i]!) return ac[i]! < bc[i]! ? -1 : 1;
  if (!ap.length || !bp.length) return ap.length === bp.length ? 0 : ap.length ? -1 : 1;
  for (let i = 0; i < Math.min(ap.length, bp.length); i++) {
    const x = ap[i]!;
    const y = bp[i]!;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return BigInt(x) < BigInt(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return ap.length === bp.length ? 0 : ap.length < bp.length ? -1 : 1;
}

function splitVersion(v: string): [bigint[], string[]] {
  const dash = v.indexOf('-');
  const core = (dash < 0 ? v : v.slice(0, dash)).split('.').map((n) => BigInt(n));
  return [core, dash < 0 ? [] : v.slice(dash + 1).split('.')];
}

/** Newest version first; within a version, x64 before arm64. */
const order = (a: Artifact, b: Artifact) => compareVersions(b.version, a.version) || ARCHES.indexOf(a.arch) - ARCHES.indexOf(b.arch);

export class ArtifactStore {
  /** name → the hash of the file as it was (device, inode, size, mtime) */
  private readonly hashes = new Map<string, { key: string; sha256: string }>();
  private readonly hashing = new Map<string, Promise<string>>();
  private scanning: Promise<Artifact[]> | undefined;
  private readonly warned = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {}

  /** Every artifact, newest version first. Calls made while a scan runs share it. */
  list(): Promise<Artifact[]> {
    return (this.scanning ??= this.scan().finally(() => (this.scanning = undefined)));
  }

  /** The newest version held (for any architecture), or undefined when there is none. */
  async latest(): Promise<string | undefined> {
    return (await this.list())[0]?.version;
  }

  /** Artifacts whose bytes do not match their .sha256 file (as last seen): refused, with a reason. */
  private readonly damagedFiles = new Map<string, { sha256: string; declared: string }>();

  /** Why `file` is not served when its bytes differ from its recorded SHA-256; undefined otherwise. */
  damaged(file: string): string | undefined {
    const d = this.damagedFiles.get(file);
    return d && `${file} is damaged or tampered with: its bytes hash to SHA-256 ${d.sha256}, its .sha256 file (written when it was built) says ${d.declared}; this hub does not serve it`;
  }

  async find(version: string, arch: Arch): Promise<Artifact | undefined> {
    if (!VERSION_RE.test(version) || !ARCHES.includes(arch)) return undefined;
    const opened = await this.open(`tether-agent-${version}-linux-${arch}.tar.gz`);
    await opened?.close();
    return opened?.artifact;
  }

  /** The artifact named `file`, open for reading; undefined when there is no such artifact (or it is not one the list would show). */
  async open(file: string): Promise<OpenedArtifact | undefined> {
    if (!ARTIFACT_RE.test(file)) return undefined;
    const dirReal = await this.realDir();
    if (!dirReal) return undefined;
    const fh = await this.openInside(dirReal, file);
    if (!fh) return undefined;
    let artifact: Artifact | undefined;
    try {
      artifact = await this.inspect(dirReal, file, fh);
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (!artifact) {
      await fh.close();
      return undefined;
    }
    const size = artifact.size;
    return {
      artifact,
      stream: () => fh.createReadStream({ start: 0, end: size - 1, autoClose: true }),
      close: () => fh.close().catch(() => {}),
    };
  }

  private async scan(): Promise<Artifact[]> {
    const dirReal = await this.realDir();
    if (!dirReal) return [];
    const names: string[] = [];
    let seen = 0;
    const d = await opendir(dirReal);
    for await (const e of d) {
      if (++seen > MAX_DIR_ENTRIES) {
        this.warnOnce(`entries:${dirReal}`, { dir: dirReal, max: MAX_DIR_ENTRIES }, 'artifacts directory has more entries than are read: some artifacts may be missing from the list');
        break;
      }
      if (ARTIFACT_RE.test(e.name)) names.push(e.name);
    }
    names.sort((a, b) => compareVersions(ARTIFACT_RE.exec(b)![1]!, ARTIFACT_RE.exec(a)![1]!));
    if (names.length > MAX_ARTIFACTS) {
      this.warnOnce(`count:${dirReal}`, { dir: dirReal, max: MAX_ARTIFACTS, found: names.length }, 'more artifacts than are listed: the oldest are left out');
      names.length = MAX_ARTIFACTS;
    }
    const out: Artifact[] = [];
    for (const name of names) {
      // One at a time: hashing is I/O-bound, and a scan should not hold many descriptors.
      const fh = await this.openInside(dirReal, name);
      if (!fh) continue;
      try {
        const a = await this.inspect(dirReal, name, fh);
        if (a) out.push(a);
      } catch (err) {
        this.log?.warn({ file: name, err: (err as Error).message }, 'artifact skipped');
      } finally {
        await fh.close().catch(() => {});
      }
    }
    for (const name of this.hashes.keys()) if (!names.includes(name)) this.hashes.delete(name);
    return out.sort(order);
  }

  private async realDir(): Promise<string | undefined> {
    try {
      return await realpath(this.dir);
    } catch {
      return undefined; // no directory: no artifacts
    }
  }

  /**
   * Opens dir/name when it resolves to a regular file inside dir. Non-blocking, so that a FIFO or
   * device put in place between the checks cannot hold the open; the fstat decides.
   */
  private async openInside(dirReal: string, name: string): Promise<FileHandle | undefined> {
    let real: string;
    try {
      real = await realpath(join(dirReal, name));
    } catch {
      return undefined;
    }
    if (!real.startsWith(dirReal + sep)) {
      this.warnOnce(`escape:${name}:${real}`, { file: name, target: real }, 'artifact is a link out of the artifacts directory: ignored');
      return undefined;
    }
    let fh: FileHandle;
    try {
      fh = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    const st = await fh.stat().catch(() => undefined);
    if (!st?.isFile()) {
      await fh.close().catch(() => {});
      return undefined;
    }
    return fh;
  }

  /** The artifact behind an open handle: hashed (or from the cache), checked against its sidecar. */
  private async inspect(dirReal: string, name: string, fh: FileHandle): Promise<Artifact | undefined> {
    const m = ARTIFACT_RE.exec(name)!;
    const st = await fh.stat();
    if (st.size === 0 || st.size > MAX_ARTIFACT_BYTES) {
      this.warnOnce(`size:${name}:${st.size}`, { file: name, size: st.size, max: MAX_ARTIFACT_BYTES }, 'artifact is empty or too large: ignored');
      return undefined;
    }
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    let sha256 = this.hashes.get(name)?.key === key ? this.hashes.get(name)!.sha256 : undefined;
    if (!sha256) {
      let pending = this.hashing.get(key);
      if (!pending) {
        pending = hashHandle(fh, st.size).finally(() => this.hashing.delete(key));
        this.hashing.set(key, pending);
      }
      sha256 = await pending;
      const after = await fh.stat();
      if (after.size !== st.size || after.mtimeMs !== st.mtimeMs) return undefined; // still being written
      this.hashes.set(name, { key, sha256 });
    }
    const declared = await readSidecar(dirReal, name);
    if (declared && declared !== sha256) {
      if (this.damagedFiles.size > 1000) this.damagedFiles.clear();
      this.damagedFiles.set(name, { sha256, declared });
      this.warnOnce(`sidecar:${name}:${sha256}:${declared}`, { file: name, sha256, sidecar: declared }, 'artifact does not match its .sha256 file: not served');
      return undefined;
    }
    this.damagedFiles.delete(name);
    return { file: name, version: m[1]!, arch: m[2] as Arch, size: st.size, sha256 };
  }

  private warnOnce(key: string, obj: object, msg: string): void {
    if (this.warned.has(key)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(key);
    this.log?.warn(obj, msg);
  }
}

/** SHA-256 of the first `size` bytes, read in 1 MiB chunks (never the whole file in memory). */
async function hashHandle(fh: FileHandle, size: number): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size));
  let pos = 0;
  while (pos < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) throw new Error('file shrank while it was read');
    h.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return h.digest('hex');
}

/** The hash a `<name>.sha256` beside the artifact declares, when there is a readable one. */
async function readSidecar(dirReal: string, name: string): Promise<string | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(join(dirReal, `${name}.sha256`), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_SIDECAR_BYTES) return undefined;
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(MAX_SIDECAR_BYTES), 0, MAX_SIDECAR_BYTES, 0);
    return /^([0-9a-fA-F]{64})\b/.exec(buffer.subarray(0, bytesRead).toString('latin1'))?.[1]?.toLowerCase();
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** The `.sha256` file the hub serves beside an artifact, in sha256sum's format. */
export const sha256Line = (a: Artifact) => `${a.sha256}  ${a.file}\n`;
