/**
 * The CLI's view of the hub: a base URL and a session token saved by `tether login`
 * in ~/.config/tether/cli.json (0600), or TETHER_HUB + TETHER_SESSION from the environment.
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

export class Client {
  constructor(
    readonly hub: string,
    private readonly token?: string,
  ) {}

  static fromState(env = process.env): Client {
    const s = loadState(env);
    if (!s) throw new Error('not logged in: run `tether login --hub URL` first (or set TETHER_HUB and TETHER_SESSION)');
    return new Client(s.hub, s.token);
  }

  /** For requests made outside call() (WebSocket streams, file transfers). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
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
      if (res.status === 401 && path !== '/api/v1/auth/login') throw new ApiError(401, 'unauthorized', 'session expired or invalid: run `tether login` again');
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
