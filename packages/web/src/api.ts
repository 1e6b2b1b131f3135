/**
 * The console's only way to the hub: the public REST API, same origin, cookie session.
 * Cookie-authenticated writes carry the session's CSRF token; a `step_up_required` answer asks the
 * user to confirm (password or one-time code) through the registered prompt, then retries once.
 */
import type { EarlyAnswers } from './early';
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Me {
  id: string;
  username: string;
  role: 'viewer' | 'operator' | 'admin';
  hostSelector: string | null;
  totpEnabled: boolean;
  auth: { kind: string; via: string; id: string; scope: string; stepUpUntil: number | null };
  csrfToken?: string;
}

let csrf = '';
let stepUpPrompt: ((me: { totp: boolean }) => Promise<boolean>) | undefined;
let onUnauthorized: (() => void) | undefined;
let totpEnabled = false;

export function setCsrf(token: string | undefined): void {
  csrf = token ?? '';
}
export function setTotpEnabled(on: boolean): void {
  totpEnabled = on;
}
/** The prompt shown when the hub asks for a fresh confirmation; resolves false when the user cancels. */
export function setStepUpPrompt(fn: typeof stepUpPrompt): void {
  stepUpPrompt = fn;
}
export function setOnUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

function readCsrfCookie(): string {
  const m = document.cookie.match(/(?:^|;\s*)tether_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]!) : '';
}

export interface RequestOptions {
  body?: unknown;
  raw?: BodyInit;
  headers?: Record<string, string>;
  /** leave a 401 to the caller instead of going back to the login page */
  noAuthRedirect?: boolean;
  signal?: AbortSignal;
}

async function send(method: string, path: string, o: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf || readCsrfCookie();
  return fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

async function errorOf(r: Response): Promise<ApiError> {
  let code = 'http_' + r.status;
  let message = r.statusText;
  try {
    const j = (await r.json()) as { error?: string; message?: string };
    code = j.error ?? code;
    message = j.message ?? message;
  } catch {
    /* not JSON */
  }
  return new ApiError(r.status, code, message);
}

/** Answers asked for before the bundle ran (early.ts, its own script first in <head>). */
const early: EarlyAnswers = ((globalThis as { __tetherEarly?: EarlyAnswers }).__tetherEarly ??= new Map());
/** How long a prefetched answer may wait for its first reader before it counts as stale. */
const EARLY_FRESH_MS = 10_000;

async function takeEarly(path: string): Promise<Response | undefined> {
  const e = early.get(path);
  if (!e) return undefined;
  early.delete(path);
  if (Date.now() - e.at > EARLY_FRESH_MS) return undefined;
  const r = await e.answer;
  return r?.ok ? r : undefined;
}

/** A request answered as a Response (downloads, uploads); errors thrown as ApiError. */
export async function request(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
  let r = (method === 'GET' && o.raw === undefined && !o.signal && !o.headers ? await takeEarly(path) : undefined) ?? (await send(method, path, o));
  if (r.status === 403 && stepUpPrompt) {
    const err = await errorOf(r.clone());
    if (err.code === 'step_up_required') {
      if (!(await stepUpPrompt({ totp: totpEnabled }))) throw err;
      r = await send(method, path, o);
    } else throw err;
  }
  if (!r.ok) {
    const err = await errorOf(r);
    if (r.status === 401 && !o.noAuthRedirect) onUnauthorized?.();
    throw err;
  }
  return r;
}

export async function api<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
  const r = await request(method, path, o);
  const text = await r.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T = unknown>(path: string, o?: RequestOptions) => api<T>('GET', path, o);
export const post = <T = unknown>(path: string, body?: unknown, o?: RequestOptions) => api<T>('POST', path, { ...o, body: body ?? {} });
export const patch = <T = unknown>(path: string, body: unknown) => api<T>('PATCH', path, { body });
export const del = <T = unknown>(path: string) => api<T>('DELETE', path);

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? '?' + s : '';
}

/**
 * Before a WebSocket that needs a fresh step-up (a refused upgrade gives the browser no body to
 * read): asks for the confirmation when the session's step-up is missing or about to lapse.
 * Resolves false when the user cancels.
 */
export async function ensureStepUp(marginMs = 5_000): Promise<boolean> {
  const m = await get<Me>('/api/v1/auth/me', { noAuthRedirect: true });
  if (m.auth.kind !== 'session' || (m.auth.stepUpUntil !== null && m.auth.stepUpUntil - Date.now() > marginMs)) return true;
  return stepUpPrompt ? stepUpPrompt({ totp: m.totpEnabled }) : false;
}

export function wsUrl(path: string): string {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

// ---- types of what the hub answers (the parts the console reads) ----

export interface HostFacts {
  hostname: string;
  os: { name: string; id: string; version: string; pretty: string };
  platform: string;
  kernel: string;
  arch: string;
  cpu: { model: string; physicalCores: number; logicalCores: number };
  memoryBytes: number;
  ips: string[];
  macs: string[];
  bootTime?: number;
}
export interface Host {
  id: string;
  hostname: string;
  online: boolean;
  revoked: boolean;
  labels: Record<string, string>;
  capabilities: string[];
  agentVersion: string;
  createdAt: number;
  lastSeen: number | null;
  lastAddr: string | null;
  facts: HostFacts;
}
export interface OverviewRow {
  id: string;
  hostname: string;
  online: boolean;
  labels: Record<string, string>;
  os: string;
  ts: number | null;
  uptimeSec: number | null;
  cpuPercent: number | null;
  memoryPercent: number | null;
  diskPercent: number | null;
  load1: number | null;
  netRxBytesPerSec: number | null;
  netTxBytesPerSec: number | null;
}
export interface Task {
  id: string;
  jobId: string;
  hostId: string;
  hostname: string;
  index: number;
  batch: number;
  phase: string;
  state: string;
  status: string | null;
  ok: boolean | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  stdout: string | null;
  stderr: string | null;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  pid: number | null;
  createdAt: number;
  sentAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
}
export interface Job {
  id: string;
  name: string;
  kind: string;
  state: string;
  spec: { command?: string[]; shell?: boolean; cwd?: string; timeoutSec?: number; user?: string; env?: Record<string, string> } & Record<string, unknown>;
  target: { hosts?: string[]; selector?: string; glob?: string };
  strategy: unknown;
  createdBy: string;
  createdAt: number;
  endedAt: number | null;
  hostCount: number;
  message: string | null;
  counts?: Record<string, number>;
}
