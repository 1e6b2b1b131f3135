// The light fleet: many agent processes, each in its own network namespace (own eth0, own address
// 10.201.K.x/24 behind a veth pair on a bridge of this machine) and its own UTS namespace (own
// hostname). No systemd, no image: for tests that need many hosts cheaply.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_NODE } from '@tether/testkit';
import { onExit } from './cleanup.js';
import { projectRoot } from './env.js';
import { run, runSyncQuiet, sleep, waitFor } from './exec.js';
import { sweepStaleNetns } from './stale.js';

export interface NetnsFleetOptions {
  count: number;
  /** The hub's port on this machine; the hub must listen on 0.0.0.0 (or the bridge address). */
  hubPort: number;
  /** Enrollment token(s); without one no agent is started. */
  token?: string | ((index: number) => Promise<string> | string);
  /** Hostnames are `${hostnamePrefix}-1` … (default "ns"). */
  hostnamePrefix?: string;
  reconnectCap?: number;
  /** Replaces the agent's command line after `node` (default: the CLI's agent command). */
  agentArgs?: (o: { hubUrl: string; stateDir: string; reconnectCap: number }) => string[];
  /** Extra environment for the agents. */
  agentEnv?: Record<string, string>;
  /** Appended to the default agent command line (e.g. `--config FILE` for capabilities). */
  agentExtraArgs?: string[];
}

let seq = 0;

export class NetnsHost {
  child: ChildProcess | undefined;
  output = '';
  private enrolled = false;

  constructor(
    readonly index: number,
    /** Namespace name (ip netns). */
    readonly ns: string,
    /** The bridge end of the veth pair, on this machine. */
    readonly veth: string,
    readonly hostname: string,
    readonly address: string,
    readonly hubUrl: string,
    readonly stateDir: string,
    private readonly opts: { reconnectCap: number; agentArgs: NonNullable<NetnsFleetOptions['agentArgs']>; agentEnv: Record<string, string>; root: string },
  ) {}

  /** Starts the agent inside the namespace (enrolling with the token on its first start). */
  startAgent(token?: string): void {
    if (this.child && this.child.exitCode === null) throw new Error(`${this.hostname}: agent already running`);
    const args = this.opts.agentArgs({
      hubUrl: this.hubUrl,
      stateDir: this.stateDir,
      reconnectCap: this.opts.reconnectCap,
    });
    const env = { ...process.env, ...this.opts.agentEnv, ...(token && !this.enrolled ? { TETHER_TOKEN: token } : {}) };
    // ip netns exec → unshare --uts → sh (sets the hostname) → node: each step execs the next,
    // so the child's pid is the agent's. The script is constant; the values are arguments.
    const child = spawn(
      'ip',
      ['netns', 'exec', this.ns, 'unshare', '--uts', '--', '/bin/sh', '-c', 'hostname "$1" && shift && exec "$@"',
        'tether-netns', this.hostname, AGENT_NODE, ...args],
      { cwd: this.opts.root, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    if (token) this.enrolled = true;
  }

  /** SIGKILL (no goodbye), or SIGTERM; resolves when the process is gone. */
  async stopAgent(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }

  killAgent(): Promise<void> {
    return this.stopAgent('SIGKILL');
  }

  /** Link down on the bridge side: the namespace keeps its address, packets are dropped. */
  async cutNetwork(): Promise<void> {
    await run('ip', ['link', 'set', 'dev', this.veth, 'down']);
  }

  async healNetwork(): Promise<void> {
    await run('ip', ['link', 'set', 'dev', this.veth, 'up']);
  }

  /** Runs a command in the host's network namespace. */
  exec(args: readonly string[]): ReturnType<typeof run> {
    return run('ip', ['netns', 'exec', this.ns, ...args]);
  }
}

export interface NetnsFleet {
  hosts: NetnsHost[];
  bridge: string;
  /** The bridge's address: this machine, as the namespaces reach it. */
  gateway: string;
  hubUrl: string;
  stop(): Promise<void>;
}

/** A /24 in 10.201.0.0/16 that no interface here uses yet. */
async function freeSubnet(): Promise<number> {
  const r = await run('ip', ['-o', '-4', 'addr', 'show']);
  const used = new Set([...r.stdout.matchAll(/inet 10\.201\.(\d+)\./g)].map((m) => Number(m[1])));
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const k = (start + i) % 250;
    if (!used.has(k)) return k;
  }
  throw new Error('fleet: no free /24 in 10.201.0.0/16');
}

export async function startNetnsFleet(opts: NetnsFleetOptions): Promise<NetnsFleet> {
  if (opts.count < 1 || opts.count > 250) throw new Error('fleet: 1..250 namespace hosts');
  if (process.getuid?.() !== 0) throw new Error('fleet: namespace hosts need root');
  await sweepStaleNetns();
  const root = projectRoot();
  const id = `${process.pid}`;
  const n = ++seq;
  // Interface names have at most 15 characters: tfbr<pid>-<n>, tfv<pid>-<base36 n,i>. setup.sh removes
  // leftovers whose pid is dead.
  const bridge = `tfbr${id}-${n}`;
  const k = await freeSubnet();
  const gateway = `10.201.${k}.1`;
  const hubUrl = `http://${gateway}:${opts.hubPort}`;
  const stateRoot = mkdtempSync(join(tmpdir(), 'tether-netns-'));
  const prefix = opts.hostnamePrefix ?? 'ns';
  const agentArgs =
    opts.agentArgs ??
    ((o) => [
      join(root, 'packages/cli/dist/bundle/tether.mjs'),
      'agent',
      '--hub', o.hubUrl,
      '--state', o.stateDir,
      '--reconnect-cap', `${o.reconnectCap}s`,
      ...(opts.agentExtraArgs ?? []),
    ]);
  const hosts: NetnsHost[] = [];
  for (let i = 0; i < opts.count; i++) {
    hosts.push(
      new NetnsHost(i, `tft${id}-${n}-${i + 1}`, `tfv${id}-${((n - 1) * 250 + i).toString(36)}`, `${prefix}-${i + 1}`,
        `10.201.${k}.${i + 2}`, hubUrl, join(stateRoot, `host-${i + 1}`), { reconnectCap: opts.reconnectCap ?? 2, agentArgs, agentEnv: opts.agentEnv ?? {}, root }),
    );
  }
  const teardownSync = (): void => {
    for (const h of hosts) {
      if (h.child && h.child.exitCode === null) h.child.kill('SIGKILL');
      runSyncQuiet('ip', ['netns', 'delete', h.ns]);
      runSyncQuiet('ip', ['link', 'delete', h.veth]);
    }
    runSyncQuiet('ip', ['link', 'delete', bridge]);
    rmSync(stateRoot, { recursive: true, force: true });
  };
  const unregister = onExit(teardownSync);
  const stop = async (): Promise<void> => {
    await Promise.all(hosts.map((h) => h.stopAgent()));
    for (const h of hosts) {
      await run('ip', ['netns', 'delete', h.ns], { allowFailure: true });
      await run('ip', ['link', 'delete', h.veth], { allowFailure: true });
    }
    await run('ip', ['link', 'delete', bridge], { allowFailure: true });
    rmSync(stateRoot, { recursive: true, force: true });
    unregister();
  };

  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    for (const h of hosts) {
      await run('ip', ['netns', 'add', h.ns]);
      await run('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      await run('ip', ['link', 'set', h.veth, 'master', bridge]);
      await run('ip', ['link', 'set', h.veth, 'up']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'route', 'add', 'default', 'via', gateway]);
    }
    // The bridge forwards once a port is up; make sure the gateway answers before agents dial.
    await waitFor('namespace bridge up', async () => {
      const r = await run('ip', ['-o', 'link', 'show', bridge]);
      return !r.stdout.includes('state DOWN') || undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    if (opts.token !== undefined) {
      for (const h of hosts) {
        const t = typeof opts.token === 'function' ? await opts.token(h.index) : opts.token;
        h.startAgent(t);
        await sleep(50); // spread the Node start-ups a little on 2 cores
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { hosts, bridge, gateway, hubUrl, stop };
}
