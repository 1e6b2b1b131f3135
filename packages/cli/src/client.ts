/**
 * The CLI's view of the hub: a base URL and a session token saved by `tether login`
 * in ~/.config/tether/cli.json (0600), or TETHER_HUB + TETHER_SESSION (a session) or
 * TETHER_HUB + TETHER_API_TOKEN (an API token, for automation) from the environment.
 *
 * A call answered `403 step_up_required` is retried once after a step-up (see stepUp.ts): every
 * command gets the prompt for free.
 *
 * No call waits on a silent hub for ever. Each must be answered within the request timeout
 * (15 s; `--request-timeout`, TETHER_REQUEST_TIMEOUT; 0: never), else the command ends with "hub
 * not responding (no answer in 15 s) at URL". A call that waits on a host's work (a manager
 * action, a transfer) may take longer: past the timeout the hub is asked whether it is alive
 * (`GET /api/v1/health`), and the wait goes on only while it answers. Streams are watched the
 * same way once they flow: WebSockets by ping and pong, HTTP streams by the health check.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import os from 'node:os';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type WebSocket from 'ws';

// Not `import http from 'node:http'`: on Node 24 that import reads every export of node:http, its
// lazy WebSocket getter among them, which loads undici; `tether agent` loads this file too.
const http = process.getBuiltinModule('node:http');

export interface CliState {
  hub: string;
  token: string;
  user?: string;
}

export function statePath(env = process.env): string {
  return env.TETHER_CLI_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(os.homedir(), '.config'), 'tether', 'cli.json');
}

export function loadState(env = process.env): CliState | undefined {
  if (env.TETHER_HUB && env.TETHER_API_TOKEN) return { hub: env.TETHER_HUB, token: env.TETHER_API_TOKEN };
  if (env.TETHER_HUB && env.TETHER_SESSION) return { hub: env.TETHER_HUB, token: env.TETHER_SESSION };
  try {
    return JSON.parse(readFileSync(statePath(env), 'utf8')) as CliState;
  } catch {
    return undefined;
  }
}

export function saveState(s: CliState, env = process.env): void {
  const p = statePath(env);
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  writeFileSync(p, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  chmodSync(p, 0o600);
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** The hub's longest wait on a host is 15 min (an image pull); past it the hub answers 504 itself. */
export const HOST_WORK_MS = 16 * 60_000;
let requestTimeoutMs: number | undefined;

/** A duration such as 15s or 500ms, in ms; 0 means never time out. */
export function parseTimeout(raw: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new Error(`${what}: expected a duration such as 15s, 500ms or 2m (0: never), got ${JSON.stringify(raw)}`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm']);
}

/** Set once by the CLI from `--request-timeout`, which wins over TETHER_REQUEST_TIMEOUT. */
export function setRequestTimeout(ms: number | undefined): void {
  requestTimeoutMs = ms;
}

/** How long a call waits for the hub's answer (ms; 0: for ever). */
export function requestTimeout(env = process.env): number {
  if (requestTimeoutMs !== undefined) return requestTimeoutMs;
  if (env.TETHER_REQUEST_TIMEOUT) return parseTimeout(env.TETHER_REQUEST_TIMEOUT, 'TETHER_REQUEST_TIMEOUT');
  return DEFAULT_REQUEST_TIMEOUT_MS;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** The hub took the connection (or not) but said nothing within the request timeout. */
export class HubNotResponding extends Error {
  constructor(hub: string, ms: number, detail = '') {
    super(`hub not responding (no answer in ${seconds(ms)}) at ${hub}${detail}`);
  }
}

/** fetch's own failures (connection refused, reset, DNS) say the hub cannot be reached; the rest are ours. */
function unreachable(hub: string, err: unknown): Error {
  if (!(err instanceof TypeError)) return err as Error;
  const cause = (err as { cause?: { message?: string } }).cause;
  return new Error(`cannot reach hub at ${hub}: ${cause?.message ?? err.message}`);
}

const isTimeout = (err: unknown) => err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Confirms it is the user (POST /api/v1/auth/step-up); throws when it cannot. */
export type StepUpHandler = (c: Client) => Promise<void>;
let defaultStepUp: StepUpHandler | undefined;
/** Set once by the CLI: how clients made by fromState() step up when the hub asks. */
export function setStepUpHandler(h: StepUpHandler): void {
  defaultStepUp = h;
}

export class Client {
  stepUp: StepUpHandler | undefined;
  /**
   * How long a call may wait on work behind the hub (a host's answer), as long as the hub itself
   * keeps answering its health check; by default a call waits the request timeout and no more.
   */
  patienceMs = 0;
  readonly timeoutMs = requestTimeout();
  constructor(
    readonly hub: string,
    readonly token?: string,
  ) {}

  private url(path: string): string {
    return this.hub.replace(/\/$/, '') + path;
  }

  /**
   * Whether the hub answers at all: `GET /api/v1/health` within the request timeout. Throws
   * HubNotResponding (or "cannot reach hub") when it does not; an answer that is not 200 is an
   * unhealthy hub and says so.
   */
  async alive(): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.url('/api/v1/health'), this.timeoutMs ? { signal: AbortSignal.timeout(this.timeoutMs) } : {});
    } catch (err) {
      if (isTimeout(err)) throw new HubNotResponding(this.hub, this.timeoutMs);
      throw unreachable(this.hub, err);
    }
    const text = await res.text().catch(() => '');
    if (res.status !== 200) throw new Error(`hub at ${this.hub} is not healthy (${res.status}): ${text.slice(0, 300)}`);
  }

  /**
   * Runs a request that must be answered within the request timeout, or, with patience, as long
   * as the hub answers its health check at each timeout (and no longer than the patience).
   */
  async answered<T>(run: (signal: AbortSignal) => Promise<T>, patienceMs = this.patienceMs): Promise<T> {
    const ctl = new AbortController();
    const p = run(ctl.signal);
    if (!this.timeoutMs) return p;
    const limit = Math.max(patienceMs, this.timeoutMs);
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const tick = () => new Promise<'tick'>((r) => (timer = setTimeout(() => r('tick'), this.timeoutMs)));
    const give = (e: Error): never => {
      ctl.abort(e);
      throw e;
    };
    try {
      for (;;) {
        if ((await Promise.race([p, tick()])) !== 'tick') return await p;
        if (Date.now() - started >= limit) {
          if (limit === this.timeoutMs) give(new HubNotResponding(this.hub, this.timeoutMs));
          give(new Error(`no answer from the hub at ${this.hub} in ${seconds(limit)}, though it answers its health check: what it waits on is taking longer`));
        }
        // Still working, or gone? The wait goes on only while the hub itself answers.
        const probe = this.alive().then(
          () => 'alive' as const,
          (err: Error) => err,
        );
        const first = await Promise.race([p.then(() => 'done' as const, () => 'done' as const), probe]);
        if (first === 'done') return await p;
        if (first instanceof Error) give(first);
      }
    } catch (err) {
      // fetch rejects with the abort's reason, or with a generic abort error: ours is the one to tell.
      if (ctl.signal.aborted && ctl.signal.reason instanceof Error) throw ctl.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Watches a stream that is flowing: every request timeout the hub must answer its health check,
   * else `onDead` gets HubNotResponding. Returns the function that stops watching.
   */
  watch(onDead: (err: Error) => void): () => void {
    if (!this.timeoutMs) return () => {};
    let probing = false;
    let stopped = false;
    const t = setInterval(() => {
      if (probing) return;
      probing = true;
      this.alive().then(
        () => (probing = false),
        (err: Error) => {
          if (!stopped) onDead(err);
        },
      );
    }, this.timeoutMs);
    t.unref();
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }

  static fromState(env = process.env): Client {
    const s = loadState(env);
    if (!s) throw new Error('not logged in: run `tether login --hub URL` first (or set TETHER_HUB and TETHER_SESSION or TETHER_API_TOKEN)');
    const c = new Client(s.hub, s.token);
    c.stepUp = defaultStepUp;
    return c;
  }

  /**
   * A client for commands whose calls wait on a host's work (managers, files): each may take as
   * long as the hub's own bound for it (15 min for an image pull), while the hub keeps answering.
   */
  static forHostWork(env = process.env): Client {
    const c = Client.fromState(env);
    c.patienceMs = HOST_WORK_MS;
    return c;
  }

  /** Options for a WebSocket to the hub: credentials, and an opening bounded by the request timeout. */
  wsOptions(): { headers: Record<string, string>; handshakeTimeout?: number } {
    return { headers: this.authHeaders(), ...(this.timeoutMs ? { handshakeTimeout: this.timeoutMs } : {}) };
  }

  /** What a WebSocket's failure to open means, in the words a command ends with. */
  wsError(err: Error): Error {
    if (/handshake has timed out/i.test(err.message)) return new HubNotResponding(this.hub, this.timeoutMs);
    return new Error(`cannot reach hub at ${this.hub}: ${err.message}`);
  }

  /**
   * Keeps an open WebSocket honest: a ping every request timeout; a socket that has answered
   * nothing since the last one (no pong, no frame) is cut and `onDead` gets HubNotResponding —
   * a hub that stopped, or a network that went away without a word. Returns the stop function.
   */
  heartbeat(ws: WebSocket, onDead: (err: Error) => void): () => void {
    if (!this.timeoutMs) return () => {};
    let heard = true;
    const hear = () => (heard = true);
    ws.on('pong', hear);
    ws.on('message', hear);
    const t = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return;
      if (!heard) {
        clearInterval(t);
        onDead(new HubNotResponding(this.hub, this.timeoutMs));
        ws.terminate();
        return;
      }
      heard = false;
      ws.ping();
    }, this.timeoutMs);
    t.unref();
    const stop = () => {
      clearInterval(t);
      ws.off('pong', hear);
      ws.off('message', hear);
    };
    ws.once('close', stop);
    return stop;
  }

  /** For requests made outside call() (WebSocket streams, file transfers). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.callOnce<T>(method, path, body);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'step_up_required' || !this.stepUp || this.token?.startsWith('tta_')) throw err;
      await this.stepUp(this);
      return this.callOnce<T>(method, path, body);
    }
  }

  /** The response without step-up retry or JSON parsing (exports); its body is read by the caller, watched by the health check. */
  async raw(method: string, path: string): Promise<Response> {
    let res: Response;
    try {
      res = await this.answered((signal) => fetch(this.url(path), { method, headers: this.token ? { authorization: `Bearer ${this.token}` } : {}, signal }), Math.max(this.patienceMs, 300_000));
    } catch (err) {
      throw unreachable(this.hub, err);
    }
    if (!res.ok) {
      const e = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
      throw new ApiError(res.status, e.error ?? 'error', e.message ?? `HTTP ${res.status}`);
    }
    return res;
  }

  private async callOnce<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    let text: string;
    try {
      // The answer's body is inside the deadline too: a hub that stops halfway is not answering.
      [res, text] = await this.answered(async (signal) => {
        const r = await fetch(this.url(path), {
          method,
          headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal,
        });
        return [r, await r.text()] as const;
      });
    } catch (err) {
      throw unreachable(this.hub, err);
    }
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = { message: text.slice(0, 200) };
    }
    if (!res.ok) {
      const e = data as { error?: string; message?: string };
      if (res.status === 401 && e.error === 'unauthorized' && path !== '/api/v1/auth/login') throw new ApiError(401, 'unauthorized', 'session expired or invalid: run `tether login` again');
      throw new ApiError(res.status, e.error ?? 'error', e.message ?? `HTTP ${res.status}`);
    }
    return data as T;
  }

  /**
   * A request whose body or answer is a stream (file transfers): node:http, nothing buffered.
   * Resolves with the response as soon as its head arrives, whatever the status; an early error
   * answer stops the upload.
   */
  stream(method: string, path: string, opts: { body?: Readable; size?: number; headers?: Record<string, string> } = {}): Promise<IncomingMessage> {
    const u = new URL(this.hub.replace(/\/$/, '') + path);
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...opts.headers };
    if (opts.body) {
      headers['content-type'] ??= 'application/octet-stream';
      if (opts.size !== undefined) headers['content-length'] = String(opts.size);
    }
    // However long the bytes take (an upload is answered when it ends), the hub must keep
    // answering its health check: before the answer's head and while its body flows.
    const head = this.answered(
      (signal) =>
        new Promise<IncomingMessage>((resolve, reject) => {
          const req = mod.request(u, { method, headers, signal }, (res) => {
            if (opts.body && res.statusCode !== 200) {
              opts.body.unpipe(req);
              opts.body.destroy();
            }
            resolve(res);
          });
          req.on('error', (err) => reject(signal.aborted ? signal.reason : new Error(`cannot reach hub at ${this.hub}: ${err.message}`)));
          if (opts.body) {
            opts.body.on('error', (err) => req.destroy(err));
            opts.body.pipe(req);
          } else req.end();
        }),
      Infinity,
    );
    return head.then((res) => {
      const stop = this.watch((err) => res.destroy(err));
      res.once('close', stop);
      return res;
    });
  }

  /** The ApiError an error response carries (reads its small JSON body). */
  static async errorOf(res: IncomingMessage): Promise<ApiError> {
    let text = '';
    for await (const c of res) if (text.length < 8192) text += (c as Buffer).toString('utf8');
    let e: { error?: string; message?: string } = {};
    try {
      e = JSON.parse(text) as typeof e;
    } catch {
      e = { message: text.slice(0, 200) };
    }
    if (res.statusCode === 401) return new ApiError(401, 'unauthorized', 'session expired or invalid: run `tether login` again');
    return new ApiError(res.statusCode ?? 0, e.error ?? 'error', e.message ?? `HTTP ${res.statusCode}`);
  }
}
