/**
 * Script bundles (JKStack's "layout"): a tar archive with manifest.json at its root. The agent
 * fetches it from the hub, checks size and sha256, unpacks it into a fresh directory (files and
 * directories only; see protocol's tar.ts), runs the entry there, and removes everything after.
 */
import { createHash } from 'node:crypto';
import { chownSync, createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TarError, listTar, parseManifest, type BundleSpec } from '@tether/protocol';
import { lookupUser } from '../accounts.js';
import { runTask, taskFileName, type Placement, type TaskExecSpec } from './detached.js';
import type { RunHandle, RunOutcome } from './runner.js';

/** Downloads a transfer from the hub into `dest`. */
export type FetchTransfer = (transferId: string, dest: string) => Promise<void>;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** Unpacks a checked archive into `dir` (which must be new and empty); returns the manifest. */
export async function unpackBundle(archive: string, dir: string, limits = { maxBytes: 1024 * 1024 * 1024, maxEntries: 10_000 }): Promise<ReturnType<typeof parseManifest>> {
  const fh = await open(archive, 'r');
  try {
    const size = (await fh.stat()).size;
    const read = async (position: number, length: number) => {
      const b = Buffer.alloc(length);
      const { bytesRead } = await fh.read(b, 0, length, position);
      return b.subarray(0, bytesRead);
    };
    const entries = await listTar(read, size, limits);
    const manifest = entries.find((e) => e.path === 'manifest.json' && e.type === 'file');
    if (!manifest) throw new TarError('the bundle has no manifest.json at its root');
    if (manifest.size > 64 * 1024) throw new TarError('manifest.json is larger than 64 KiB');
    const parsed = parseManifest((await read(manifest.offset, manifest.size)).toString('utf8'));
    mkdirSync(dir, { mode: 0o700 });
    for (const e of entries) {
      const target = join(dir, e.path);
      if (e.type === 'dir') {
        mkdirSync(target, { recursive: true, mode: 0o700 });
        continue;
      }
      mkdirSync(join(target, '..'), { recursive: true, mode: 0o700 });
      // wx: never follow or replace anything (the directory is new, the archive has no links).
      const out = createWriteStream(target, { flags: 'wx', mode: (e.mode & 0o755) | 0o600 });
      if (e.size === 0) {
        await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
        continue;
      }
      await pipeline(createReadStream(archive, { start: e.offset, end: e.offset + e.size - 1 }), out);
    }
    return parsed;
  } finally {
    await fh.close();
  }
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

/** Runs a bundle task; the handle's `done` covers download, unpack, run and clean-up. */
export function runBundle(workDir: string, taskId: string, spec: BundleSpec & { exec: { placement?: Placement } }, fetchTransfer: FetchTransfer, onOutput: (s: 'stdout' | 'stderr', t: string) => void): RunHandle {
  const startedAt = Date.now();
  // Never join(workDir, '..'): an id of dots would have the clean-up remove the state directory.
  const archive = join(workDir, `${taskFileName(taskId)}.tar`);
  const dir = join(workDir, taskFileName(taskId));
  let inner: RunHandle | undefined;
  let cancelled: string | undefined;
  const failed = (error: string, status: RunOutcome['status'] = 'failed'): RunOutcome => ({
    status,
    exitCode: null,
    signal: null,
    stdout: '',
    stderr: '',
    stdoutBytes: 0,
    stderrBytes: 0,
    truncated: false,
    startedAt,
    endedAt: Date.now(),
    error,
  });
  const done = (async (): Promise<RunOutcome> => {
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    try {
      try {
        await fetchTransfer(spec.transferId, archive);
      } catch (err) {
        return failed(`could not fetch the bundle: ${(err as Error).message}`);
      }
      const size = statSync(archive).size;
      if (size !== spec.size) return failed(`bundle size ${size} differs from the ${spec.size} announced`);
      const sum = await sha256File(archive);
      if (sum !== spec.sha256) return failed(`bundle checksum mismatch (got ${sum.slice(0, 12)}…, expected ${spec.sha256.slice(0, 12)}…)`);
      let manifest;
      try {
        manifest = await unpackBundle(archive, dir);
      } catch (err) {
        return failed(`bad bundle: ${(err as Error).message}`);
      }
      if (spec.exec.user) {
        const u = lookupUser(spec.exec.user);
        if (u && (spec.exec.runAs ?? 'setuid') === 'setuid') chownTree(dir, u.uid, u.gid);
      }
      if (cancelled) return failed(`cancelled (${cancelled}) before the bundle ran`, 'killed');
      const command = spec.args?.length ? spec.args : manifest.entry;
      const pl = spec.exec.placement;
      // Detached, it may outlive this agent: the one that re-attaches removes the directory then.
      const exec: TaskExecSpec = { ...spec.exec, command: command.map((c, i) => (i === 0 && c.startsWith('./') ? join(dir, c) : c)), cwd: dir, stream: true, ...(pl ? { placement: { ...pl, cleanup: [dir, archive] } } : {}) };
      inner = runTask(exec, onOutput);
      return await inner.done;
    } finally {
      rmSync(archive, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return {
    pid: undefined,
    done,
    kill(sig) {
      if (inner) return inner.kill(sig);
      cancelled = sig;
      return true;
    },
  };
}
