// A real hub process for the fleet tests, listening on 0.0.0.0 so that containers (via Podman's
// bridge gateway) and namespaces (via their bridge) reach it, plus the few REST calls the tests use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExit } from './cleanup.js';
import { projectRoot } from './env.js';
import { waitFor } from './exec.js';

export interface HostView {
  id: string;
  hostname: string;
  online: boolean;
  lastSeen?: string | number | null;
  facts?: { hostname?: string; ips?: string[]; macs?: string[]; [k: string]: unknown };
  labels?: Record<string, string>;
}

export interface FleetHub {
  /** http://127.0.0.1:PORT, for the test's own calls. */
  url: string;
  port: number;
  heartbeatSec: number;
  /** An admin session token. */
  login(): Promise<string>;
  createEnrollToken(opts?: { expiresInSec?: number; singleUse?: boolean; labels?: Record<string, string> }): Promise<string>;
  hosts(): Promise<HostView[]>;
  /** The hub's recent output, for failure messages. */
  output(): string;
  /** Stops and starts the hub on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '0.0.0.0', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function api<T>(url: string, path: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function startFleetHub(opts: { heartbeatSec?: number; password?: string } = {}): Promise<FleetHub> {
  const root = projectRoot();
  const main = join(root, 'packages/cli/dist/src/main.js');
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'tether-fleet-hub-'));
  const password = opts.password ?? 'fleet-test-password';
  const heartbeatSec = opts.heartbeatSec ?? 2;
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let out = '';
  let session: string | undefined;

  const start = async (): Promise<void> => {
    out = '';
    const c = spawn(
      process.execPath,
      [main, 'hub', '--listen', `0.0.0.0:${port}`, '--data', dataDir, '--heartbeat', String(heartbeatSec)],
      { cwd: root, env: { ...process.env, TETHER_ADMIN_PASSWORD: password }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-30_000);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    child = c;
    await waitFor('hub listening', async () => {
      if (c.exitCode !== null) throw new Error(`hub exited with ${c.exitCode}:\n${out}`);
      const r = await fetch(`${url}/api/v1/hosts`, { signal: AbortSignal.timeout(2_000) });
      return r.status > 0;
    }, { timeoutMs: 30_000, intervalMs: 200 });
  };

  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  };

  const unregister = onExit(() => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  await start();

  const login = async (): Promise<string> => {
    const r = await api<{ token: string }>(url, '/api/v1/auth/login', {
      method: 'POST',
      body: { username: 'admin', password },
    });
    session = r.token;
    return r.token;
  };
  const authed = async (): Promise<string> => session ?? (await login());

  return {
    url,
    port,
    heartbeatSec,
    login,
    async createEnrollToken(o = {}) {
      const r = await api<{ token: string }>(url, '/api/v1/enrollment-tokens', { method: 'POST', token: await authed(), body: o });
      return r.token;
    },
    async hosts() {
      const r = await api<{ hosts: HostView[] }>(url, '/api/v1/hosts', { token: await authed() });
      return r.hosts;
    },
    output: () => out,
    async restart() {
      await stopChild();
      await start();
      session = undefined;
    },
    async stop() {
      await stopChild();
      rmSync(dataDir, { recursive: true, force: true });
      unregister();
    },
  };
}
