/**
 * Docker (capability `docker`): the Engine API over its unix socket with node:http (no client
 * library: it is plain HTTP). Answers `docker.request` with `docker.response`; logs that follow go
 * out as a stream. With `docker_read_only` the agent allows reads only, whatever the hub asks.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import {
  DOCKER_READ_OPS,
  MAX_LOG_BYTES,
  MAX_STREAM_CHUNK,
  isContainerRef,
  isImageRef,
  type Capability,
  type ContainerSpec,
  type ContainerStats,
  type ContainerSummary,
  type DockerRequestBody,
  type DockerResponseBody,
  type ImageSummary,
  type OutputChunk,
} from '@tether/protocol';
import { ManagerFailure, refusal, serve, type ManagerLink, type StreamRegistry } from './common.js';
import { FileOpError, resolveInRoots } from '../files/paths.js';

// Not an import of node:http: on Node 24 that loads undici for node:http's lazy WebSocket export
// (see files/http.ts).
const { request } = process.getBuiltinModule('node:http');

export interface DockerConfig {
  capabilities: Capability[];
  dockerSocket: string;
  dockerReadOnly: boolean;
  /** the `files` roots: image_import reads its tarball only from inside them */
  fileRoots?: string[];
}

const API = '/v1.41';
const MAX_DETAIL = 512 * 1024;

interface EngineReply {
  status: number;
  body: Buffer;
}

/** One call to the engine. Network-level failures become `unavailable` with the socket named. */
export function engine(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      { socketPath, method, path: API + path, headers: { host: 'docker', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 32 * 1024 * 1024) {
            res.destroy();
            reject(new ManagerFailure('failed', 'the engine answered with more than 32 MiB'));
          } else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new ManagerFailure('timeout', `the Docker engine did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(socketError(err, socketPath)));
    req.end(payload);
  });
}

/** What a failed request to the engine's socket means, in our codes. */
function socketError(err: NodeJS.ErrnoException, socketPath: string): ManagerFailure {
  if (err instanceof ManagerFailure) return err;
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') return new ManagerFailure('unavailable', `no Docker engine on this host (nothing answers at ${socketPath}: ${err.code})`);
  if (err.code === 'EACCES') return new ManagerFailure('permission', `the agent may not use ${socketPath} (EACCES)`);
  return new ManagerFailure('failed', `Docker engine: ${err.message}`);
}

/** `name[:tag]` as the engine's repo and tag (a colon before the last slash is a registry port). */
function splitRef(ref: string): [repo: string, tag: string] {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
}

/** Pulls and imports answer 200 with a stream of JSON objects: a failure midway is one with `error`. */
function progressError(r: EngineReply, what: string): ManagerFailure | undefined {
  const err = /"error"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(r.body.toString('utf8'));
  return err ? new ManagerFailure('failed', `${what}: ${JSON.parse(`"${err[1]}"`) as string}`) : undefined;
}

/** Like `engine`, with a file streamed as the request body (image import): nothing is buffered. */
function engineUpload(socketPath: string, path: string, file: string, size: number, timeoutMs: number): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: API + path, headers: { host: 'docker', 'content-type': 'application/x-tar', 'content-length': size }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got <= 1024 * 1024) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new ManagerFailure('timeout', `the Docker engine did not finish the import within ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(socketError(err, socketPath)));
    const body = createReadStream(file);
    body.on('error', (err) => req.destroy(new ManagerFailure('failed', `reading ${file}: ${err.message}`)));
    body.pipe(req);
  });
}

/** The engine's error message (`{"message": …}`) mapped to our codes. */
function engineError(r: EngineReply, what: string): ManagerFailure {
  let msg = r.body.toString('utf8').slice(0, 2000);
  try {
    msg = (JSON.parse(msg) as { message?: string }).message ?? msg;
  } catch {
    /* not JSON */
  }
  const code = r.status === 404 ? 'not_found' : r.status === 409 ? 'conflict' : r.status === 400 ? 'bad_request' : r.status === 403 ? 'permission' : 'failed';
  return new ManagerFailure(code, `${what}: ${msg.trim() || `engine answered ${r.status}`}`);
}

function json<T>(r: EngineReply, what: string): T {
  if (r.status < 200 || r.status >= 300) throw engineError(r, what);
  return JSON.parse(r.body.toString('utf8') || 'null') as T;
}

/**
 * Splits the engine's multiplexed log stream (a non-TTY container): frames of an 8-byte header
 * (stream type, 3 zero bytes, big-endian length) and the payload. Keeps an incomplete tail.
 */
export class Demuxer {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): OutputChunk[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: OutputChunk[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      const type = this.buf[0];
      const data = this.buf.subarray(8, 8 + len).toString('utf8');
      this.buf = this.buf.subarray(8 + len);
      for (let i = 0; i < data.length; i += MAX_STREAM_CHUNK) out.push({ stream: type === 2 ? 'stderr' : 'stdout', data: data.slice(i, i + MAX_STREAM_CHUNK) });
    }
    return out;
  }
}

const str = (v: unknown, max: number): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v)).slice(0, max);

function labels(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v as Record<string, unknown>).slice(0, 256)) if (/^[^\s=]{1,255}$/.test(k)) out[k] = str(val, 4096);
  }
  return out;
}

export function containerSummary(c: Record<string, unknown>): ContainerSummary {
  const ports = Array.isArray(c.Ports) ? (c.Ports as Record<string, unknown>[]) : [];
  return {
    id: str(c.Id, 128),
    names: (Array.isArray(c.Names) ? (c.Names as string[]) : []).slice(0, 16).map((n) => str(n, 256).replace(/^\//, '')),
    image: str(c.Image, 512),
    command: str(c.Command, 4096),
    created: Math.max(0, Math.floor(Number(c.Created) || 0)),
    state: str(c.State, 32),
    status: str(c.Status, 256),
    ports: ports.slice(0, 256).map((p) => ({
      containerPort: Number(p.PrivatePort) || 0,
      ...(p.PublicPort ? { hostPort: Number(p.PublicPort) } : {}),
      ...(p.IP ? { hostIp: str(p.IP, 64) } : {}),
      protocol: str(p.Type || 'tcp', 8),
    })),
    labels: labels(c.Labels),
  };
}

function imageSummary(i: Record<string, unknown>): ImageSummary {
  return {
    id: str(i.Id, 128),
    tags: (Array.isArray(i.RepoTags) ? (i.RepoTags as string[]) : []).slice(0, 64).map((t) => str(t, 512)),
    created: Math.max(0, Math.floor(Number(i.Created) || 0)),
    size: Math.max(0, Math.floor(Number(i.Size) || 0)),
    ...(typeof i.Containers === 'number' ? { containers: i.Containers } : {}),
  };
}

/** CPU % (per core, as `docker stats`), memory, network and block I/O from one stats sample. */
export function statsSummary(s: Record<string, any>): ContainerStats {
  const cpu = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const sysDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cpu.online_cpus || cpu.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = cpuDelta > 0 && sysDelta > 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values((s.networks ?? {}) as Record<string, { rx_bytes?: number; tx_bytes?: number }>)) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  let rd = 0;
  let wr = 0;
  for (const e of (s.blkio_stats?.io_service_bytes_recursive ?? []) as { op?: string; value?: number }[]) {
    if (/^read$/i.test(e.op ?? '')) rd += e.value ?? 0;
    if (/^write$/i.test(e.op ?? '')) wr += e.value ?? 0;
  }
  const nn = (x: unknown) => Math.max(0, Math.floor(Number(x) || 0));
  return {
    cpuPercent: Math.round(cpuPercent * 100) / 100,
    memoryBytes: nn(s.memory_stats?.usage),
    memoryLimitBytes: nn(s.memory_stats?.limit),
    netRxBytes: nn(rx),
    netTxBytes: nn(tx),
    blockReadBytes: nn(rd),
    blockWriteBytes: nn(wr),
    pids: nn(s.pids_stats?.current),
  };
}

/** `docker run`'s options as the engine's create body. */
export function createBody(spec: ContainerSpec): Record<string, unknown> {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp?: string; HostPort?: string }[]> = {};
  for (const p of spec.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol ?? 'tcp'}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ ...(p.hostIp ? { HostIp: p.hostIp } : {}), HostPort: p.hostPort ? String(p.hostPort) : '' });
  }
  return {
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    ...(spec.env ? { Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) } : {}),
    ...(spec.labels ? { Labels: spec.labels } : {}),
    ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    ...(spec.user ? { User: spec.user } : {}),
    ExposedPorts: exposed,
    HostConfig: {
      PortBindings: bindings,
      ...(spec.volumes ? { Binds: spec.volumes } : {}),
      ...(spec.restart ? { RestartPolicy: { Name: spec.restart === 'no' ? '' : spec.restart } } : {}),
    },
  };
}

function pruneFilters(what: string, req: DockerRequestBody): string {
  const f: Record<string, string[]> = {};
  if (what === 'images' && req.all) f.dangling = ['false'];
  if (req.label) f.label = [req.label];
  return Object.keys(f).length ? `?filters=${encodeURIComponent(JSON.stringify(f))}` : '';
}

function detail(v: unknown): unknown {
  const s = JSON.stringify(v);
  return s.length > MAX_DETAIL ? { truncated: true, message: `the engine's answer (${s.length} bytes) is larger than ${MAX_DETAIL}` } : v;
}

export class DockerService {
  private unserve: (() => void) | undefined;

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: DockerConfig,
    private readonly streams: StreamRegistry,
    private readonly log: Logger,
  ) {}

  start(): this {
    this.unserve = serve(this.link, 'docker.request', 'docker.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  /**
   * docker import: a root filesystem tarball on this host becomes an image named `ref`. Reading a
   * host file is the `files` capability's business, so it needs that too, and the path must
   * resolve (links followed) inside the file roots.
   */
  private async importImage(ref: string, path: string | undefined): Promise<DockerResponseBody> {
    if (!path) throw new ManagerFailure('bad_request', 'image import needs the path of a tarball on the host');
    if (!this.cfg.capabilities.includes('files')) {
      return { ok: false, error: { code: 'refused', message: `image import reads a file on this host, which needs the files capability too (capabilities = ${JSON.stringify(this.cfg.capabilities)} in its local config)` } };
    }
    let real: string;
    try {
      real = (await resolveInRoots(path, this.cfg.fileRoots ?? [])).path;
    } catch (err) {
      if (err instanceof FileOpError) throw new ManagerFailure(err.code === 'not_found' ? 'not_found' : err.code === 'refused' || err.code === 'outside_roots' ? 'refused' : 'bad_request', err.message);
      throw err;
    }
    const st = await stat(real).catch((e: NodeJS.ErrnoException) => {
      throw new ManagerFailure(e.code === 'ENOENT' ? 'not_found' : e.code === 'EACCES' ? 'permission' : 'failed', `${path}: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`);
    });
    if (!st.isFile()) throw new ManagerFailure('bad_request', `${path} is not a regular file`);
    const [repo, tag] = splitRef(ref);
    // `repo` carries the tag as well: Podman reads the tag only from there, Docker from either.
    const r = await engineUpload(this.cfg.dockerSocket, `/images/create?fromSrc=-&repo=${encodeURIComponent(`${repo}:${tag}`)}&tag=${encodeURIComponent(tag)}`, real, st.size, 15 * 60_000);
    if (r.status !== 200) throw engineError(r, `import ${path}`);
    const failed = progressError(r, `import ${path}`);
    if (failed) throw failed;
    const id = /sha256:[0-9a-f]{64}/.exec(r.body.toString('utf8'))?.[0];
    this.log.info({ op: 'image_import', ref: `${repo}:${tag}`, bytes: st.size }, 'docker image imported');
    return { ok: true, ...(id ? { id } : {}) };
  }

  private call(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<EngineReply> {
    return engine(this.cfg.dockerSocket, method, path, body, timeoutMs);
  }

  async handle(req: DockerRequestBody): Promise<DockerResponseBody> {
    if (!this.cfg.capabilities.includes('docker')) return refusal('docker', this.cfg.capabilities);
    if (this.cfg.dockerReadOnly && !DOCKER_READ_OPS.includes(req.op)) {
      return { ok: false, error: { code: 'read_only', message: `this agent allows Docker reads only (docker_read_only = true in its local config): ${req.op} refused` } };
    }
    const needs = ['inspect', 'start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'rename', 'remove', 'logs', 'top', 'stats'];
    const imageOps = ['image_inspect', 'image_remove', 'image_pull', 'image_import'];
    if (needs.includes(req.op) && (!req.ref || !isContainerRef(req.ref))) throw new ManagerFailure('bad_request', `not a container id or name: ${JSON.stringify(req.ref ?? '')}`);
    if (imageOps.includes(req.op) && (!req.ref || !isImageRef(req.ref))) throw new ManagerFailure('bad_request', `not an image reference: ${JSON.stringify(req.ref ?? '')}`);
    const c = `/containers/${req.ref}`;
    const simple = async (method: string, path: string, what: string, okStatuses = [200, 204, 304]) => {
      const r = await this.call(method, path, undefined, 120_000);
      if (!okStatuses.includes(r.status)) throw engineError(r, what);
      this.log.info({ op: req.op, ref: req.ref }, 'docker action');
      return { ok: true } as DockerResponseBody;
    };
    switch (req.op) {
      case 'info': {
        const [info, version] = await Promise.all([this.call('GET', '/info'), this.call('GET', '/version')]);
        return { ok: true, detail: detail({ info: json(info, 'info'), version: json(version, 'version'), readOnly: this.cfg.dockerReadOnly }) };
      }
      case 'containers': {
        const list = json<Record<string, unknown>[]>(await this.call('GET', `/containers/json?all=${req.all ? 1 : 0}`), 'list containers');
        return { ok: true, containers: list.slice(0, 2000).map(containerSummary) };
      }
      case 'inspect':
        return { ok: true, detail: detail(json(await this.call('GET', `${c}/json`), `container ${req.ref}`)) };
      case 'start':
        return simple('POST', `${c}/start`, `start ${req.ref}`);
      case 'stop':
        return simple('POST', `${c}/stop${req.timeoutSec !== undefined ? `?t=${req.timeoutSec}` : ''}`, `stop ${req.ref}`);
      case 'restart':
        return simple('POST', `${c}/restart${req.timeoutSec !== undefined ? `?t=${req.timeoutSec}` : ''}`, `restart ${req.ref}`);
      case 'kill':
        return simple('POST', `${c}/kill?signal=${req.signal ?? 'SIGKILL'}`, `kill ${req.ref}`);
      case 'pause':
        return simple('POST', `${c}/pause`, `pause ${req.ref}`);
      case 'unpause':
        return simple('POST', `${c}/unpause`, `unpause ${req.ref}`);
      case 'rename':
        if (!req.name) throw new ManagerFailure('bad_request', 'rename needs a new name');
        return simple('POST', `${c}/rename?name=${encodeURIComponent(req.name)}`, `rename ${req.ref}`);
      case 'remove':
        return simple('DELETE', `${c}?force=${req.force ? 1 : 0}&v=${req.volumes ? 1 : 0}`, `remove ${req.ref}`);
      case 'top': {
        const t = json<{ Titles?: string[]; Processes?: string[][] }>(await this.call('GET', `${c}/top`), `top ${req.ref}`);
        return { ok: true, top: { titles: (t.Titles ?? []).slice(0, 64).map((s) => str(s, 64)), processes: (t.Processes ?? []).slice(0, 4096).map((p) => p.slice(0, 64).map((s) => str(s, 4096))) } };
      }
      case 'stats':
        return { ok: true, stats: statsSummary(json(await this.call('GET', `${c}/stats?stream=false`), `stats ${req.ref}`)) };
      case 'logs':
        return this.logs(req);
      case 'create': {
        if (!req.spec) throw new ManagerFailure('bad_request', 'create needs a spec');
        const r = json<{ Id: string; Warnings?: string[] }>(
          await this.call('POST', `/containers/create${req.spec.name ? `?name=${encodeURIComponent(req.spec.name)}` : ''}`, createBody(req.spec)),
          `create from ${req.spec.image}`,
        );
        const warnings = (r.Warnings ?? []).slice(0, 64).map((w) => str(w, 1024));
        if (req.spec.start) {
          const s = await this.call('POST', `/containers/${r.Id}/start`);
          if (s.status !== 204 && s.status !== 304) throw engineError(s, `created ${r.Id.slice(0, 12)} but starting it failed`);
        }
        this.log.info({ op: 'create', id: r.Id, image: req.spec.image, started: Boolean(req.spec.start) }, 'docker container created');
        return { ok: true, id: str(r.Id, 128), warnings };
      }
      case 'images': {
        const list = json<Record<string, unknown>[]>(await this.call('GET', `/images/json?all=${req.all ? 1 : 0}`), 'list images');
        return { ok: true, images: list.slice(0, 2000).map(imageSummary) };
      }
      case 'image_inspect':
        return { ok: true, detail: detail(json(await this.call('GET', `/images/${req.ref}/json`), `image ${req.ref}`)) };
      case 'image_remove': {
        const r = json<{ Untagged?: string; Deleted?: string }[]>(await this.call('DELETE', `/images/${req.ref}?force=${req.force ? 1 : 0}`), `remove image ${req.ref}`);
        this.log.info({ op: 'image_remove', ref: req.ref }, 'docker image removed');
        return { ok: true, removed: (r ?? []).slice(0, 10_000).map((e) => str(e.Deleted ?? e.Untagged, 512)).filter(Boolean) };
      }
      case 'image_pull': {
        const ref = req.ref!;
        const [from, tag] = splitRef(ref);
        const r = await this.call('POST', `/images/create?fromImage=${encodeURIComponent(from)}&tag=${encodeURIComponent(tag)}`, undefined, 15 * 60_000);
        if (r.status !== 200) throw engineError(r, `pull ${ref}`);
        const failed = progressError(r, `pull ${ref}`);
        if (failed) throw failed;
        this.log.info({ op: 'image_pull', ref }, 'docker image pulled');
        return { ok: true };
      }
      case 'image_import':
        return this.importImage(req.ref!, req.path);
      case 'prune_containers':
      case 'prune_images': {
        const what = req.op === 'prune_containers' ? 'containers' : 'images';
        const r = json<{ ContainersDeleted?: string[]; ImagesDeleted?: { Deleted?: string; Untagged?: string }[]; SpaceReclaimed?: number }>(
          await this.call('POST', `/${what}/prune${pruneFilters(what, req)}`, undefined, 300_000),
          `prune ${what}`,
        );
        const removed = what === 'containers' ? (r.ContainersDeleted ?? []) : (r.ImagesDeleted ?? []).map((e) => e.Deleted ?? e.Untagged ?? '');
        this.log.info({ op: req.op, removed: removed.length }, 'docker prune');
        return { ok: true, removed: removed.slice(0, 10_000).map((s) => str(s, 512)).filter(Boolean), spaceReclaimed: Math.max(0, Math.floor(r.SpaceReclaimed ?? 0)) };
      }
      default:
        throw new ManagerFailure('bad_request', `unknown docker operation ${JSON.stringify((req as { op: string }).op)}`);
    }
  }

  /** Whether the container was created with a TTY: then its logs are raw, not multiplexed. */
  private async tty(ref: string): Promise<boolean> {
    const i = json<{ Config?: { Tty?: boolean } }>(await this.call('GET', `/containers/${ref}/json`), `container ${ref}`);
    return Boolean(i.Config?.Tty);
  }

  private async logs(req: DockerRequestBody): Promise<DockerResponseBody> {
    const ref = req.ref!;
    const tty = await this.tty(ref);
    const qs = new URLSearchParams({ stdout: '1', stderr: '1', timestamps: req.timestamps ? '1' : '0', tail: req.tail !== undefined ? String(req.tail) : req.streamId ? '100' : '1000' });
    if (req.since !== undefined) qs.set('since', String(req.since));
    if (req.streamId) {
      qs.set('follow', '1');
      const out = this.streams.open(req.streamId);
      const demux = new Demuxer();
      const r = request({ socketPath: this.cfg.dockerSocket, method: 'GET', path: `${API}/containers/${ref}/logs?${qs}`, headers: { host: 'docker' } });
      out.onCancel = () => r.destroy();
      // Answered once the engine has accepted the request; data follows on the stream.
      return new Promise<DockerResponseBody>((resolve) => {
        r.on('error', (err: NodeJS.ErrnoException) => {
          const e = { code: 'unavailable' as const, message: `Docker engine: ${err.message}` };
          if (out.open) this.streams.close(out, e);
          resolve({ ok: false, error: e });
        });
        r.on('response', (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const f = engineError({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }, `logs ${ref}`);
              this.streams.close(out, { code: f.code, message: f.message });
              resolve({ ok: false, error: { code: f.code, message: f.message } });
            });
            return;
          }
          resolve({ ok: true });
          res.on('data', (chunk: Buffer) => {
            res.pause();
            const pieces = tty ? [{ stream: 'stdout' as const, data: chunk.toString('utf8') }] : demux.push(chunk);
            void (async () => {
              for (const p of pieces) await out.write(p.data, p.stream);
            })().then(() => res.resume());
          });
          res.on('end', () => this.streams.close(out));
          res.on('error', (err) => this.streams.close(out, { code: 'failed', message: err.message }));
        });
        r.end();
      });
    }
    const r = await this.call('GET', `/containers/${ref}/logs?${qs}`);
    if (r.status !== 200) throw engineError(r, `logs ${ref}`);
    let chunks: OutputChunk[] = tty ? [{ stream: 'stdout', data: r.body.toString('utf8') }] : new Demuxer().push(r.body);
    // Newest kept: cut from the front.
    let total = 0;
    let truncated = false;
    for (let i = chunks.length - 1; i >= 0; i--) {
      total += chunks[i]!.data.length;
      if (total > MAX_LOG_BYTES) {
        chunks = chunks.slice(i + 1);
        truncated = true;
        break;
      }
    }
    if (chunks.length > 20_000) {
      chunks = chunks.slice(-20_000);
      truncated = true;
    }
    return { ok: true, logs: chunks, truncated };
  }
}
