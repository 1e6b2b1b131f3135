/**
 * `tether cp` and `tether files …`: files on hosts, streamed from and to disk (never held in
 * memory), sha256 computed here and compared with what the hub and the agent computed.
 */
import { createReadStream, createWriteStream, constants as C, promises as fsp } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { IncomingMessage } from 'node:http';
import { ApiError, Client } from '../client.js';
import { stepUp } from '../accounts.js';
import { fail } from '../output.js';
import { table } from '../table.js';

interface FileEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  owner: string;
  group: string;
  size: number;
  mtime: number;
  target?: string;
}

export interface RemotePath {
  host: string;
  path: string;
}

/** `HOST:/abs/path` → remote; anything else is local (write `./a:b` for a local name with a colon). */
export function parseRemote(arg: string): RemotePath | undefined {
  const m = /^([^/:\s]+):(\/.*)$/.exec(arg);
  return m ? { host: m[1]!, path: m[2]! } : undefined;
}

function remoteArg(arg: string): RemotePath {
  const r = parseRemote(arg);
  if (!r) throw new Error(`expected HOST:/absolute/path, got ${JSON.stringify(arg)}`);
  return r;
}

function octalMode(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(s)) throw new Error(`--mode takes octal permission bits such as 0644, got ${JSON.stringify(s)}`);
  return s;
}

/** A host id, or a hostname that names exactly one host. */
export async function hostId(c: Client, host: string): Promise<string> {
  try {
    return (await c.call<{ id: string }>('GET', `/api/v1/hosts/${encodeURIComponent(host)}`)).id;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  const r = await c.call<{ hosts: { id: string; hostname: string }[] }>('GET', `/api/v1/hosts?q=${encodeURIComponent(host)}`);
  const exact = r.hosts.filter((h) => h.hostname === host);
  if (exact.length === 1) return exact[0]!.id;
  if (exact.length > 1) throw new Error(`${exact.length} hosts are called ${host}; use a host id (${exact.map((h) => h.id).join(', ')})`);
  throw new Error(`no host with id or hostname ${host}`);
}

const filesUrl = (id: string, sub: string, q: Record<string, string | undefined>) => {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, v);
  return `/api/v1/hosts/${encodeURIComponent(id)}/files${sub}?${qs}`;
};

class Sha extends Transform {
  readonly h = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

async function sha256File(path: string): Promise<string> {
  const s = new Sha();
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), s, async (src: AsyncIterable<unknown>) => {
    for await (const _ of src);
  });
  return s.h.digest('hex');
}

async function remoteStat(c: Client, id: string, path: string): Promise<FileEntry | undefined> {
  try {
    return await c.call<FileEntry>('GET', filesUrl(id, '/stat', { path }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.code === 'not_found') return undefined;
    throw err;
  }
}

interface CpOptions {
  mode?: string;
  owner?: string;
  group?: string;
  clobber?: boolean;
  json?: boolean;
}

interface CpResult {
  source: string;
  destination: string;
  bytes: number;
  sha256: string;
  seconds: number;
}

/** A streamed write that needs a fresh second factor: confirm, then send again (the body is made anew). */
async function withStepUp(c: Client, send: () => Promise<IncomingMessage>): Promise<IncomingMessage> {
  const res = await send();
  if (res.statusCode !== 403) return res;
  const err = await Client.errorOf(res);
  if (err.code !== 'step_up_required') throw err;
  await stepUp(c);
  return send();
}

async function upload(c: Client, src: string, dst: RemotePath, o: CpOptions): Promise<CpResult> {
  const st = await fsp.stat(src);
  if (!st.isFile()) throw new Error(`${src} is not a regular file`);
  const id = await hostId(c, dst.host);
  let path = dst.path;
  if (path.endsWith('/') || (await remoteStat(c, id, path))?.type === 'dir') path = join(path, basename(src));
  const t0 = performance.now();
  // Hashed first, so the agent can check the bytes before the file appears under its name.
  const sha256 = await sha256File(src);
  const put = () =>
    c.stream('PUT', filesUrl(id, '/content', { path, mode: octalMode(o.mode), owner: o.owner, group: o.group, sha256, noClobber: o.clobber === false ? 'true' : undefined }), {
      body: createReadStream(src, { highWaterMark: 1024 * 1024 }),
      size: st.size,
    });
  const res = await withStepUp(c, put);
  if (res.statusCode !== 200) throw await Client.errorOf(res);
  let text = '';
  for await (const chunk of res) text += (chunk as Buffer).toString('utf8');
  const r = JSON.parse(text) as { bytes: number; sha256: string };
  if (r.sha256 !== sha256 || r.bytes !== st.size) throw new Error(`checksum mismatch: sent ${sha256} (${st.size} bytes), the host wrote ${r.sha256} (${r.bytes} bytes)`);
  return { source: src, destination: `${dst.host}:${path}`, bytes: r.bytes, sha256, seconds: (performance.now() - t0) / 1000 };
}

async function download(c: Client, src: RemotePath, dst: string, o: CpOptions): Promise<CpResult> {
  const id = await hostId(c, src.host);
  const toStdout = dst === '-';
  let path = dst;
  if (!toStdout) {
    const dstStat = await fsp.stat(dst).catch(() => undefined);
    if (dst.endsWith('/') || dstStat?.isDirectory()) path = join(dst, basename(src.path));
    if (o.clobber === false && (await fsp.lstat(path).catch(() => undefined))) throw new Error(`${path} already exists (--no-clobber)`);
  }
  const t0 = performance.now();
  const res = await c.stream('GET', filesUrl(id, '/content', { path: src.path }));
  if (res.statusCode !== 200) throw await Client.errorOf(res);
  const size = Number(res.headers['x-tether-size']);
  const remoteMode = res.headers['x-tether-mode'] ? parseInt(String(res.headers['x-tether-mode']), 8) : 0o644;
  const sha = new Sha();
  const check = () => {
    const local = sha.h.digest('hex');
    const trailer = res.trailers['x-tether-sha256'];
    if (!trailer) throw new Error('the download ended without the hub’s checksum (cut off?)');
    if (trailer !== local || sha.bytes !== size) throw new Error(`checksum mismatch: received ${local} (${sha.bytes} bytes), the hub sent ${trailer} (${size} bytes)`);
    return local;
  };
  if (toStdout) {
    await pipeline(res, sha, process.stdout);
    return { source: `${src.host}:${src.path}`, destination: '-', bytes: sha.bytes, sha256: check(), seconds: (performance.now() - t0) / 1000 };
  }
  const tmp = join(dirname(path), `.${basename(path).slice(0, 200)}.tether-${randomBytes(6).toString('hex')}.part`);
  try {
    await pipeline(res, sha, createWriteStream(tmp, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 }));
    const sha256 = check();
    const fh = await fsp.open(tmp, C.O_RDONLY);
    try {
      if (o.owner !== undefined || o.group !== undefined) {
        const uid = o.owner === undefined ? -1 : /^\d+$/.test(o.owner) ? Number(o.owner) : NaN;
        const gid = o.group === undefined ? -1 : /^\d+$/.test(o.group) ? Number(o.group) : NaN;
        if (Number.isNaN(uid) || Number.isNaN(gid)) throw new Error('for a local destination, --owner and --group take numeric ids');
        await fh.chown(uid, gid);
      }
      await fh.chmod(o.mode !== undefined ? parseInt(octalMode(o.mode)!, 8) : remoteMode & 0o777 & ~process.umask());
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (o.clobber === false) {
      await fsp.link(tmp, path).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? new Error(`${path} already exists (--no-clobber)`) : err;
      });
      await fsp.unlink(tmp);
    } else await fsp.rename(tmp, path);
    return { source: `${src.host}:${src.path}`, destination: path, bytes: sha.bytes, sha256, seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    res.destroy();
    await fsp.unlink(tmp).catch(() => {});
    throw err;
  }
}

function human(r: CpResult): string {
  const rate = r.seconds > 0 ? ` (${(r.bytes / 1024 / 1024 / r.seconds).toFixed(1)} MiB/s)` : '';
  return `${r.source} → ${r.destination}: ${r.bytes} bytes in ${r.seconds.toFixed(2)} s${rate}, sha256 ${r.sha256}`;
}

function modeString(e: FileEntry): string {
  const t = e.type === 'dir' ? 'd' : e.type === 'link' ? 'l' : e.type === 'other' ? '?' : '-';
  const rwx = (b: number) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${b & 1 ? 'x' : '-'}`;
  return t + rwx(e.mode >> 6) + rwx(e.mode >> 3) + rwx(e.mode);
}

export function register(program: Command): void {
  program
    .command('cp <source> <destination>')
    .description('copy a file to or from a host: tether cp ./app.tar web1:/srv/app.tar, tether cp web1:/etc/hosts ./ (HOST is a host id or hostname; - as destination writes to stdout)')
    .option('--mode <octal>', 'permission bits of the written file, e.g. 0644 (default: kept when replacing, else 0644)')
    .option('--owner <user>', 'owner of the written file (a name or uid on that host)')
    .option('--group <group>', 'group of the written file')
    .option('--no-clobber', 'refuse to replace an existing file')
    .option('--json', 'machine-readable output')
    .action(async (source: string, destination: string, o: CpOptions) => {
      try {
        const c = Client.forHostWork();
        const rs = parseRemote(source);
        const rd = destination === '-' ? undefined : parseRemote(destination);
        if (rs && rd) throw new Error('copying between two hosts is not supported: copy to this machine first');
        if (!rs && !rd) throw new Error('one side must be remote, written HOST:/absolute/path');
        const r = rd ? await upload(c, source, rd, o) : await download(c, rs!, destination, o);
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else (r.destination === '-' ? process.stderr : process.stdout).write(human(r) + '\n');
      } catch (err) {
        fail(err);
      }
    });

  const files = program.command('files').description('files on a host (within the file roots its agent allows)');
  files
    .command('ls <target>')
    .description('list a directory: tether files ls HOST:/path')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: { json?: boolean }) => {
      try {
        const t = remoteArg(target);
        const c = Client.forHostWork();
        const r = await c.call<{ path: string; entries: FileEntry[]; truncated: boolean }>('GET', filesUrl(await hostId(c, t.host), '', { path: t.path }));
        if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        process.stdout.write(
          table(
            ['MODE', 'OWNER', 'GROUP', 'SIZE', 'MODIFIED', 'NAME'],
            r.entries.map((e) => [modeString(e), e.owner, e.group, String(e.size), new Date(e.mtime).toISOString().slice(0, 19).replace('T', ' '), e.name + (e.type === 'dir' ? '/' : '') + (e.target !== undefined ? ` -> ${e.target}` : '')]),
          ) + (r.truncated ? `\n(more entries than shown)` : '') + '\n',
        );
      } catch (err) {
        fail(err);
      }
    });
  files
    .command('stat <target>')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: { json?: boolean }) => {
      try {
        const t = remoteArg(target);
        const c = Client.forHostWork();
        const e = await c.call<FileEntry & { path: string }>('GET', filesUrl(await hostId(c, t.host), '/stat', { path: t.path }));
        if (o.json) return void process.stdout.write(JSON.stringify(e, null, 2) + '\n');
        process.stdout.write(`${e.path}\n  type ${e.type}  mode ${modeString(e)} (${e.mode.toString(8).padStart(4, '0')})  owner ${e.owner}:${e.group}  size ${e.size}  modified ${new Date(e.mtime).toISOString()}${e.target !== undefined ? `  -> ${e.target}` : ''}\n`);
      } catch (err) {
        fail(err);
      }
    });
  files
    .command('rm <target>')
    .description('delete a file or link (a directory tree with -r)')
    .option('-r, --recursive', 'delete a directory and everything in it')
    .action(async (target: string, o: { recursive?: boolean }) => {
      try {
        const t = remoteArg(target);
        const c = Client.forHostWork();
        await c.call('DELETE', filesUrl(await hostId(c, t.host), '', { path: t.path, recursive: o.recursive ? 'true' : undefined }));
      } catch (err) {
        fail(err);
      }
    });
  files
    .command('mkdir <target>')
    .option('-p, --parents', 'create missing parents; no error if it exists')
    .option('--mode <octal>', 'permission bits, e.g. 0755')
    .option('--owner <user>', 'owner (a name or uid on that host)')
    .option('--group <group>', 'group')
    .action(async (target: string, o: { parents?: boolean; mode?: string; owner?: string; group?: string }) => {
      try {
        const t = remoteArg(target);
        const c = Client.forHostWork();
        const mode = octalMode(o.mode);
        await c.call('POST', filesUrl(await hostId(c, t.host), '/mkdir', {}).replace(/\?$/, ''), {
          path: t.path,
          recursive: Boolean(o.parents),
          ...(mode ? { mode } : {}),
          ...(o.owner ? { owner: o.owner } : {}),
          ...(o.group ? { group: o.group } : {}),
        });
      } catch (err) {
        fail(err);
      }
    });
  files
    .command('fetch <url> <target>')
    .description('have the host download a URL into a file: tether files fetch https://… HOST:/path')
    .option('--sha256 <hex>', 'expected sha256; the file is not written if it differs')
    .option('--mode <octal>', 'permission bits')
    .option('--owner <user>', 'owner')
    .option('--group <group>', 'group')
    .option('--no-clobber', 'refuse to replace an existing file')
    .option('--json', 'machine-readable output')
    .action(async (url: string, target: string, o: CpOptions & { sha256?: string }) => {
      try {
        const t = remoteArg(target);
        const c = Client.forHostWork();
        const mode = octalMode(o.mode);
        const body = Buffer.from(
          JSON.stringify({
            path: t.path,
            url,
            ...(o.sha256 ? { sha256: o.sha256.toLowerCase() } : {}),
            ...(mode ? { mode } : {}),
            ...(o.owner ? { owner: o.owner } : {}),
            ...(o.group ? { group: o.group } : {}),
            ...(o.clobber === false ? { noClobber: true } : {}),
          }),
        );
        // Streamed request: a large download on the host may take longer than the usual 30 s call timeout.
        const id = await hostId(c, t.host);
        const res = await withStepUp(c, () => c.stream('POST', filesUrl(id, '/fetch', {}).replace(/\?$/, ''), { body: Readable.from([body]), size: body.length, headers: { 'content-type': 'application/json' } }));
        if (res.statusCode !== 200) throw await Client.errorOf(res);
        let text = '';
        for await (const chunk of res) text += (chunk as Buffer).toString('utf8');
        const r = JSON.parse(text) as { path: string; bytes: number; sha256: string };
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else process.stderr.write(`${url} → ${t.host}:${r.path}: ${r.bytes} bytes, sha256 ${r.sha256}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
