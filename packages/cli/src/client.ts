/**
 * The CLI's view of the hub: a base URL and a session token saved by `tether login`
 * in ~/.config/tether/cli.json (0600), or TETHER_HUB + TETHER_SESSION (a session) or
 * TETHER_HUB + TETHER_API_TOKEN (an API token, for automation) from the environment.
 *
 * A call answered `403 step_up_required` is retried once after a step-up (see stepUp.ts): every
 * command gets the prompt for free.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import os from 'node:os';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

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
  constructor(
    readonly hub: string,
    readonly token?: string,
  ) {}

  static fromState(env = process.env): Client {
    const s = loadState(env);
    if (!s) throw new Error('not logged in: run `tether login --hub URL` first (or set TETHER_HUB and TETHER_SESSION or TETHER_API_TOKEN)');
    const c = new Client(s.hub, s.token);
    c.stepUp = defaultStepUp;
    return c;
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

  /** The response without step-up retry or JSON parsing (exports). */
  async raw(method: string, path: string): Promise<Response> {
    const res = await fetch(this.hub.replace(/\/$/, '') + path, { method, headers: this.token ? { authorization: `Bearer ${this.token}` } : {}, signal: AbortSignal.timeout(300_000) });
    if (!res.ok) {
      const e = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
      throw new ApiError(res.status, e.error ?? 'error', e.message ?? `HTTP ${res.status}`);
    }
    return res;
  }

  private async callOnce<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.hub.replace(/\/$/, '') + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new Error(`cannot reach hub at ${this.hub}: ${(err as Error).message}`);
    }
    const text = await res.text();
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
  stream(method: string, path: string, opts: { body?: Readable; size?: number; headers?: Record<string, string> } = {}): Promise<http.IncomingMessage> {
    const u = new URL(this.hub.replace(/\/$/, '') + path);
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...opts.headers };
    if (opts.body) {
      headers['content-type'] ??= 'application/octet-stream';
      if (opts.size !== undefined) headers['content-length'] = String(opts.size);
    }
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, headers }, (res) => {
        if (opts.body && res.statusCode !== 200) {
          opts.body.unpipe(req);
          opts.body.destroy();
        }
        resolve(res);
      });
      req.on('error', (err) => reject(new Error(`cannot reach hub at ${this.hub}: ${err.message}`)));
      if (opts.body) {
        opts.body.on('error', (err) => req.destroy(err));
        opts.body.pipe(req);
      } else req.end();
    });
  }

  /** The ApiError an error response carries (reads its small JSON body). */
  static async errorOf(res: http.IncomingMessage): Promise<ApiError> {
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
