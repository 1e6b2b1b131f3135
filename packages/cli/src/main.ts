#!/usr/bin/env node
/**
 * `tether` — one command for the hub, the agent and operating the fleet.
 */
import { Command, Option } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { CAPABILITIES, ConfigError, LOG_REDACT as REDACT, TETHER_VERSION, parseDurationSec, parseLabelPairs, parseSelector } from '@tether/protocol/lite';
import type { HubFlags } from '@tether/hub';
import type { Agent, Reporter, TaskManager, TerminalService, Updater } from '@tether/agent';


// The hub and the agent are loaded only by the commands that run them: an agent on a host must not
// carry the hub's HTTP server, database drivers and password hashing in its memory.
const hubModule = () => import('@tether/hub');
const agentModule = () => import('@tether/agent');
import { ApiError, Client, parseTimeout, saveState, setRequestTimeout } from './client.js';
import { registerAccountCommands, loginWithCode, promptSecret } from './accounts.js';
import { ago, setWide, table } from './table.js';
import { fail, out } from './output.js';
import { installLine, parseAllow, parseCpu, parseFileRoot, parseMemory, type InstallLineOptions } from './install-line.js';

const program = new Command('tether')
  .version(TETHER_VERSION)
  .description('Tether: operate a fleet of Linux hosts')
  .option('--wide', 'tables: never cut lines to the terminal width (piped output is cut only when COLUMNS is set)')
  .option('--request-timeout <duration>', 'give up on a hub that does not answer within this (TETHER_REQUEST_TIMEOUT; default 15s; 0: never)')
  .showHelpAfterError();
program.hook('preAction', () => {
  const o = program.opts<{ wide?: boolean; requestTimeout?: string }>();
  setWide(Boolean(o.wide));
  try {
    if (o.requestTimeout !== undefined) setRequestTimeout(parseTimeout(o.requestTimeout, '--request-timeout'));
  } catch (err) {
    fail(err);
  }
});

/** The commands that run for good: their output is a log, and a closed one is not a reason to stop quietly. */
const DAEMONS = new Set(['hub', 'agent', 'start']);


const hubOptions = (c: Command) =>
  c
    .option('--listen <host:port>', 'address to listen on (TETHER_LISTEN; default 127.0.0.1:8080)')
    .option('--data <dir>', 'data directory (TETHER_DATA; default ./data)')
    .option('--db <url>', 'sqlite:PATH or postgres://… (TETHER_DB; default sqlite:<data>/tether.db)')
    .option('--heartbeat <duration>', 'agent heartbeat interval (TETHER_HEARTBEAT; default 10s)')
    .option('--handshake-timeout <duration>', 'close agent connections that send no hello within this (default 60s)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (TETHER_LOG_LEVEL)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (TETHER_TLS_CERT; needs --tls-key)')
    .option('--tls-key <file>', 'private key for --tls-cert (TETHER_TLS_KEY)')
    .option('--tls-self-signed', 'serve HTTPS with a certificate generated on first start under <data>/tls (TETHER_TLS_SELF_SIGNED)')
    .option('--artifacts-dir <dir>', 'agent artifacts served for the one-line install (TETHER_ARTIFACTS_DIR; default: the checkout\'s dist/artifacts, else <data>/artifacts)')
    .option('--public-url <url>', 'the URL hosts reach the hub at, put into install.sh (TETHER_PUBLIC_URL; default: each request\'s scheme and Host)')
    .option('--nats <urls>', 'join a cluster of hubs: NATS servers, comma-separated nats://host:port (TETHER_NATS; needs a postgres:// --db shared by all hubs)')
    .option('--cluster-prefix <name>', 'NATS subject prefix of this cluster (TETHER_CLUSTER_PREFIX; default tether)')
    .option('--config <file>', 'TOML config file (TETHER_CONFIG)');

function hubFlags(o: Record<string, unknown>): HubFlags {
  const f: HubFlags = {};
  for (const k of ['listen', 'data', 'db', 'heartbeat', 'handshakeTimeout', 'logLevel', 'tlsCert', 'tlsKey', 'tlsSelfSigned', 'artifactsDir', 'publicUrl', 'nats', 'clusterPrefix', 'config'] as const) if (o[k] !== undefined) (f as Record<string, unknown>)[k] = o[k];
  return f;
}

/**
 * SIGTERM and SIGINT stop the process in under 10 s: `stop` resolves to whether everything ended in
 * time (the hub bounds itself at 8 s, see STOP_BOUND_MS), and a backstop exits at 9.5 s regardless.
 */
function onSignals(stop: () => Promise<unknown>): void {
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      stop().then(
        (r) => process.exit((r as { clean?: boolean } | undefined)?.clean === false ? 1 : 0),
        () => process.exit(1),
      );
      setTimeout(() => process.exit(1), 9500).unref();
    });
  }
}

hubOptions(program.command('hub').description('run the hub')).action(async (o) => {
  try {
    const { createHub, loadHubConfig } = await hubModule();
    const hub = await createHub(loadHubConfig(hubFlags(o)));
    onSignals(() => hub.stop());
  } catch (err) {
    fail(err);
  }
});

const agentCommand = program
  .command('agent')
  .description('run the agent on this host (the first run needs an enrollment token; later runs do not); `tether agent upgrade` rolls agents forward')
  .option('--hub <url>', 'hub URL, e.g. http://hub.example:8080 (TETHER_HUB)')
  .option('--token <token>', 'enrollment token for the first run (TETHER_TOKEN; prefer the variable: arguments are visible to other users)')
  .option('--state <dir>', 'state directory holding the key and id (TETHER_STATE; default /var/lib/tether-agent)')
  .option('--reconnect-cap <duration>', 'longest wait between reconnect attempts (default 60s)')
  .option('--hub-fingerprint <sha256>', "accept only the hub TLS certificate with this SHA-256 fingerprint (TETHER_HUB_FINGERPRINT; printed by `tether token create`)")
  .option('--log-level <level>', 'log level (TETHER_LOG_LEVEL)')
  .option('--config <file>', 'TOML config file with capabilities (TETHER_AGENT_CONFIG)')
  .action(async (o) => {
    agentCompilerFlags();
    let agent: Agent;
    let reporter: Reporter | undefined;
    let tasks: TaskManager | undefined;
    let terminals: TerminalService | undefined;
    let updater: Updater | undefined;
    const shutdown = async () => {
      reporter?.stop();
      updater?.stop();
      agent.stop();
      tasks?.close();
      terminals?.close();
    };
    try {
      const { Agent, FileService, Reporter, TaskManager, TerminalService, Updater, installedHome, loadAgentConfig, runBundle, StreamRegistry, DockerService, SystemdService, ProcessService, CronService, PowerService, HostsFileService } = await agentModule();
      const cfg = loadAgentConfig(o);
      const { default: pino } = await import('pino');
      const log = pino({ name: 'agent', level: cfg.logLevel, redact: { paths: REDACT, censor: '[redacted]' } });
      agent = new Agent(cfg, log);
      log.info({ hub: cfg.hubUrl, state: cfg.stateDir, capabilities: cfg.capabilities, agentId: agent.agentId ?? null }, 'agent starting');
      // Always present, so that a task the local config does not allow is refused with a reason.
      const files = new FileService(agent, cfg, log.child({ module: 'files' })).start(); // always on: it answers refusals itself
      // Self-update: a version on trial must reach its hub (always checked); upgrades only with auto_update.
      const up = new Updater({
        installed: installedHome(),
        fetchTransfer: (id, dest, max) => files.fetchTransfer(id, dest, max),
        restart: (why) => {
          log.warn({ why }, 'stopping so that systemd starts the version installed');
          void shutdown();
        },
        underSystemd: Boolean(process.env.INVOCATION_ID),
        log: log.child({ module: 'update' }),
      });
      updater = up;
      const trial = up.startTrial();
      agent.on('connected', () => trial.connected());
      terminals = new TerminalService(agent, log.child({ module: 'terminal' }), { capabilities: cfg.capabilities, users: cfg.terminalUsers, idleMs: cfg.terminalIdleSec * 1000 });
      tasks = new TaskManager(agent, log.child({ module: 'tasks' }), {
        capabilities: cfg.capabilities,
        fileRoots: cfg.fileRoots,
        runBundle: (taskId, spec, onOutput) => runBundle(join(cfg.stateDir, 'bundles'), taskId, spec, async (id, dest) => void (await files.fetchTransfer(id, dest, spec.size)), onOutput),
        ...(cfg.autoUpdate ? { runUpgrade: (spec: Parameters<Updater['run']>[0], onOutput: Parameters<Updater['run']>[1]) => up.run(spec, onOutput) } : {}),
      });
      // Host managers: always present, each answers a refusal itself when its capability is off.
      const streams = new StreamRegistry(agent);
      new DockerService(agent, cfg, streams, log.child({ module: 'docker' })).start();
      new SystemdService(agent, cfg, streams, log.child({ module: 'systemd' })).start();
      new ProcessService(agent, cfg, log.child({ module: 'process' })).start();
      new CronService(agent, cfg, log.child({ module: 'cron' })).start();
      new PowerService(agent, cfg, log.child({ module: 'power' })).start();
      new HostsFileService(agent, cfg, log.child({ module: 'hostsfile' })).start();
      // Collecting and reporting is itself a capability: a host can turn even monitoring off.
      if (cfg.capabilities.includes('metrics')) {
        reporter = new Reporter(agent, log.child({ module: 'reporter' }), {
          collectors: {
            enabled: Object.fromEntries(cfg.collectorsDisabled.map((c) => [c, false])),
            intervalsMs: cfg.collectorIntervals,
            capabilities: cfg.capabilities,
            containers: { socket: cfg.dockerSocket },
            processes: { cmdline: cfg.processCmdline },
          },
          backlogMax: cfg.backlog,
        });
        reporter.start();
      }
    } catch (err) {
      fail(err);
    }
    onSignals(shutdown);
    const exit = await agent.run();
    if (exit.code === 'stopped') process.exit(0);
    process.stderr.write(`tether agent: ${exit.reason} (${exit.code})\n`);
    process.exit(2);
  });

program
  .command('agent-unit')
  .description("print the agent's systemd unit derived from its config file's capabilities, or the drop-in with its [limits] (what install.sh writes)")
  .option('--config <file>', 'the agent config file', '/etc/tether/agent.toml')
  .option('--part <part>', 'unit, or limits (empty output: no limits)', 'unit')
  .option('--prefix <dir>', 'where versions are installed (<dir>/current/bin/tether-agent)', '/opt/tether-agent')
  .action(async (o: { config: string; part: string; prefix: string }) => {
    try {
      if (o.part !== 'unit' && o.part !== 'limits') throw new Error(`--part: expected unit or limits, got ${JSON.stringify(o.part)}`);
      if (!o.prefix.startsWith('/')) throw new Error(`--prefix: expected an absolute path, got ${JSON.stringify(o.prefix)}`);
      const { loadAgentConfig, renderUnit, renderLimits, UNIT_DEFAULTS } = await agentModule();
      // The unit is written before the agent first runs: the hub URL may be all there is.
      const cfg = loadAgentConfig({ config: o.config }, {});
      process.stdout.write(o.part === 'unit' ? renderUnit(cfg, { ...UNIT_DEFAULTS, prefix: o.prefix.replace(/\/+$/, ''), configFile: o.config }) : renderLimits(cfg.limits, cfg.stateDir));
    } catch (err) {
      fail(err);
    }
  });

agentCommand
  .command('upgrade')
  .description("upgrade agents to a version this hub holds, as a job: each fetches its build over its own link, installs it beside the running one and restarts into it; back to the old one if it does not reach the hub within 60 s. Agents need auto_update = true in their own config")
  .requiredOption('-t, --target <target>', 'host ids or hostnames (comma-separated), a label selector (env=prod) or a hostname glob (web-*)')
  .option('--version <version>', 'the version to install (default: the newest the hub holds)')
  .addOption(new Option('--to-version <version>').hideHelp())
  .option('--rolling <n|p%>', 'rolling batches of n hosts (or p% of them); stops when failures exceed --max-failures (default 0)')
  .option('--parallel <n>', 'at most n hosts at once')
  .option('--sequence', 'one host at a time, stopping at the first failure')
  .option('--max-failures <n|p%>', 'failures tolerated before the job stops starting hosts')
  .option('--skip-refused', 'leave out hosts whose agents do not accept upgrades instead of refusing the job')
  .option('--detach', 'print the job id and return at once')
  .option('--json', 'print the finished job as JSON')
  .action(async (o: Record<string, unknown>) => (await import('./commands/exec.js')).agentUpgrade({ ...o, to: o.toVersion ?? o.version }));

/**
 * The agent runs on every host, so it runs without V8's optimising compiler (TurboFan) unless the
 * command line asks for it. Its work is reading kernel files and moving bytes, which optimised code
 * does not speed up: a full collection cost the same (8.7 ms) either way, but leaving the compiler
 * out keeps its code pages and optimised code out of memory, about 4 MB of the agent's resident
 * size (bench/results/agent-collect.md).
 */
function agentCompilerFlags(): void {
  if (process.execArgv.some((a) => /^--(no-)?(opt|turbofan)$/.test(a))) return;
  v8.setFlagsFromString('--no-opt');
}

const LOCAL_AGENT_TOML = `# The local agent's capability lock. Tether never writes to this file after creating it, and the
# hub cannot change what it allows. Monitoring only by default. To let the hub run commands and
# move files on this machine, list more capabilities, for example:
#
#   capabilities = ["metrics", "exec", "files"]
#   file_roots = ["/srv", "/tmp"]
#
# Known: metrics, exec, files, docker, systemd, cron, process, power, terminal. Restart to apply.
capabilities = ["metrics"]
`;

hubOptions(program.command('start').description('run a hub and a local agent enrolled to it (what `npm start` runs)')).action(async (o) => {
  try {
    const { createHub, loadHubConfig } = await hubModule();
    const cfg = loadHubConfig(hubFlags(o));
    const hub = await createHub(cfg);
    const stateDir = join(cfg.dataDir, 'agent');
    // The local agent obeys the same capability lock as any other: its own file, never the hub.
    const agentConfig = join(cfg.dataDir, 'agent.toml');
    if (!existsSync(agentConfig)) writeFileSync(agentConfig, LOCAL_AGENT_TOML, { mode: 0o600 });
    hub.log.info({ config: agentConfig }, 'local agent capabilities are set in this file (monitoring only unless you change it)');
    let child: ChildProcess | undefined;
    let stopping = false;
    const launch = async () => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.TETHER_CONFIG;
      if (!existsSync(join(stateDir, 'identity.json'))) {
        const { token } = await hub.enroll.create({ name: 'local agent', labels: { local: 'true' }, expiresInSec: 600, singleUse: true, createdBy: 'tether start', now: hub.clock.now() });
        env.TETHER_TOKEN = token; // by environment, not argv
      } else delete env.TETHER_TOKEN;
      const main = fileURLToPath(import.meta.url);
      // The launcher's helper-pool size (packages/cli/bin/tether) holds for the agent too; other node flags stay the hub's.
      const pool = process.execArgv.filter((a) => a.startsWith('--v8-pool-size'));
      child = spawn(process.execPath, [...pool, main, 'agent', '--hub', hub.url, '--state', stateDir, '--reconnect-cap', '5s', '--config', agentConfig], { stdio: 'inherit', env });
      child.on('exit', (code) => {
        if (stopping) return;
        if (code === 2) {
          hub.log.error('local agent was refused by the hub for good; not restarting it');
          return;
        }
        hub.log.warn({ code }, 'local agent exited; restarting in 2 s');
        setTimeout(() => void launch(), 2000).unref();
      });
    };
    await launch();
    onSignals(async () => {
      stopping = true;
      // The agent and the hub stop side by side, so the two together stay within the hub's bound.
      let agentDone: Promise<unknown> = Promise.resolve();
      if (child && child.exitCode === null) {
        agentDone = Promise.race([new Promise((r) => child!.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
        child.kill('SIGTERM');
      }
      const [r] = await Promise.all([hub.stop(), agentDone]);
      return r;
    });
  } catch (err) {
    fail(err);
  }
});

// --- operating the fleet through the API -------------------------------------------------------

/**
 * The password: with --password-stdin, standard input's first line whatever the environment holds
 * (the flag asked for it; a TETHER_PASSWORD left over from another script must not win). Without
 * it: TETHER_PASSWORD, else a prompt without echo (standard input's first line when not a terminal).
 */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return promptSecret('Password: ');
  if (process.env.TETHER_PASSWORD) return process.env.TETHER_PASSWORD;
  return promptSecret('Password: ');
}


program
  .command('login')
  .description('log in to a hub and remember the session')
  .requiredOption('--hub <url>', 'hub URL')
  .option('-u, --user <name>', 'user name', 'admin')
  .option('--password-stdin', 'read the password from standard input (or set TETHER_PASSWORD)')
  .option('--code <code>', 'one-time code when 2FA is on (or TETHER_TOTP; asked for on a terminal)')
  .action(async (o) => {
    try {
      const pw = await readPassword(Boolean(o.passwordStdin));
      const r = await loginWithCode(new Client(o.hub), o.user, pw, o.code);
      saveState({ hub: o.hub, token: r.token, user: r.user.username });
      process.stderr.write(`logged in to ${o.hub} as ${r.user.username}\n`);
    } catch (err) {
      fail(err);
    }
  });

interface HostView {
  id: string;
  hostname: string;
  online: boolean;
  revoked: boolean;
  labels: Record<string, string>;
  lastSeen: number | null;
  lastAddr: string | null;
  facts: { os: { pretty: string }; ips: string[]; arch: string };
}

program
  .command('hosts')
  .description('list hosts')
  .option('-s, --selector <selector>', 'label selector, e.g. env=prod,role!=db')
  .option('-q, --search <text>', 'hostname, IP or MAC')
  .addOption(new Option('--status <status>', 'filter by status').choices(['online', 'offline', 'revoked', 'all']))
  .option('--json', 'machine-readable output')
  .action(async (o) => {
    try {
      if (o.selector) parseSelector(o.selector);
      const qs = new URLSearchParams();
      if (o.selector) qs.set('selector', o.selector);
      if (o.search) qs.set('q', o.search);
      if (o.status) qs.set('status', o.status);
      const r = await Client.fromState().call<{ hosts: HostView[]; total: number; online: number }>('GET', `/api/v1/hosts?${qs}`);
      out(Boolean(o.json), r, () =>
        table(
          ['ID', 'HOSTNAME', 'STATUS', 'OS', 'ADDRESSES', 'LABELS', 'SEEN'],
          r.hosts.map((h) => [h.id, h.hostname, h.revoked ? 'revoked' : h.online ? 'online' : 'offline', h.facts.os.pretty, h.facts.ips.slice(0, 2).join(','), Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(','), h.online ? 'now' : ago(h.lastSeen)]),
        ) + `\n${r.online}/${r.total} online`,
      );
    } catch (err) {
      fail(err);
    }
  });

const host = program.command('host').description('one host');
host
  .command('show <id>')
  .option('--json', 'machine-readable output')
  .action(async (id, o) => {
    try {
      const h = await Client.fromState().call<HostView>('GET', `/api/v1/hosts/${encodeURIComponent(id)}`);
      out(Boolean(o.json), h, () => JSON.stringify(h, null, 2));
    } catch (err) {
      fail(err);
    }
  });
host
  .command('label <id> [pairs...]')
  .description('replace a host’s labels with key=value pairs')
  .action(async (id, pairs: string[]) => {
    try {
      await Client.fromState().call('PATCH', `/api/v1/hosts/${encodeURIComponent(id)}`, { labels: parseLabelPairs(pairs) });
    } catch (err) {
      fail(err);
    }
  });
host
  .command('revoke <id>')
  .description('disconnect an agent now and refuse it from now on')
  .action(async (id) => {
    try {
      await Client.fromState().call('POST', `/api/v1/hosts/${encodeURIComponent(id)}/revoke`);
    } catch (err) {
      fail(err);
    }
  });
host
  .command('rm <id>')
  .description('remove a host from the inventory')
  .action(async (id) => {
    try {
      await Client.fromState().call('DELETE', `/api/v1/hosts/${encodeURIComponent(id)}`);
    } catch (err) {
      fail(err);
    }
  });

const token = program.command('token').description('enrollment tokens');
token
  .command('create')
  .description('create an enrollment token and print the agent command that uses it (or, with --install-line, the one-line install)')
  .option('--name <name>', 'a note for the token list')
  .option('--expires <duration>', 'lifetime, e.g. 30m, 24h, 7d', '24h')
  .option('--single-use', 'valid for one enrollment only')
  .option('-l, --label <key=value...>', 'labels given to hosts enrolled with it')
  .option('--install-line', 'print only `curl -fsSL HUB/install.sh | sudo sh -s -- --token …`, which installs the agent and enrolls the host')
  .option('--allow <capabilities>', `with --install-line: what the host's agent will allow besides metrics, comma-separated (${CAPABILITIES.join(', ')})`, (v: string, prev: string[] = []) => [...prev, v])
  .option('--file-root <dir>', "with --install-line: where the agent's files capability may act, e.g. /srv")
  .option('--cpu <N%>', "with --install-line: the agent's CPU limit, e.g. 20% (100% is one core)")
  .option('--memory <size>', "with --install-line: the agent's memory limit, e.g. 128M (K, M or G)")
  .option('--json', 'machine-readable output')
  .action(async (o) => {
    try {
      // Checked before the token is made: a bad line must not cost a token.
      const extras = (['allow', 'fileRoot', 'cpu', 'memory'] as const).filter((k) => o[k] !== undefined);
      if (!o.installLine && extras.length) throw new Error(`${extras.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')} go${extras.length > 1 ? '' : 'es'} with --install-line`);
      const lineOpts: InstallLineOptions = {
        ...(o.allow ? { allow: parseAllow(o.allow) } : {}),
        ...(o.fileRoot !== undefined ? { fileRoot: parseFileRoot(o.fileRoot) } : {}),
        ...(o.cpu !== undefined ? { cpu: parseCpu(o.cpu) } : {}),
        ...(o.memory !== undefined ? { memory: parseMemory(o.memory) } : {}),
      };
      const body = {
        ...(o.name ? { name: o.name } : {}),
        expiresInSec: Math.round(parseDurationSec(o.expires)),
        singleUse: Boolean(o.singleUse),
        labels: parseLabelPairs(o.label ?? []),
      };
      const c = Client.fromState();
      const r = await c.call<{ token: string; tokenInfo: { id: string; expiresAt: number }; hubFingerprint?: string }>('POST', '/api/v1/enrollment-tokens', body);
      const expiry = `Expires ${new Date(r.tokenInfo.expiresAt).toISOString()}; shown only once.`;
      if (o.installLine) {
        // The hub's public_url when it has one (hosts may reach it by another name than this CLI does).
        let hub = c.hub;
        let held: number | undefined;
        let pin: string | undefined;
        try {
          const a = await c.call<{ publicUrl: string | null; artifacts: unknown[]; tlsPin?: { pubkey: string } | null }>('GET', '/api/v1/agent-artifacts');
          hub = a.publicUrl ?? hub;
          held = a.artifacts.length;
          pin = a.tlsPin?.pubkey;
        } catch {
          /* an older hub: no artifacts to speak of, the URL this CLI uses */
        }
        const line = installLine(hub, r.token, lineOpts, pin);
        if (!o.json) {
          process.stderr.write(`${expiry}\n`);
          if (!held) process.stderr.write("tether: the hub holds no agent artifact for this line to install: run `npm run package:agent` in the hub's checkout (or put tether-agent-*.tar.gz in its artifacts_dir)\n");
        }
        out(Boolean(o.json), { ...r, installLine: line }, () => line);
        return;
      }
      const pin = r.hubFingerprint ? ` --hub-fingerprint ${r.hubFingerprint}` : '';
      out(Boolean(o.json), r, () => `${r.token}\n\nOn the host to enroll:\n  TETHER_TOKEN=${r.token} tether agent --hub ${c.hub}${pin} --state /var/lib/tether-agent\n\n${expiry}${r.hubFingerprint ? `\nThe agent accepts only the hub certificate ${r.hubFingerprint}.` : ''}`);
    } catch (err) {
      fail(err);
    }
  });
token
  .command('ls')
  .option('--json', 'machine-readable output')
  .action(async (o) => {
    try {
      const r = await Client.fromState().call<{ tokens: { id: string; name: string; expiresAt: number; singleUse: boolean; uses: number; revokedAt: number | null; labels: Record<string, string> }[] }>('GET', '/api/v1/enrollment-tokens');
      out(Boolean(o.json), r, () =>
        table(
          ['ID', 'NAME', 'EXPIRES', 'SINGLE-USE', 'USES', 'STATE', 'LABELS'],
          r.tokens.map((t) => [t.id, t.name, new Date(t.expiresAt).toISOString(), t.singleUse ? 'yes' : 'no', String(t.uses), t.revokedAt ? 'revoked' : t.expiresAt < Date.now() ? 'expired' : 'active', Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(',')]),
        ),
      );
    } catch (err) {
      fail(err);
    }
  });
token
  .command('revoke <id>')
  .action(async (id) => {
    try {
      await Client.fromState().call('DELETE', `/api/v1/enrollment-tokens/${encodeURIComponent(id)}`);
    } catch (err) {
      fail(err);
    }
  });

registerAccountCommands(program, fail);

// Command groups in their own modules, loaded only for the command being run (all of them for
// help): a CLI that starts fast is the difference between a tool you reach for and one you don't.
const GROUPS: Record<string, () => Promise<(p: Command) => void>> = {
  exec: async () => (await import('./commands/exec.js')).registerExec,
  files: async () => (await import('./commands/files.js')).register,
  alerts: async () => (await import('./commands/alerts.js')).registerAlerts,
  managers: async () => (await import('./commands/managers.js')).registerManagers,
  terminal: async () => (await import('./commands/terminal.js')).registerTerminal,
};
const OWNER: Record<string, keyof typeof GROUPS> = {
  exec: 'exec', job: 'exec', task: 'exec', runs: 'exec',
  cp: 'files', files: 'files',
  alert: 'alerts', rule: 'alerts', channel: 'alerts', silence: 'alerts',
  docker: 'managers', systemd: 'managers', cron: 'managers', proc: 'managers', power: 'managers', 'hosts-file': 'managers',
  ssh: 'terminal',
};
/** The command's name: the first word that is neither an option nor a global option's value. */
function commandName(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--request-timeout') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}
const first = commandName(process.argv.slice(2));
if (!first || !DAEMONS.has(first)) {
  // A reader that went away (`tether proc ls web1 | head`) ends the command quietly with status 0,
  // as ps does: what was left to print is not wanted. Node would report the EPIPE as a crash.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}
const known = new Set(program.commands.map((c) => c.name()));
const wanted = first && OWNER[first] ? [OWNER[first]] : first && known.has(first) ? [] : (Object.keys(GROUPS) as (keyof typeof GROUPS)[]);
for (const g of wanted) (await GROUPS[g]!())(program);

// The program's own --version (print the CLI's) would take `tether agent upgrade --version V`.
const argv = process.argv.slice(2);
const upgradeAt = argv.indexOf('upgrade');
if (commandName(argv) === 'agent' && upgradeAt > 0 && argv.slice(0, upgradeAt).filter((a) => !a.startsWith('-')).length === 1) {
  for (let i = upgradeAt; i < argv.length; i++) if (argv[i] === '--version') argv[i] = '--to-version';
  for (let i = upgradeAt; i < argv.length; i++) if (argv[i]!.startsWith('--version=')) argv[i] = '--to-version=' + argv[i]!.slice('--version='.length);
}
program.parseAsync(argv, { from: 'user' }).catch(fail);
