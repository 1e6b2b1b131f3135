/**
 * Real hub and agent processes for tests: the same `tether` binary users run, on loopback.
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../../../..'); // packages/testkit/dist/src/procs.js
// the bundled command (scripts/bundle-cli.mjs)
export const CLI = join(REPO, 'packages/cli/dist/bundle/tether.mjs');
// what users run: the shell launcher that execs node on CLI with flags sized to the machine
export const BIN = join(REPO, 'packages/cli/bin/tether');

/**
 * The node that `tether agent` runs on in tests: the runtime the agent artifact ships (the version in
 * scripts/runtime.json, which scripts/package-agent.mjs fetches, checks and strips into .cache/runtime
 * when the build runs), so the suite tests the agent on the runtime hosts get. Hubs and other
 * commands keep this test's node (the hub's better-sqlite3 is built for it).
 * TETHER_TEST_AGENT_NODE: another node binary for agents, or `system` for this test's own.
 */
export const AGENT_NODE: string = agentNode();

function agentNode(): string {
  const chosen = process.env.TETHER_TEST_AGENT_NODE;
  if (chosen === 'system') return process.execPath;
  if (chosen) return chosen;
  const { node } = JSON.parse(readFileSync(join(REPO, 'scripts/runtime.json'), 'utf8')) as { node: string };
  const packaged = join(REPO, '.cache/runtime', `node-v${node}-linux-${process.arch}`, 'node');
  if (existsSync(packaged)) return packaged;
  process.stderr.write(`testkit: agents run on ${process.execPath} (${process.version}), not the packaged Node ${node}: ${packaged} is missing (npm run build makes it)\n`);
  return process.execPath;
}

/**
 * Spawns `tether args` through BIN (same pid as the node process: the launcher execs): `agent` on
 * AGENT_NODE, anything else on this test's node binary.
 */
function spawnTether(args: string[], env: NodeJS.ProcessEnv | undefined, nodeArgs: string[] = [], cwd?: string): ChildProcessWithoutNullStreams {
  const e: NodeJS.ProcessEnv = { ...process.env, TETHER_NODE: args[0] === 'agent' ? AGENT_NODE : process.execPath, ...env };
  if (nodeArgs.length) e.TETHER_NODE_FLAGS = nodeArgs.join(' ');
  return spawn('/bin/sh', [BIN, ...args], { env: e, stdio: ['pipe', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
}

export type DbKind = 'sqlite' | 'postgres';
export const PG_URL = process.env.TETHER_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Both databases by default: CI runs the suite on SQLite and PostgreSQL. Set TETHER_TEST_PG=off to
 * leave PostgreSQL out on a machine without one (never in CI: there it must fail, not skip).
 */
export function testDatabases(): DbKind[] {
  return process.env.TETHER_TEST_PG === 'off' ? ['sqlite'] : ['sqlite', 'postgres'];
}

export function tempDir(prefix = 'tether-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A child process whose output is kept (and echoed when TEST_VERBOSE is set). */
export class Proc {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
  constructor(readonly child: ChildProcess, readonly name: string) {
    const take = (buf: Buffer) => {
      for (const l of buf.toString('utf8').split('\n')) {
        if (!l) continue;
        if (this.lines.length < (Number(process.env.TETHER_TEST_MAX_LINES) || 20_000)) this.lines.push(l);
        if (process.env.TEST_VERBOSE) process.stderr.write(`[${name}] ${l}\n`);
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((res) => child.on('exit', (code) => {
      this.exitCode = code;
      res(code);
    }));
  }
  get pid(): number {
    return this.child.pid!;
  }
  output(): string {
    return this.lines.join('\n');
  }
  /** Parsed JSON log lines (pino). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (l.startsWith('{')) {
        try {
          out.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          /* not a log line */
        }
      }
    }
    return out;
  }
  async waitForLine(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(() => this.lines.find((l) => re.test(l)), `${this.name} output matching ${re}`, timeoutMs);
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; name?: string; cwd?: string; nodeArgs?: string[] } = {}): Proc {
  const child = spawnTether(args, opts.env, opts.nodeArgs, opts.cwd ?? REPO);
  return new Proc(child, opts.name ?? args[0] ?? 'tether');
}

/** Runs a CLI command to completion; one still running after `timeoutMs` is killed and says so in stderr. */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTether(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(input ?? '');
  const timer = setTimeout(() => {
    stderr += `\n[testkit: tether ${args.join(' ')} still running after ${timeoutMs} ms: killed]\n`;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface PgSchema {
  url: string;
  drop(): Promise<void>;
}

/** A fresh schema in the test database, so runs never see each other's rows. */
export function pgSchema(): PgSchema {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const sep = PG_URL.includes('?') ? '&' : '?';
  return {
    url: `${PG_URL}${sep}schema=${schema}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

export const ADMIN_PASSWORD = 'test-admin-password-1';

export interface HubOptions {
  db?: DbKind;
  heartbeat?: string;
  handshakeTimeout?: string;
  /** host:port; default 127.0.0.1:0 */
  listen?: string;
  env?: NodeJS.ProcessEnv;
  extraArgs?: string[];
  /** arguments for node itself, e.g. --cpu-prof (benchmarks) */
  nodeArgs?: string[];
  /** a database shared with other hubs (a cluster): used as is, never dropped by this hub's cleanup */
  dbUrl?: string;
  /** the sealing key (64 hex digits) put in the data directory first: hubs of one cluster share one */
  secretKeyHex?: string;
}

/** A hub process with its own data dir (and PostgreSQL schema), a logged-in API client, restart and cleanup. */
export class TestHub {
  proc!: Proc;
  url = '';
  port = 0;
  token = '';
  /** `sha256:…` when the hub serves TLS */
  tlsFingerprint: string | undefined;
  readonly dataDir = tempDir('tether-hub-');
  readonly dbUrl: string;
  private readonly pgs?: PgSchema;
  private readonly listenHost: string;

  private constructor(readonly opts: HubOptions) {
    if (opts.dbUrl) this.dbUrl = opts.dbUrl;
    else if (opts.db === 'postgres') {
      this.pgs = pgSchema();
      this.dbUrl = this.pgs.url;
    } else this.dbUrl = `sqlite:${join(this.dataDir, 'tether.db')}`;
    const listen = opts.listen ?? '127.0.0.1:0';
    this.listenHost = listen.slice(0, listen.lastIndexOf(':'));
    this.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  }

  static async start(opts: HubOptions = {}): Promise<TestHub> {
    const h = new TestHub(opts);
    try {
      await h.launch();
      await h.login();
    } catch (err) {
      // A hub that never answered must not outlive the test (one was found running 50 minutes later).
      await h.cleanup();
      throw err;
    }
    return h;
  }

  private async launch(): Promise<void> {
    if (this.opts.secretKeyHex) writeFileSync(join(this.dataDir, 'secret.key'), this.opts.secretKeyHex + '\n', { mode: 0o600 });
    const args = ['hub', '--listen', `${this.listenHost}:${this.port}`, '--data', this.dataDir, '--db', this.dbUrl, '--heartbeat', this.opts.heartbeat ?? '1s', ...(this.opts.handshakeTimeout ? ['--handshake-timeout', this.opts.handshakeTimeout] : []), ...(this.opts.extraArgs ?? [])];
    this.proc = runCli(args, { env: { TETHER_ADMIN_PASSWORD: ADMIN_PASSWORD, TETHER_LOG_LEVEL: 'debug', ...this.opts.env }, name: 'hub', ...(this.opts.nodeArgs ? { nodeArgs: this.opts.nodeArgs } : {}) });
    const line = await Promise.race([
      this.proc.waitForLine(/"msg":"hub listening"/, 20_000),
      this.proc.exited.then((c) => {
        throw new Error(`hub exited with ${c} before listening:\n${this.proc.output()}`);
      }),
    ]);
    const u = JSON.parse(line) as { url: string; tlsFingerprint?: string };
    this.port = Number(new URL(u.url).port);
    this.url = `${new URL(u.url).protocol}//127.0.0.1:${this.port}`;
    this.tlsFingerprint = u.tlsFingerprint;
  }

  async login(): Promise<void> {
    const r = await this.api<{ token: string }>('POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD }, false);
    this.token = r.token;
  }

  async raw(method: string, path: string, body?: unknown, auth = true): Promise<Response> {
    return fetch(this.url + path, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(auth && this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      // A hub that stopped answering fails the test with the call named, instead of hanging it.
      signal: AbortSignal.timeout(120_000),
    });
  }

  async api<T = any>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const r = await this.raw(method, path, body, auth);
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  /**
   * The environment of a CLI logged in to this hub as admin, its session kept in `dir/cli.json`
   * (`tether login --password-stdin`, as a user would).
   */
  async cliEnv(dir: string): Promise<NodeJS.ProcessEnv> {
    const env = { TETHER_CLI_CONFIG: join(dir, 'cli.json'), TETHER_PASSWORD: '' };
    const r = await cli(['login', '--hub', this.url, '--password-stdin'], env, ADMIN_PASSWORD + '\n');
    if (r.code !== 0) throw new Error(`tether login failed (${r.code}): ${r.stderr}`);
    return env;
  }

  async enrollToken(opts: { singleUse?: boolean; labels?: Record<string, string>; expiresInSec?: number } = {}): Promise<string> {
    return (await this.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', opts)).token;
  }

  async hosts(query = ''): Promise<{ hosts: any[]; total: number; online: number }> {
    return this.api('GET', `/api/v1/hosts${query}`);
  }

  async waitOnline(id: string, online = true, timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => (await this.api('GET', `/api/v1/hosts/${id}`)).online === online, `host ${id} ${online ? 'online' : 'offline'}`, timeoutMs);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.proc.stop(signal);
  }

  /** Starts the hub again on the same port, data and database. */
  async restart(): Promise<void> {
    if (this.proc.exitCode === undefined) await this.proc.stop('SIGTERM');
    await this.launch();
    await this.login();
  }

  async cleanup(): Promise<void> {
    await this.proc?.stop('SIGTERM').catch(() => {});
    rmSync(this.dataDir, { recursive: true, force: true });
    await this.pgs?.drop().catch(() => {});
  }
}

/**
 * The account terminal tests log in as (scripts/prepare-tests.sh makes it, with a group of its own):
 * never root, whose login profile is the machine's and not the test's.
 */
export const TERMINAL_USER = 'tether-term';
export const TERMINAL_USER_GROUP = 'tether-term-x';
/** Agent TOML for a terminal test: terminals open as TERMINAL_USER and as nobody else. */
export const TERMINAL_USER_TOML = `terminal_users = ["${TERMINAL_USER}"]`;

export interface AgentOptions {
  token?: string;
  stateDir?: string;
  reconnectCap?: string;
  env?: NodeJS.ProcessEnv;
  extraArgs?: string[];
  /** The agent's capability lock and file roots, written to a TOML file in the state directory. Default: metrics only. */
  capabilities?: string[];
  fileRoots?: string[];
  /** More TOML lines for that file. */
  toml?: string;
}

/** Writes an agent config file (the capability lock lives only there) and returns its path. */
export function writeAgentConfig(dir: string, o: { capabilities?: string[]; fileRoots?: string[]; toml?: string }): string {
  const file = join(dir, 'agent.toml');
  const lines = [`capabilities = ${JSON.stringify(o.capabilities ?? ['metrics'])}`];
  if (o.fileRoots) lines.push(`file_roots = ${JSON.stringify(o.fileRoots)}`);
  if (o.toml) lines.push(o.toml);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

export class TestAgent {
  constructor(
    readonly proc: Proc,
    readonly stateDir: string,
  ) {}
  static start(hubUrl: string, o: AgentOptions = {}): TestAgent {
    const stateDir = o.stateDir ?? tempDir('tether-agent-');
    const config = o.capabilities || o.fileRoots || o.toml ? ['--config', writeAgentConfig(stateDir, o)] : [];
    const proc = runCli(['agent', '--hub', hubUrl, '--state', stateDir, '--reconnect-cap', o.reconnectCap ?? '1s', ...config, ...(o.extraArgs ?? [])], {
      env: { TETHER_LOG_LEVEL: 'debug', ...(o.token ? { TETHER_TOKEN: o.token } : {}), ...o.env },
      name: 'agent',
    });
    return new TestAgent(proc, stateDir);
  }
  agentId(): string | undefined {
    try {
      return (JSON.parse(readFileSync(join(this.stateDir, 'identity.json'), 'utf8')) as { agentId: string }).agentId;
    } catch {
      return undefined;
    }
  }
  async waitConnected(timeoutMs = 10_000, after = 0): Promise<string> {
    await waitFor(() => this.proc.lines.slice(after).some((l) => l.includes('"msg":"connected to hub"')), 'agent connected', timeoutMs);
    return this.agentId()!;
  }
  connectedCount(): number {
    return this.proc.lines.filter((l) => l.includes('"msg":"connected to hub"')).length;
  }
  async stop(): Promise<void> {
    await this.proc.stop('SIGTERM');
  }
  cleanup(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
