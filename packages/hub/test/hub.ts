/**
 * An in-process hub on a fresh database (SQLite or a PostgreSQL schema) for API tests, with
 * shortcuts that mint real credentials through the hub's own stores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { createHub, type Hub } from '../src/server.js';
import { loadHubConfig } from '../src/config.js';
import type { Role, TokenScope } from '../src/modules/auth/store.js';
import { PG } from './db.js';

export const ADMIN_PW = 'admin-password-for-tests';

export interface TestApp {
  hub: Hub;
  /** a user with a password (argon2 runs once per user) */
  user(name: string, role: Role, hostSelector?: string | null): Promise<{ id: string; password: string }>;
  /** a session straight from the store; stepUpAt null: never stepped up */
  session(userId: string, stepUpAt?: number | null): Promise<string>;
  apiToken(userId: string, scope: TokenScope, hostSelector?: string | null): Promise<string>;
  /** POST /api/v1/auth/login over HTTP */
  login(username: string, password: string, code?: string): Promise<Response>;
  call(token: string | undefined, method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any }>;
  cleanup(): Promise<void>;
}

export async function startApp(engine: 'sqlite' | 'postgres', env: Record<string, string> = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-app-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const db = engine === 'sqlite' ? `sqlite:${join(dir, 't.db')}` : `${PG}?schema=${schema}`;
  const hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir, db }, { TETHER_ADMIN_PASSWORD: ADMIN_PW, ...env }), { log: pino({ level: 'silent' }) });
  return {
    hub,
    async user(name, role, hostSelector = null) {
      const password = `pw-${name}-${randomBytes(4).toString('hex')}`;
      const u = await hub.auth.createUser(name, password, role, Date.now(), hostSelector);
      return { id: u.id, password };
    },
    async session(userId, stepUpAt = Date.now()) {
      return (await hub.auth.createSession(userId, { ip: '127.0.0.1', userAgent: 'test', stepUpAt }, Date.now())).token;
    },
    async apiToken(userId, scope, hostSelector = null) {
      return (await hub.auth.createApiToken(userId, { name: `t-${scope}`, scope, hostSelector, expiresAt: Date.now() + 3600_000 }, Date.now())).token;
    },
    login(username, password, code) {
      return fetch(hub.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'tether-test' }, body: JSON.stringify({ username, password, ...(code ? { code } : {}) }) });
    },
    async call(token, method, url, body, headers = {}) {
      const r = await hub.app.inject({
        method: method as 'GET',
        url,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
        ...(body !== undefined ? { payload: body as object } : {}),
      });
      let json: any;
      try {
        json = r.json();
      } catch {
        json = r.body;
      }
      return { status: r.statusCode, json };
    },
    async cleanup() {
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
      if (engine === 'postgres') {
        const c = new pg.Client({ connectionString: PG });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    },
  };
}
