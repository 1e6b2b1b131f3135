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

/**
 * Whether this browser may hold a session: the hub sets the CSRF cookie (readable, unlike the
 * session cookie) beside the session cookie with the same lifetime and clears both at logout. A
 * page without it is logged out, and asks the hub nothing before the login.
 */
export const maySession = (): boolean => readCsrfCookie() !== '';

// ---- a hub that does not answer ----

/**
 * How long the console waits for the hub's answer. A hub that accepts connections but never
 * answers (a stalled event loop, a stuck database) would otherwise leave a page loading and a
 * button spinning for good.
 */
export const ANSWER_TIMEOUT_MS = 15_000;

export class HubNotResponding extends ApiError {
  constructor(ms: number) {
    super(0, 'hub_not_responding', `the hub did not answer within ${Math.round(ms / 1000)} s`);
  }
}

/**
 * Whether the hub answers, from two witnesses: REST calls (one that timed out, until a later one is
 * answered) and the live socket (a probe left unanswered; see live.ts). Either one not answered
 * means "not responding", which the console shows apart from "offline" (the socket closed).
 */
const silent = { rest: false, live: false };
const hubFns = new Set<(answering: boolean) => void>();
export const hubAnswering = (): boolean => !silent.rest && !silent.live;
let probe: ReturnType<typeof setTimeout> | undefined;

export function noteHub(witness: 'rest' | 'live', answered: boolean): void {
  const before = hubAnswering();
  silent[witness] = !answered;
  if (witness === 'rest') restProbe();
  if (hubAnswering() !== before) for (const f of hubFns) f(hubAnswering());
}
export function onHubAnswering(fn: (answering: boolean) => void): () => void {
  hubFns.add(fn);
  return () => hubFns.delete(fn);
}

/** While REST calls go unanswered, one small call every 5 s finds out when the hub answers again. */
function restProbe(): void {
  if (!silent.rest || probe) return;
  probe = setTimeout(() => {
    void send('GET', '/api/v1/auth/me', {})
      .then((a) => a.settle())
      .catch(() => {})
      .finally(() => {
        probe = undefined;
        restProbe();
      });
  }, 5_000);
}

export interface RequestOptions {
  body?: unknown;
  raw?: BodyInit;
  headers?: Record<string, string>;
  /** leave a 401 to the caller instead of going back to the login page */
  noAuthRedirect?: boolean;
  signal?: AbortSignal;
  /**
   * How long to wait for the answer (ms; 0: no limit). The default suits every call the hub answers
   * itself or after one agent round trip; uploads and actions that wait on a slow engine (an image
   * pull, a container stop) pass their own.
   */
  timeoutMs?: number;
}

/** An answer, and how to stop its deadline once what was wanted of it has been read. */
interface Answer {
  r: Response;
  settle(): void;
}

async function send(method: string, path: string, o: RequestOptions): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf || readCsrfCookie();
  const ms = o.timeoutMs ?? ANSWER_TIMEOUT_MS;
  const ac = new AbortController();
  const timer = ms > 0 ? setTimeout(() => ac.abort(new HubNotResponding(ms)), ms) : undefined;
  try {
    const r = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      signal: o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal,
    });
    noteHub('rest', true);
    return { r, settle: () => clearTimeout(timer) };
  } catch (err) {
    clearTimeout(timer);
    if (ac.signal.aborted) {
      noteHub('rest', false);
      throw ac.signal.reason as Error;
    }
    throw err;
  }
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

async function takeEarly(path: string): Promise<Answer | undefined> {
  const e = early.get(path);
  if (!e) return undefined;
  early.delete(path);
  if (Date.now() - e.at > EARLY_FRESH_MS) return undefined;
  // The prefetch has no deadline of its own: it gets what is left of this one.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), Math.max(0, e.at + ANSWER_TIMEOUT_MS - Date.now()))));
  const r = await Promise.race([e.answer, late]);
  clearTimeout(timer);
  if (r === 'late') {
    noteHub('rest', false);
    throw new HubNotResponding(ANSWER_TIMEOUT_MS);
  }
  if (r) noteHub('rest', true);
  return r?.ok ? { r, settle: () => {} } : undefined;
}

async function exchange(method: string, path: string, o: RequestOptions): Promise<Answer> {
  let a = (method === 'GET' && o.raw === undefined && !o.signal && !o.headers ? await takeEarly(path) : undefined) ?? (await send(method, path, o));
  if (a.r.status === 403 && stepUpPrompt) {
    const err = await errorOf(a.r.clone());
    a.settle();
    if (err.code === 'step_up_required') {
      // No deadline while the user types: the retry gets a fresh one.
      if (!(await stepUpPrompt({ totp: totpEnabled }))) throw err;
      a = await send(method, path, o);
    } else throw err;
  }
  if (!a.r.ok) {
    try {
      const err = await errorOf(a.r);
      if (a.r.status === 401 && !o.noAuthRedirect) onUnauthorized?.();
      throw err;
    } finally {
      a.settle();
    }
  }
  return a;
}

/** A request answered as a Response (downloads, uploads, follows): the deadline covers the answer's headers, not its body. */
export async function request(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
  const a = await exchange(method, path, o);
  a.settle();
  return a.r;
}

/** A JSON call: the deadline covers the whole answer. */
export async function api<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
  const a = await exchange(method, path, o);
  try {
    const text = await a.r.text();
    return (text ? JSON.parse(text) : undefined) as T;
  } catch (err) {
    if (err instanceof HubNotResponding) noteHub('rest', false);
    throw err;
  } finally {
    a.settle();
  }
}

export const get = <T = unknown>(path: string, o?: RequestOptions) => api<T>('GET', path, o);
export const post = <T = unknown>(path: string, body?: unknown, o?: RequestOptions) => api<T>('POST', path, { ...o, body: body ?? {} });
export const patch = <T = unknown>(path: string, body: unknown, o?: RequestOptions) => api<T>('PATCH', path, { ...o, body });
export const del = <T = unknown>(path: string, o?: RequestOptions) => api<T>('DELETE', path, o);

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
  /** what the agent's config opens (agents that report it): file roots, terminal accounts, its own account */
  access?: { fileRoots: string[]; terminalUsers: string[]; user: string; autoUpdate?: boolean };
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
  /** the version its agent reported */
  agentVersion: string;
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
