/**
 * Answers `file.request` from the hub with `file.response`. The capability lock comes first: a host
 * whose own configuration does not list `files`, or lists no file roots, refuses everything,
 * whatever the hub asks. Contents move over separate HTTP requests to the hub (http.ts).
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { BodyOf, FileErrorCode, FileRequestBody, FileResponseBody, Message, MessageType } from '@tether/protocol';
import type { AgentConfig } from '../config.js';
import { loadOrCreateIdentity } from '../identity.js';
import { FileOpError, resolveEntryInRoots, resolveInRoots, toFileError } from './paths.js';
import { Hasher, SPECIAL_BITS, list, makeDir, openForSend, receiveInto, remove, stat } from './ops.js';
import { openDownload, upload, TRANSFER_IDLE_MS, type TransferCredentials } from './http.js';

/** What the service needs of the agent: its messages, a way to answer, and its id. */
export interface FileLink {
  on(event: 'message', fn: (msg: Message) => void): unknown;
  off(event: 'message', fn: (msg: Message) => void): unknown;
  send<T extends MessageType>(type: T, body: BodyOf<T>, re?: string): string | undefined;
  readonly agentId: string | undefined;
}

export interface FileServiceOptions {
  /** largest file received or fetched (default 16 GiB) */
  maxBytes?: number;
  /** operations at once; more are refused (default 16) */
  maxConcurrent?: number;
  idleMs?: number;
}

const MAX_MESSAGE = 4000;

export class FileService {
  private active = 0;
  private readonly maxBytes: number;
  private readonly maxConcurrent: number;
  private readonly idleMs: number;
  private key: string | undefined;
  private readonly onMessage = (msg: Message) => {
    if (msg.type !== 'file.request') return;
    void this.handle(msg.body as FileRequestBody)
      .catch((err: unknown) => this.failure(err, (msg.body as FileRequestBody)?.path ?? '?'))
      .then((res) => this.link.send('file.response', res, msg.id));
  };

  constructor(
    private readonly link: FileLink,
    private readonly cfg: Pick<AgentConfig, 'capabilities' | 'fileRoots' | 'fileSpecialModes' | 'hubUrl' | 'stateDir'>,
    private readonly log: Logger,
    o: FileServiceOptions = {},
  ) {
    this.maxBytes = o.maxBytes ?? 16 * 1024 ** 3;
    this.maxConcurrent = o.maxConcurrent ?? 16;
    this.idleMs = o.idleMs ?? TRANSFER_IDLE_MS;
  }

  start(): this {
    this.link.on('message', this.onMessage);
    return this;
  }

  stop(): void {
    this.link.off('message', this.onMessage);
  }

  private failure(err: unknown, path: string): FileResponseBody {
    const e = toFileError(err, path);
    if (e.code === 'internal') this.log.error({ err: e.message, path }, 'file operation failed');
    return { ok: false, error: { code: e.code, message: e.message.slice(0, MAX_MESSAGE) } };
  }

  private credentials(): TransferCredentials {
    const agentId = this.link.agentId;
    if (!agentId) throw new FileOpError('internal', 'agent has no id yet');
    this.key ??= loadOrCreateIdentity(this.cfg.stateDir).privateKeyPem;
    return { agentId, privateKeyPem: this.key };
  }

  /**
   * Downloads a transfer the hub offered into `dest` (a new file, 0600), streamed, exactly the
   * announced size. For other agent parts that receive bytes from the hub (script bundles).
   */
  async fetchTransfer(transferId: string, dest: string, maxBytes = this.maxBytes): Promise<{ sha256: string; bytes: number }> {
    const { body, size } = await openDownload(this.cfg.hubUrl, transferId, this.credentials());
    if (size !== undefined && size > maxBytes) {
      body.destroy();
      throw new FileOpError('too_large', `the transfer has ${size} bytes, more than ${maxBytes}`);
    }
    const hasher = new Hasher({ ...(size !== undefined ? { exact: size } : { max: maxBytes }), idleMs: this.idleMs, what: 'transfer' });
    await pipeline(body, hasher, createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    return { sha256: hasher.digest(), bytes: hasher.bytes };
  }

  /** A mode the hub asked for, without setuid, setgid and sticky unless this host's file allows them. */
  private allowedMode(mode: number, path: string): number {
    if (this.cfg.fileSpecialModes || !(mode & SPECIAL_BITS)) return mode;
    this.log.warn({ path, asked: mode.toString(8).padStart(4, '0'), applied: (mode & ~SPECIAL_BITS).toString(8).padStart(4, '0') }, 'setuid, setgid and sticky bits dropped (file_special_modes is off)');
    return mode & ~SPECIAL_BITS;
  }

  /** The capability lock, then one operation. Never throws past here: every failure is an answer. */
  async handle(req: FileRequestBody): Promise<FileResponseBody> {
    if (!this.cfg.capabilities.includes('files')) {
      return refused(`this agent does not allow files (capabilities = ${JSON.stringify(this.cfg.capabilities)} in its local config)`);
    }
    if (this.cfg.fileRoots.length === 0) return refused('this agent has no file roots (file_roots = [] in its local config)');
    if (this.active >= this.maxConcurrent) return fail('transfer', `this agent is busy with ${this.active} file operations; try again`);
    this.active++;
    try {
      return await this.run(req);
    } catch (err) {
      return this.failure(err, req.path);
    } finally {
      this.active--;
    }
  }

  private async run(req: FileRequestBody): Promise<FileResponseBody> {
    const roots = this.cfg.fileRoots;
    switch (req.op) {
      case 'ls': {
        const r = await resolveInRoots(req.path, roots);
        const { entries, truncated } = await list(r, req.path);
        return { ok: true, entries, truncated };
      }
      case 'stat':
        return { ok: true, stat: await stat(await resolveInRoots(req.path, roots), req.path) };
      case 'delete': {
        const r = await resolveEntryInRoots(req.path, roots);
        await remove(r, req.path, Boolean(req.recursive));
        this.log.info({ op: 'delete', path: r.path, recursive: Boolean(req.recursive) }, 'file deleted');
        return { ok: true };
      }
      case 'mkdir': {
        const r = await resolveInRoots(req.path, roots);
        const e = await makeDir(r, req.path, { ...req, ...(req.mode !== undefined ? { mode: this.allowedMode(req.mode, req.path) } : {}) });
        this.log.info({ op: 'mkdir', path: r.path }, 'directory created');
        return { ok: true, stat: e };
      }
      case 'send': {
        if (!req.transferId) return fail('bad_request', 'send needs a transferId');
        const r = await resolveInRoots(req.path, roots);
        const creds = this.credentials();
        const f = await openForSend(r, req.path, roots, this.idleMs);
        try {
          await upload(this.cfg.hubUrl, req.transferId, creds, f.stream, f.size, f.mode).catch((err: Error) => {
            throw err instanceof FileOpError ? err : new FileOpError('transfer', `sending ${req.path} to the hub failed: ${err.message}`);
          });
        } finally {
          await f.close();
        }
        const sha256 = f.hasher.digest();
        this.log.info({ op: 'send', path: r.path, bytes: f.hasher.bytes }, 'file sent');
        return { ok: true, sha256, bytes: f.hasher.bytes };
      }
      case 'receive':
      case 'fetch': {
        if (req.op === 'receive' && !req.transferId) return fail('bad_request', 'receive needs a transferId');
        if (req.op === 'fetch' && !req.url) return fail('bad_request', 'fetch needs a url');
        const r = await resolveInRoots(req.path, roots);
        const creds = req.op === 'receive' ? this.credentials() : undefined;
        const what = req.op === 'receive' ? `receiving ${req.path}` : `fetching ${req.url}`;
        const open =
          req.op === 'receive'
            ? () =>
                openDownload(this.cfg.hubUrl, req.transferId!, creds!).catch((err: Error) => {
                  throw new FileOpError('transfer', `${what}: ${err.message}`);
                })
            : () => fetchUrl(req.url!, this.idleMs);
        const out = await receiveInto(
          r,
          req.path,
          roots,
          {
            ...(req.sha256 ? { sha256: req.sha256 } : {}),
            ...(req.size !== undefined ? { size: req.size } : {}),
            ...(req.mode !== undefined ? { mode: this.allowedMode(req.mode, req.path) } : {}),
            specialModes: this.cfg.fileSpecialModes,
            ...(req.owner ? { owner: req.owner } : {}),
            ...(req.group ? { group: req.group } : {}),
            noClobber: Boolean(req.noClobber),
            maxBytes: this.maxBytes,
            idleMs: this.idleMs,
            what,
          },
          open,
        );
        this.log.info({ op: req.op, path: r.path, bytes: out.bytes, ...(req.url ? { url: redactUrl(req.url) } : {}) }, 'file written');
        return { ok: true, ...out };
      }
      default:
        return fail('bad_request', `unknown file operation ${JSON.stringify((req as { op: string }).op)}`);
    }
  }
}

function refused(message: string): FileResponseBody {
  return fail('refused', message);
}

function fail(code: FileErrorCode, message: string): FileResponseBody {
  return { ok: false, error: { code, message: message.slice(0, MAX_MESSAGE) } };
}

/** A URL for the log without credentials or query (which may carry a token). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(bad url)';
  }
}

/** GET a URL (redirects followed, at most 30 s to the headers), as a stream with its announced size. */
async function fetchUrl(url: string, idleMs: number): Promise<{ body: Readable; size: number | undefined }> {
  const ctrl = new AbortController();
  const t = setTimeout(() => ctrl.abort(), Math.min(idleMs, 30_000));
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: ctrl.signal, headers: { 'accept-encoding': 'identity' } });
  } catch (err) {
    throw new FileOpError('transfer', `fetching ${redactUrl(url)} failed: ${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}`);
  } finally {
    clearTimeout(t);
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new FileOpError('transfer', `fetching ${redactUrl(url)}: the server answered ${res.status}`);
  }
  const len = Number(res.headers.get('content-length'));
  return { body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), size: res.headers.has('content-length') && Number.isFinite(len) ? len : undefined };
}
