/**
 * What every manager service shares: the link it answers on, a bounded execFile (argument arrays,
 * never a shell), the shape of a refusal, and the sending side of follow streams.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { BodyOf, Capability, ManagerError, ManagerErrorCode, Message, MessageType } from '@tether/protocol';
import { MAX_STREAM_CHUNK, STREAM_WINDOW } from '@tether/protocol';

/** What a service needs of the agent: its messages and a way to answer. */
export interface ManagerLink {
  on(event: 'message', fn: (msg: Message) => void): unknown;
  off(event: 'message', fn: (msg: Message) => void): unknown;
  send<T extends MessageType>(type: T, body: BodyOf<T>, re?: string): string | undefined;
  on(event: 'disconnected', fn: (why: string) => void): unknown;
  off(event: 'disconnected', fn: (why: string) => void): unknown;
}

export const MAX_MESSAGE = 4000;

/** A failure a service answers with (thrown inside a handler, turned into `{ok:false, error}`). */
export class ManagerFailure extends Error {
  constructor(
    readonly code: ManagerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function failure(err: unknown): { ok: false; error: ManagerError } {
  if (err instanceof ManagerFailure) return { ok: false, error: { code: err.code, message: err.message.slice(0, MAX_MESSAGE) } };
  return { ok: false, error: { code: 'internal', message: String((err as Error)?.message ?? err).slice(0, MAX_MESSAGE) } };
}

export function refusal(cap: Capability, capabilities: readonly Capability[]): { ok: false; error: ManagerError } {
  return { ok: false, error: { code: 'refused', message: `this agent does not allow ${cap} (capabilities = ${JSON.stringify(capabilities)} in its local config)` } };
}

/**
 * Listens for one request type and answers each with its response type. The capability check is
 * the handler's first line; whatever it throws becomes an answer, never an exception past here.
 */
export function serve<Req extends MessageType, Res extends MessageType>(
  link: ManagerLink,
  reqType: Req,
  resType: Res,
  handle: (body: BodyOf<Req>, msgId: string) => Promise<BodyOf<Res>>,
): () => void {
  const onMessage = (msg: Message) => {
    if (msg.type !== reqType) return;
    void handle(msg.body as BodyOf<Req>, msg.id)
      .catch((err: unknown) => failure(err) as BodyOf<Res>)
      .then((res) => link.send(resType, res, msg.id));
  };
  link.on('message', onMessage);
  return () => link.off('message', onMessage);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argument array (no shell), a timeout and bounded output. Resolves with
 * the exit code whatever it is; rejects only when the program cannot be started (ENOENT: the thing
 * is not installed → `unavailable`).
 */
export function run(file: string, args: readonly string[], o: { timeoutMs?: number; maxBytes?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: o.timeoutMs ?? 30_000, maxBuffer: o.maxBytes ?? 4 * 1024 * 1024, encoding: 'utf8', env: o.env ?? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number; killed?: boolean }) | null;
        if (e && (e.code === 'ENOENT' || e.code === 'EACCES')) return reject(new ManagerFailure('unavailable', `${file} is not available on this host (${e.code})`));
        if (e && e.killed) return reject(new ManagerFailure('timeout', `${file} ${args[0] ?? ''} took longer than ${Math.round((o.timeoutMs ?? 30_000) / 1000)} s`));
        if (e && e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(new ManagerFailure('failed', `${file} wrote more than ${o.maxBytes ?? 4 * 1024 * 1024} bytes`));
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** The first line of a command's complaint, for an error message. */
export function firstLine(s: string): string {
  return (s.split('\n').find((l) => l.trim()) ?? '').trim().slice(0, 1000);
}

// ---------------------------------------------------------------------------------------------
// Follow streams

/**
 * The agent's side of one stream: `write` sends data frames as long as the hub's credit allows
 * and reports back-pressure (false) so that the source can pause; `end` sends `stream.end` once.
 */
export class OutStream {
  private seq = 0;
  private credit = STREAM_WINDOW;
  private ended = false;
  private waiters: (() => void)[] = [];
  onCancel: (() => void) | undefined;

  constructor(
    readonly streamId: string,
    private readonly link: ManagerLink,
  ) {}

  get open(): boolean {
    return !this.ended;
  }

  /** Sends the text in chunks; resolves when it has been sent (waiting for credit when needed). */
  async write(text: string, stream?: 'stdout' | 'stderr'): Promise<void> {
    let rest = text;
    while (rest.length && !this.ended) {
      if (this.credit <= 0) {
        await new Promise<void>((r) => this.waiters.push(r));
        continue;
      }
      const n = Math.min(rest.length, MAX_STREAM_CHUNK, this.credit);
      const piece = rest.slice(0, n);
      rest = rest.slice(n);
      this.credit -= Buffer.byteLength(piece);
      const sent = this.link.send('stream.data', { streamId: this.streamId, seq: this.seq++, ...(stream ? { stream } : {}), data: piece });
      if (!sent) return this.end({ code: 'failed', message: 'the link to the hub dropped' });
    }
  }

  grant(bytes: number): void {
    this.credit += bytes;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  end(error?: ManagerError): void {
    if (this.ended) return;
    this.ended = true;
    this.link.send('stream.end', { streamId: this.streamId, ...(error ? { error } : {}) });
    this.grant(0);
  }

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.grant(0);
    this.onCancel?.();
  }
}

/**
 * The streams an agent has open, fed by `stream.credit` and stopped by `stream.cancel` or a
 * dropped link (the hub forgets its end of every stream when the link drops).
 */
export class StreamRegistry {
  private readonly streams = new Map<string, OutStream>();
  private readonly onMessage = (msg: Message) => {
    if (msg.type === 'stream.credit') {
      const b = msg.body as BodyOf<'stream.credit'>;
      this.streams.get(b.streamId)?.grant(b.bytes);
    } else if (msg.type === 'stream.cancel') {
      const b = msg.body as BodyOf<'stream.cancel'>;
      this.streams.get(b.streamId)?.cancel();
      this.streams.delete(b.streamId);
    }
  };
  private readonly onDisconnect = () => {
    for (const s of this.streams.values()) s.cancel();
    this.streams.clear();
  };

  constructor(
    private readonly link: ManagerLink,
    readonly max = 32,
  ) {
    link.on('message', this.onMessage);
    link.on('disconnected', this.onDisconnect);
  }

  get size(): number {
    return this.streams.size;
  }

  open(streamId: string): OutStream {
    if (this.streams.size >= this.max) throw new ManagerFailure('conflict', `this agent already has ${this.max} streams open`);
    if (this.streams.has(streamId)) throw new ManagerFailure('bad_request', 'stream id in use');
    const s = new OutStream(streamId, this.link);
    this.streams.set(streamId, s);
    return s;
  }

  close(s: OutStream, error?: ManagerError): void {
    s.end(error);
    this.streams.delete(s.streamId);
  }

  stop(): void {
    this.onDisconnect();
    this.link.off('message', this.onMessage);
    this.link.off('disconnected', this.onDisconnect);
  }
}

/**
 * Pipes a child process's stdout, line by line as it comes, into a stream; the child is paused
 * while the hub has granted no credit and killed when the stream is cancelled.
 */
export function followProcess(file: string, args: readonly string[], out: OutStream, registry: StreamRegistry, transform: (chunk: string) => string = (s) => s): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', SYSTEMD_COLORS: '0' } });
  let stderr = '';
  out.onCancel = () => child.kill('SIGTERM');
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    child.stdout!.pause();
    void out.write(transform(chunk)).then(() => child.stdout!.resume());
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    if (stderr.length < 4000) stderr += c;
  });
  child.on('error', (err) => registry.close(out, { code: 'unavailable', message: `${file}: ${err.message}` }));
  child.on('close', (code) => {
    if (out.open) registry.close(out, code === 0 || code === null ? undefined : { code: 'failed', message: firstLine(stderr) || `${file} exited with ${code}` });
  });
  return child;
}
