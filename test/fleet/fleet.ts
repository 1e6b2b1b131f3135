// A fleet of real Linux hosts for tests: Podman containers running systemd as PID 1 (with cron,
// D-Bus, journald), each with its own hostname, PID namespace, network namespace and address on
// Podman's bridge, this machine's Node and the project tree mounted read-only, and a real Tether
// agent running as the systemd unit `tether-agent`, dialling a hub outside.
//
// Faults are the real thing: freeze = cgroup freezer (podman pause), agent kill/restart =
// systemctl, network cut = the host-side end of the host's veth taken down (the host keeps its
// address, routes and sockets; it just stops hearing anything, like a pulled switch port).
import { onExit } from './cleanup.js';
import { fleetEnv, type FleetEnv } from './env.js';
import { run, runSyncQuiet, waitFor, type RunOptions, type RunResult } from './exec.js';
import { sweepStaleContainers } from './stale.js';

export interface AgentCommandOptions {
  /** The hub as seen from inside a host, e.g. http://10.88.0.1:41234 */
  hubUrl: string;
  /** Backoff cap in seconds. */
  reconnectCap: number;
  /** The agent's state directory inside the host. */
  stateDir: string;
}

/**
 * The agent's command line inside a host. Node and the tree are where the fleet mounts them. The
 * enrollment token is not an argument: the unit passes it as TETHER_TOKEN, as an operator would.
 */
export function defaultAgentCommand(o: AgentCommandOptions): string[] {
  return [
    '/usr/local/bin/node',
    '/opt/tether/packages/cli/dist/bundle/tether.mjs',
    'agent',
    '--hub', o.hubUrl,
    '--state', o.stateDir,
    '--reconnect-cap', `${o.reconnectCap}s`,
  ];
}

export interface FleetOptions {
  /** How many hosts (3 fits comfortably on 2 cores). */
  count: number;
  /** The hub's port on this machine; the hub must listen on 0.0.0.0 (or the bridge address). */
  hubPort: number;
  /**
   * Enrollment token(s): a string for all hosts, or a function giving one per host (for single-use
   * tokens). Without it no agent is started: call host.startAgent() yourself.
   */
  token?: string | ((index: number) => Promise<string> | string);
  /** Hostnames are `${hostnamePrefix}-1` … (default "fleet"). */
  hostnamePrefix?: string;
  /** The agent's --reconnect-cap (default 2 s). */
  reconnectCap?: number;
  /** Replaces the agent's command line (e.g. to add flags). */
  agentCommand?: (o: AgentCommandOptions) => string[];
  /** Extra environment for the agent unit. */
  agentEnv?: Record<string, string>;
  /** Extra `podman run` options, e.g. `--restart=always` so that a reboot inside restarts the host. */
  podmanArgs?: string[];
  /**
   * A host as a fresh server is: neither this machine's Node nor the project tree mounted, so it has
   * no Node.js at all (for the installer's tests). `token` does not apply.
   */
  bare?: boolean;
}

const AGENT_UNIT = 'tether-agent';
const AGENT_STATE = '/var/lib/tether-agent';
let fleetSeq = 0;

/** Quotes one argument for a systemd ExecStart= line. */
function systemdQuote(arg: string): string {
  if (/[\n\r]/.test(arg)) throw new Error(`a unit file line cannot hold a newline: ${JSON.stringify(arg)}`);
  const escaped = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return `"${escaped}"`;
}

function envLine(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad environment variable name: ${name}`);
  return `Environment=${systemdQuote(`${name}=${value}`)}`;
}

export class FleetHost {
  /** The host's address on Podman's bridge, fixed for the host's life (kept across freeze and cuts). */
  address = '';
  /** The container's main process on this machine (systemd). */
  pid = 0;
  /** The host-side end of the host's veth pair (on Podman's bridge). */
  private veth = '';
  private tokenUsed = false;
  private cut: 'link' | 'drop' | undefined;

  constructor(
    readonly index: number,
    /** Podman's name for the container. */
    readonly name: string,
    /** The host's own hostname (what the agent reports). */
    readonly hostname: string,
    /** The hub's URL as seen from inside the host. */
    readonly hubUrl: string,
    private readonly opts: Required<Pick<FleetOptions, 'reconnectCap'>> & Pick<FleetOptions, 'agentCommand' | 'agentEnv'>,
  ) {}

  /** Runs a command inside the host (podman exec). Throws on a non-zero exit unless allowFailure. */
  exec(args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    const pre = opts?.input !== undefined ? ['exec', '-i', this.name] : ['exec', this.name];
    return run('podman', [...pre, ...args], opts);
  }

  /** systemctl inside the host; resolves with stdout. */
  async systemctl(...args: string[]): Promise<string> {
    return (await this.exec(['systemctl', ...args])).stdout.trim();
  }

  /** `systemctl is-active UNIT` inside the host: active, inactive, failed, activating… */
  async unitState(unit: string): Promise<string> {
    return (await this.exec(['systemctl', 'is-active', unit], { allowFailure: true })).stdout.trim();
  }

  /** Writes a file inside the host (as root). */
  async writeFile(path: string, content: string): Promise<void> {
    await this.exec(['tee', path], { input: content });
  }

  // --- the agent -------------------------------------------------------------------------

  /**
   * Installs the agent's unit and starts it. With a token the agent enrolls; without one it
   * reconnects with the identity in its state directory.
   */
  async startAgent(token?: string): Promise<void> {
    const command = (this.opts.agentCommand ?? defaultAgentCommand)({
      hubUrl: this.hubUrl,
      reconnectCap: this.opts.reconnectCap,
      stateDir: AGENT_STATE,
    });
    const env = { ...this.opts.agentEnv, ...(token ? { TETHER_TOKEN: token } : {}) };
    const unit = [
      '[Unit]',
      `Description=Tether agent (fleet test host ${this.hostname})`,
      'After=network.target',
      '',
      '[Service]',
      'Type=simple',
      ...Object.entries(env).map(([k, v]) => envLine(k, v)),
      `ExecStart=${command.map(systemdQuote).join(' ')}`,
      // Tests decide when an agent comes back: a killed agent stays down until restartAgent().
      'Restart=no',
      'KillMode=mixed',
      'TimeoutStopSec=5',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n');
    await this.writeFile(`/etc/systemd/system/${AGENT_UNIT}.service`, unit);
    await this.systemctl('daemon-reload');
    await this.exec(['systemctl', 'reset-failed', AGENT_UNIT], { allowFailure: true });
    await this.systemctl('restart', AGENT_UNIT);
    if (token) this.tokenUsed = true;
  }

  /** systemctl restart, without the enrollment token: the agent comes back with its saved identity. */
  async restartAgent(): Promise<void> {
    if (this.tokenUsed) {
      // Rewrite the unit without the token (a single-use token must not be presented again).
      this.tokenUsed = false;
      await this.startAgent();
      return;
    }
    await this.exec(['systemctl', 'reset-failed', AGENT_UNIT], { allowFailure: true });
    await this.systemctl('restart', AGENT_UNIT);
  }

  /** systemctl stop: SIGTERM, a clean shutdown. */
  async stopAgent(): Promise<void> {
    await this.systemctl('stop', AGENT_UNIT);
  }

  /** SIGKILL to the agent through systemd: no goodbye to the hub. The unit stays failed. */
  async killAgent(): Promise<void> {
    await this.systemctl('kill', '--signal=SIGKILL', AGENT_UNIT);
    await waitFor(`${this.hostname}: agent dead`, async () => {
      const s = await this.unitState(AGENT_UNIT);
      return s !== 'active' && s !== 'deactivating';
    }, { timeoutMs: 10_000, intervalMs: 100 });
  }

  /** The id the agent was given at enrollment (from its state directory), if enrolled. */
  async agentId(): Promise<string | undefined> {
    const r = await this.exec(['cat', `${AGENT_STATE}/identity.json`], { allowFailure: true });
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as { agentId?: string }).agentId;
  }

  /** active / inactive / failed … */
  agentState(): Promise<string> {
    return this.unitState(AGENT_UNIT);
  }

  /** The agent's journal, for failure messages. */
  async agentLogs(lines = 80): Promise<string> {
    const r = await this.exec(['journalctl', '-u', AGENT_UNIT, '--no-pager', '-o', 'cat', '-n', String(lines)], {
      allowFailure: true,
      timeoutMs: 10_000,
    }).catch((err: Error) => ({ stdout: `(journal unavailable: ${err.message})` }));
    return r.stdout;
  }

  // --- faults -----------------------------------------------------------------------------

  /** Freezes every process of the host (cgroup freezer). Its sockets stay open, nothing answers. */
  async freeze(): Promise<void> {
    await run('podman', ['pause', this.name]);
  }

  async thaw(): Promise<void> {
    await run('podman', ['unpause', this.name]);
  }

  /**
   * Cuts the host off the network. Both modes keep the host's address and routes, and drop
   * packets silently both ways, so established TCP connections hang instead of being reset.
   * - 'link' (default): the bridge end of the host's veth goes down, like a pulled switch port.
   *   Inside, eth0 loses its carrier; new connections fail fast (no ARP answer: EHOSTUNREACH).
   * - 'drop': every packet in and out of the host's eth0 is dropped (iptables in the host's
   *   network namespace), like a partition further away: new connections hang in SYN retries.
   */
  async cutNetwork(mode: 'link' | 'drop' = 'link'): Promise<void> {
    if (this.cut) throw new Error(`${this.hostname}: network already cut`);
    if (mode === 'link') {
      await run('ip', ['link', 'set', 'dev', this.veth, 'down']);
    } else {
      for (const chain of ['INPUT', 'OUTPUT'] as const) {
        await run('nsenter', ['-t', String(this.pid), '-n', 'iptables', '-w', '-I', chain, '1', ...(chain === 'INPUT' ? ['-i'] : ['-o']), 'eth0', '-j', 'DROP']);
      }
    }
    this.cut = mode;
  }

  async healNetwork(): Promise<void> {
    const mode = this.cut;
    if (mode === 'link' || mode === undefined) await run('ip', ['link', 'set', 'dev', this.veth, 'up']);
    if (mode === 'drop') {
      for (const chain of ['INPUT', 'OUTPUT'] as const) {
        await run('nsenter', ['-t', String(this.pid), '-n', 'iptables', '-w', '-D', chain, ...(chain === 'INPUT' ? ['-i'] : ['-o']), 'eth0', '-j', 'DROP']);
      }
    }
    this.cut = undefined;
  }

  /** The IPv4 addresses on the host's eth0 as the host itself sees them (works while frozen). */
  async addresses(): Promise<string[]> {
    const r = await run('nsenter', ['-t', String(this.pid), '-n', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    return [...r.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }

  /** Podman's view: running, paused, exited… */
  async containerState(): Promise<string> {
    return (await run('podman', ['inspect', '-f', '{{.State.Status}}', this.name])).stdout.trim();
  }

  /** Called once the container runs: finds its pid, address and the bridge end of its veth. */
  async discover(): Promise<void> {
    const r = await run('podman', ['inspect', '-f', '{{.State.Pid}} {{.NetworkSettings.IPAddress}}', this.name]);
    const [pid, address] = r.stdout.trim().split(/\s+/);
    this.pid = Number(pid);
    this.address = address ?? '';
    if (!this.pid || !this.address) throw new Error(`fleet: ${this.name} has no pid/address (${r.stdout.trim()})`);
    // eth0@ifN inside: N is the ifindex of the other end, on this machine.
    const link = await run('nsenter', ['-t', String(this.pid), '-n', 'ip', '-o', 'link', 'show', 'dev', 'eth0']);
    const peer = /eth0@if(\d+)/.exec(link.stdout)?.[1];
    if (!peer) throw new Error(`fleet: cannot find ${this.name}'s veth peer in: ${link.stdout}`);
    const host = await run('ip', ['-o', 'link', 'show']);
    const line = host.stdout.split('\n').find((l) => l.startsWith(`${peer}: `));
    const veth = line?.split(': ')[1]?.split('@')[0];
    if (!veth) throw new Error(`fleet: no interface with index ${peer} on this machine`);
    this.veth = veth;
  }
}

export interface Fleet {
  hosts: FleetHost[];
  /** The hub's URL as the hosts see it. */
  hubUrl: string;
  env: FleetEnv;
  /** Removes every container of this fleet (also done at process exit). */
  stop(): Promise<void>;
}

/** The gateway of Podman's default network: this machine, as the hosts reach it. */
async function bridgeGateway(): Promise<string> {
  const r = await run('podman', ['network', 'inspect', 'podman', '--format', '{{range .Subnets}}{{.Gateway}} {{end}}']);
  const gw = r.stdout.trim().split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!gw) throw new Error(`fleet: no IPv4 gateway on podman's network (${r.stdout.trim()})`);
  return gw;
}

/**
 * Starts `count` hosts and (with a token) their agents. Waits until systemd inside each host is
 * up; does NOT wait for the hub to see the agents: the test decides what "joined" means.
 */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const env = await fleetEnv();
  await sweepStaleContainers();
  const gateway = await bridgeGateway();
  const hubUrl = `http://${gateway}:${opts.hubPort}`;
  const seq = ++fleetSeq;
  const prefix = opts.hostnamePrefix ?? 'fleet';
  const hosts = Array.from({ length: opts.count }, (_, i) =>
    new FleetHost(i, `tether-t-${process.pid}-${seq}-${i + 1}`, `${prefix}-${i + 1}`, hubUrl, {
      reconnectCap: opts.reconnectCap ?? 2,
      ...(opts.agentCommand ? { agentCommand: opts.agentCommand } : {}),
      ...(opts.agentEnv ? { agentEnv: opts.agentEnv } : {}),
    }),
  );
  const names = hosts.map((h) => h.name);
  const unregister = onExit(() => runSyncQuiet('podman', ['rm', '-f', '-t', '0', ...names]));
  const stop = async (): Promise<void> => {
    await run('podman', ['rm', '-f', '-t', '0', ...names], { allowFailure: true, timeoutMs: 60_000 });
    unregister();
  };

  try {
    // One at a time: podman serialises on its locks anyway, and 2 cores are shared.
    for (const h of hosts) {
      await run('podman', [
        'run', '-d',
        '--name', h.name,
        '--hostname', h.hostname,
        '--systemd=always',
        '--label', 'tether.fleet=1',
        '--label', `tether.fleet.pid=${process.pid}`,
        ...(opts.podmanArgs ?? []),
        ...(opts.bare ? [] : ['-v', `${env.node}:/usr/local/bin/node:ro`, '-v', `${env.root}:/opt/tether:ro`]),
        env.image,
        '/lib/systemd/systemd',
      ]);
    }
    for (const h of hosts) {
      await h.discover();
      // `--wait` returns once boot is done: "running", or "degraded" if some unit failed. Right
      // after `podman run` systemd may not have opened its bus yet ("Failed to connect to bus"):
      // that is still booting, so ask again until the deadline.
      const deadline = Date.now() + 90_000;
      let r = await h.exec(['systemctl', 'is-system-running', '--wait'], { allowFailure: true, timeoutMs: 90_000 });
      while (!r.stdout.trim() && /Failed to connect to bus/i.test(r.stderr) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 200));
        r = await h.exec(['systemctl', 'is-system-running', '--wait'], { allowFailure: true, timeoutMs: Math.max(1_000, deadline - Date.now()) });
      }
      const state = r.stdout.trim();
      if (state !== 'running') {
        const failed = await h.exec(['systemctl', '--failed', '--no-legend'], { allowFailure: true });
        throw new Error(`fleet: systemd in ${h.name} is ${state || r.stderr.trim()}; failed units:\n${failed.stdout}`);
      }
    }
    if (opts.token !== undefined) {
      for (const h of hosts) {
        const t = typeof opts.token === 'function' ? await opts.token(h.index) : opts.token;
        await h.startAgent(t);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { hosts, hubUrl, env, stop };
}
