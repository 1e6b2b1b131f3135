/**
 * Where a file operation may touch: only inside the file roots of the agent's own configuration.
 *
 * A requested path is never used as given. It is normalised (so `..` is gone), the longest prefix
 * that exists is replaced by its real path (so every symbolic link on the way is followed), and the
 * result must lie inside the real path of a root. Operations then use that resolved path, so what
 * was checked is what is opened. Opening adds O_NOFOLLOW and a look at /proc/self/fd/N afterwards
 * (`checkOpened`), which catches a component swapped for a link between the check and the open.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { FileErrorCode } from '@tether/protocol';

/** A failure with a protocol error code and a sentence for the operator. */
export class FileOpError extends Error {
  constructor(
    readonly code: FileErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Resolved {
  /** the real path: symlinks in the existing part resolved, a non-existent tail appended as given */
  path: string;
  /** the real path of the root it lies in */
  root: string;
}

export function isInside(child: string, root: string): boolean {
  if (child === root) return true;
  const prefix = root.endsWith(sep) ? root : root + sep;
  return child.startsWith(prefix);
}

/** Real paths of the roots that exist now (a root that is missing grants nothing). */
export async function realRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    try {
      out.push(await fsp.realpath(r));
    } catch {
      /* missing or unreadable root: nothing inside it is reachable */
    }
  }
  return out;
}

function fsError(err: NodeJS.ErrnoException, path: string): FileOpError {
  switch (err.code) {
    case 'ENOENT':
      return new FileOpError('not_found', `${path}: no such file or directory`);
    case 'EACCES':
    case 'EPERM':
      return new FileOpError('permission', `${path}: permission denied`);
    case 'ELOOP':
      return new FileOpError('outside_roots', `${path}: too many levels of symbolic links, or a link where none is allowed`);
    case 'ENOTDIR':
      return new FileOpError('not_a_directory', `${path}: a component of the path is not a directory`);
    case 'EISDIR':
      return new FileOpError('is_a_directory', `${path}: is a directory`);
    case 'EEXIST':
      return new FileOpError('exists', `${path}: already exists`);
    case 'ENOTEMPTY':
      return new FileOpError('exists', `${path}: directory not empty (delete it with recursive)`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new FileOpError('no_space', `${path}: no space left on the device`);
    case 'EFBIG':
      return new FileOpError('too_large', `${path}: file too large`);
    case 'ENAMETOOLONG':
      return new FileOpError('bad_request', `${path}: name too long`);
    default:
      return new FileOpError('internal', `${path}: ${err.code ?? ''} ${err.message}`.trim());
  }
}

/** Turns any error into a FileOpError (node's errno errors get their matching code). */
export function toFileError(err: unknown, path: string): FileOpError {
  if (err instanceof FileOpError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string') return fsError(e, path);
  return new FileOpError('internal', `${path}: ${(e as Error)?.message ?? String(err)}`);
}

/** Checks the shape of a requested path: absolute, no NUL byte. */
export function checkRequested(p: string): string {
  if (typeof p !== 'string' || !isAbsolute(p)) throw new FileOpError('bad_request', `not an absolute path: ${JSON.stringify(String(p).slice(0, 200))}`);
  if (p.includes('\0')) throw new FileOpError('bad_request', 'path contains a NUL byte');
  return resolve(p);
}

/** Real path of the longest existing prefix of an absolute, normalised path, plus the rest as given. */
async function realpathOfExisting(abs: string): Promise<string> {
  const tail: string[] = [];
  let head = abs;
  for (;;) {
    try {
      const real = await fsp.realpath(head);
      return tail.length ? join(real, ...tail) : real;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A dangling link resolves like a missing name: the operation then sees the link itself.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && head !== '/') {
        tail.unshift(basename(head));
        head = dirname(head);
        continue;
      }
      throw toFileError(err, abs);
    }
  }
}

const outside = (requested: string) =>
  new FileOpError('outside_roots', `${requested} is outside this agent's file roots (file_roots in its local config)`);

/**
 * Resolves a requested path, following every symbolic link including the last component, and
 * requires the result inside a root.
 */
export async function resolveInRoots(requested: string, roots: readonly string[]): Promise<Resolved> {
  const abs = checkRequested(requested);
  const reals = await realRoots(roots);
  if (reals.length === 0) throw new FileOpError('refused', 'none of this agent\'s file roots exists');
  const path = await realpathOfExisting(abs);
  const root = reals.filter((r) => isInside(path, r)).sort((a, b) => b.length - a.length)[0];
  if (!root) throw outside(requested);
  return { path, root };
}

/**
 * Resolves the parent directory (following links) but keeps the last component as named, for
 * operations on a name itself (delete): removing a link inside a root removes the link, never what
 * it points to. The name must not be a root.
 */
export async function resolveEntryInRoots(requested: string, roots: readonly string[]): Promise<Resolved> {
  const abs = checkRequested(requested);
  const reals = await realRoots(roots);
  if (reals.length === 0) throw new FileOpError('refused', 'none of this agent\'s file roots exists');
  if (abs === '/') throw outside(requested);
  const parent = await realpathOfExisting(dirname(abs));
  const path = join(parent, basename(abs));
  const root = reals.filter((r) => isInside(path, r)).sort((a, b) => b.length - a.length)[0];
  if (!root) throw outside(requested);
  if (reals.includes(path)) throw new FileOpError('refused', `${requested} is a file root itself; it cannot be removed through the agent`);
  return { path, root };
}

/**
 * After opening: the kernel's own name for the descriptor must still be inside a root. Catches a
 * directory swapped for a symlink between the check and the open.
 */
export async function checkOpened(fd: number, roots: readonly string[], requested: string): Promise<void> {
  let actual: string;
  try {
    actual = await fsp.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return; // no /proc (not Linux): the path check above is what there is
  }
  const reals = await realRoots(roots);
  if (!reals.some((r) => isInside(actual, r))) throw outside(requested);
}
