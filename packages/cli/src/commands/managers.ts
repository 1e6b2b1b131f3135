/**
 * Host managers from the command line: `tether docker …`, `tether systemd …`, `tether cron …`,
 * `tether proc …`, `tether power …`, `tether hosts-file …`. Every command names a host (id or
 * unique hostname) first and takes `--json`.
 */
import type { Command } from 'commander';
import { parseSignal } from '@tether/protocol/lite';
import { Client } from '../client.js';
import { fail, out } from '../output.js';
import { table } from '../table.js';
import { hostId } from './files.js';

const enc = encodeURIComponent;
const qs = (q: Record<string, string | number | boolean | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== false) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};
const when = (ms: number | undefined) => (ms ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : '-');
const bytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)}G` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)}M` : n >= 1024 ? `${(n / 1024).toFixed(1)}K` : String(n));

/** Runs an action against one host: resolves the host, calls, prints; failures exit non-zero. */
function act<A extends unknown[]>(fn: (c: Client, id: string, ...rest: A) => Promise<unknown>) {
  return async (host: string, ...rest: A) => {
    try {
      const c = Client.forHostWork();
      await fn(c, await hostId(c, host), ...rest);
    } catch (err) {
      fail(err);
    }
  };
}

/**
 * Streams a follow response (text) to stdout until the hub ends it or Ctrl-C. A quiet log sends
 * nothing for as long as it likes, so the hub is asked whether it is alive meanwhile (Client.watch).
 */
async function follow(c: Client, path: string): Promise<void> {
  const stopped = new AbortController();
  let res: Response;
  try {
    res = await c.answered((signal) => fetch(c.hub.replace(/\/$/, '') + path, { headers: c.authHeaders(), signal: AbortSignal.any([signal, stopped.signal]) }), Infinity);
  } catch (err) {
    throw err instanceof TypeError ? new Error(`cannot reach hub at ${c.hub}: ${(err.cause as Error | undefined)?.message ?? err.message}`) : err;
  }
  if (!res.ok || !res.body) {
    const e = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    throw new Error(`${e.error ?? res.status}: ${e.message ?? 'follow failed'}`);
  }
  let dead: Error | undefined;
  const stop = c.watch((err) => {
    dead = err;
    stopped.abort(err);
  });
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
  } catch (err) {
    throw dead ?? err;
  } finally {
    stop();
  }
}

const kv = (pairs: string[] = []) => Object.fromEntries(pairs.map((p) => {
  const i = p.indexOf('=');
  if (i <= 0) throw new Error(`expected KEY=VALUE, got ${JSON.stringify(p)}`);
  return [p.slice(0, i), p.slice(i + 1)];
}));

interface Container { id: string; names: string[]; image: string; state: string; status: string; ports: { containerPort: number; hostPort?: number; protocol: string }[] }

function registerDocker(program: Command): void {
  const d = program.command('docker').description('Docker on a host (agent capability docker)');
  const base = (id: string) => `/api/v1/hosts/${enc(id)}/docker`;
  d.command('info <host>').option('--json').action(act(async (c, id, o: { json?: boolean }) => {
    const r = await c.call<{ version: { Version?: string; ApiVersion?: string; Components?: { Name: string }[] }; info: { Containers?: number; ContainersRunning?: number; Images?: number }; readOnly: boolean }>('GET', base(id));
    out(Boolean(o.json), r, () => `engine ${r.version.Version ?? '?'} (API ${r.version.ApiVersion ?? '?'}), ${r.info.ContainersRunning ?? '?'}/${r.info.Containers ?? '?'} containers running, ${r.info.Images ?? '?'} images${r.readOnly ? ', read-only for Tether' : ''}`);
  }));
  d.command('ps <host>').option('-a, --all', 'stopped ones too').option('--json').action(act(async (c, id, o: { all?: boolean; json?: boolean }) => {
    const r = await c.call<{ containers: Container[] }>('GET', `${base(id)}/containers${qs({ all: o.all })}`);
    out(Boolean(o.json), r, () => table(['ID', 'NAME', 'IMAGE', 'STATE', 'STATUS', 'PORTS'], r.containers.map((x) => [x.id.slice(0, 12), x.names.join(','), x.image, x.state, x.status, x.ports.map((p) => `${p.hostPort ? `${p.hostPort}->` : ''}${p.containerPort}/${p.protocol}`).join(',')])));
  }));
  d.command('inspect <host> <container>').action(act(async (c, id, cid: string) => {
    out(true, await c.call('GET', `${base(id)}/containers/${enc(cid)}`), () => '');
  }));
  for (const a of ['start', 'stop', 'restart', 'kill', 'pause', 'unpause'] as const) {
    d.command(`${a} <host> <container>`).option('-t, --time <sec>', 'seconds to wait before killing (stop, restart)').option('-s, --signal <sig>', 'signal (kill)').option('--json').action(act(async (c, id, cid: string, o: { time?: string; signal?: string; json?: boolean }) => {
      const r = await c.call('POST', `${base(id)}/containers/${enc(cid)}/${a}${qs({ timeoutSec: o.time, signal: o.signal ? parseSignal(o.signal) : undefined })}`);
      out(Boolean(o.json), r, () => `${a}: ${cid}`);
    }));
  }
  d.command('rename <host> <container> <name>').action(act(async (c, id, cid: string, name: string) => {
    await c.call('POST', `${base(id)}/containers/${enc(cid)}/rename`, { name });
  }));
  d.command('rm <host> <container>').option('-f, --force').option('-v, --volumes').option('--json').action(act(async (c, id, cid: string, o: { force?: boolean; volumes?: boolean; json?: boolean }) => {
    const r = await c.call('DELETE', `${base(id)}/containers/${enc(cid)}${qs({ force: o.force, volumes: o.volumes })}`);
    out(Boolean(o.json), r, () => `removed ${cid}`);
  }));
  d.command('logs <host> <container>').option('-n, --tail <n>').option('--since <epochSec>').option('-t, --timestamps').option('-f, --follow').option('--json').action(act(async (c, id, cid: string, o: { tail?: string; since?: string; timestamps?: boolean; follow?: boolean; json?: boolean }) => {
    const q = { tail: o.tail, since: o.since, timestamps: o.timestamps };
    if (o.follow) return follow(c, `${base(id)}/containers/${enc(cid)}/logs${qs({ ...q, follow: true, format: o.json ? 'ndjson' : undefined })}`);
    const r = await c.call<{ logs: { stream: string; data: string }[]; truncated: boolean }>('GET', `${base(id)}/containers/${enc(cid)}/logs${qs(q)}`);
    if (o.json) return out(true, r, () => '');
    for (const ch of r.logs) (ch.stream === 'stderr' ? process.stderr : process.stdout).write(ch.data);
  }));
  d.command('top <host> <container>').option('--json').action(act(async (c, id, cid: string, o: { json?: boolean }) => {
    const r = await c.call<{ titles: string[]; processes: string[][] }>('GET', `${base(id)}/containers/${enc(cid)}/top`);
    out(Boolean(o.json), r, () => table(r.titles, r.processes));
  }));
  d.command('stats <host> <container>').option('--json').action(act(async (c, id, cid: string, o: { json?: boolean }) => {
    const r = await c.call<{ cpuPercent: number; memoryBytes: number; memoryLimitBytes: number; netRxBytes: number; netTxBytes: number; blockReadBytes: number; blockWriteBytes: number; pids: number }>('GET', `${base(id)}/containers/${enc(cid)}/stats`);
    out(Boolean(o.json), r, () => table(['CPU %', 'MEM', 'LIMIT', 'NET RX/TX', 'BLOCK R/W', 'PIDS'], [[r.cpuPercent.toFixed(2), bytes(r.memoryBytes), bytes(r.memoryLimitBytes), `${bytes(r.netRxBytes)}/${bytes(r.netTxBytes)}`, `${bytes(r.blockReadBytes)}/${bytes(r.blockWriteBytes)}`, String(r.pids)]]));
  }));
  d.command('run <host> <image> [command...]')
    .description('create a container and start it (--create-only: just create)')
    .option('--name <name>').option('-e, --env <K=V...>').option('-p, --publish <[ip:]hostPort:containerPort[/udp]...>').option('-v, --volume <src:dst[:ro]...>')
    .option('--restart <policy>', 'no|always|unless-stopped|on-failure').option('-l, --label <k=v...>').option('-w, --workdir <dir>').option('-u, --user <user>').option('--create-only').option('--json')
    .action(act(async (c, id, image: string, command: string[], o: { name?: string; env?: string[]; publish?: string[]; volume?: string[]; restart?: string; label?: string[]; workdir?: string; user?: string; createOnly?: boolean; json?: boolean }) => {
      const ports = (o.publish ?? []).map((p) => {
        const m = /^(?:([0-9a-fA-F.:]+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(p);
        if (!m) throw new Error(`--publish takes [ip:]hostPort:containerPort[/udp], got ${JSON.stringify(p)}`);
        return { containerPort: Number(m[3]), hostPort: Number(m[2]), ...(m[1] ? { hostIp: m[1] } : {}), ...(m[4] ? { protocol: m[4] } : {}) };
      });
      const spec = { image, ...(command.length ? { command } : {}), ...(o.name ? { name: o.name } : {}), ...(o.env ? { env: kv(o.env) } : {}), ...(ports.length ? { ports } : {}), ...(o.volume ? { volumes: o.volume } : {}), ...(o.restart ? { restart: o.restart } : {}), ...(o.label ? { labels: kv(o.label) } : {}), ...(o.workdir ? { workdir: o.workdir } : {}), ...(o.user ? { user: o.user } : {}), start: !o.createOnly };
      const r = await c.call<{ id: string; warnings: string[] }>('POST', `${base(id)}/containers`, spec);
      out(Boolean(o.json), r, () => r.id + r.warnings.map((w) => `\nwarning: ${w}`).join(''));
    }));
  d.command('images <host>').option('-a, --all').option('--json').action(act(async (c, id, o: { all?: boolean; json?: boolean }) => {
    const r = await c.call<{ images: { id: string; tags: string[]; created: number; size: number }[] }>('GET', `${base(id)}/images${qs({ all: o.all })}`);
    out(Boolean(o.json), r, () => table(['ID', 'TAGS', 'CREATED', 'SIZE'], r.images.map((i) => [i.id.replace(/^sha256:/, '').slice(0, 12), i.tags.join(','), when(i.created * 1000), bytes(i.size)])));
  }));
  d.command('image-inspect <host> <ref>').action(act(async (c, id, ref: string) => out(true, await c.call('GET', `${base(id)}/images/inspect${qs({ ref })}`), () => '')));
  d.command('rmi <host> <ref>').option('-f, --force').option('--json').action(act(async (c, id, ref: string, o: { force?: boolean; json?: boolean }) => {
    const r = await c.call<{ removed: string[] }>('DELETE', `${base(id)}/images${qs({ ref, force: o.force })}`);
    out(Boolean(o.json), r, () => r.removed.join('\n'));
  }));
  d.command('pull <host> <ref>').action(act(async (c, id, ref: string) => void (await c.call('POST', `${base(id)}/images/pull`, { ref }))));
  d.command('import <host> <path> <ref>').description('make an image from a root filesystem tarball on the host (inside its file roots)').action(act(async (c, id, path: string, ref: string) => void (await c.call('POST', `${base(id)}/images/import`, { ref, path }))));
  d.command('prune <host> <what>').description('what: containers | images').option('-a, --all', 'images: unused ones too, not only dangling').option('--json').action(act(async (c, id, what: string, o: { all?: boolean; json?: boolean }) => {
    const r = await c.call<{ removed: string[]; spaceReclaimed: number }>('POST', `${base(id)}/prune`, { what, all: Boolean(o.all) });
    out(Boolean(o.json), r, () => `${r.removed.length} removed, ${bytes(r.spaceReclaimed)} reclaimed`);
  }));
}

function registerSystemd(program: Command): void {
  const s = program.command('systemd').description('systemd units on a host (agent capability systemd)');
  const base = (id: string) => `/api/v1/hosts/${enc(id)}/systemd`;
  s.command('ls <host>').option('--type <type>', 'service, timer, socket…').option('--pattern <glob>').option('--json').action(act(async (c, id, o: { type?: string; pattern?: string; json?: boolean }) => {
    const r = await c.call<{ units: { unit: string; load: string; active: string; sub: string; description: string }[] }>('GET', `${base(id)}/units${qs({ type: o.type, pattern: o.pattern })}`);
    out(Boolean(o.json), r, () => table(['UNIT', 'LOAD', 'ACTIVE', 'SUB', 'DESCRIPTION'], r.units.map((u) => [u.unit, u.load, u.active, u.sub, u.description])));
  }));
  s.command('status <host> <unit>').option('--json').action(act(async (c, id, unit: string, o: { json?: boolean }) => {
    const r = await c.call<{ properties: Record<string, string> }>('GET', `${base(id)}/units/${enc(unit)}`);
    out(Boolean(o.json), r, () => Object.entries(r.properties).map(([k, v]) => `${k}=${v}`).join('\n'));
  }));
  for (const a of ['start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask'] as const) {
    s.command(`${a} <host> <unit>`).option('--now', 'enable/disable/mask: start/stop it too').option('--json').action(act(async (c, id, unit: string, o: { now?: boolean; json?: boolean }) => {
      const r = await c.call('POST', `${base(id)}/units/${enc(unit)}/${a}${qs({ now: o.now })}`);
      out(Boolean(o.json), r, () => `${a}: ${unit}`);
    }));
  }
  s.command('daemon-reload <host>').action(act(async (c, id) => void (await c.call('POST', `${base(id)}/daemon-reload`))));
  s.command('journal <host> <unit>').option('-n, --lines <n>').option('--since <iso>', 'a time, e.g. 2026-08-01T10:00Z').option('-f, --follow').option('--json').action(act(async (c, id, unit: string, o: { lines?: string; since?: string; follow?: boolean; json?: boolean }) => {
    const since = o.since ? Date.parse(o.since) : undefined;
    if (o.since && !Number.isFinite(since)) throw new Error(`--since: not a time: ${o.since}`);
    const q = { lines: o.lines, since };
    if (o.follow) return follow(c, `${base(id)}/units/${enc(unit)}/journal${qs({ ...q, follow: true })}`);
    const r = await c.call<{ entries: { ts: number; message: string; identifier?: string; pid?: number }[] }>('GET', `${base(id)}/units/${enc(unit)}/journal${qs(q)}`);
    out(Boolean(o.json), r, () => r.entries.map((e) => `${when(e.ts)} ${e.identifier ?? ''}${e.pid ? `[${e.pid}]` : ''}: ${e.message}`).join('\n'));
  }));
}

interface CronEntryView { id: string; user: string; name: string; schedule: string; command: string; enabled: boolean; nextRuns: number[]; lastRun?: { startedAt: number; exitCode?: number } }

function registerCron(program: Command): void {
  const cr = program.command('cron').description("Tether's entries in a host's crontab (agent capability cron)");
  const base = (id: string) => `/api/v1/hosts/${enc(id)}/cron`;
  const show = (e: CronEntryView) => `${e.id} ${e.enabled ? '' : '(disabled) '}${e.schedule} ${e.command}${e.nextRuns[0] ? `\nnext: ${e.nextRuns.map(when).join(', ')}` : ''}`;
  cr.command('ls <host>').option('-u, --user <user>', 'whose crontab (default root)').option('--json').action(act(async (c, id, o: { user?: string; json?: boolean }) => {
    const r = await c.call<{ entries: CronEntryView[]; untagged: number }>('GET', `${base(id)}${qs({ user: o.user })}`);
    out(Boolean(o.json), r, () => table(['ID', 'NAME', 'SCHEDULE', 'ON', 'NEXT', 'LAST', 'EXIT', 'COMMAND'], r.entries.map((e) => [e.id, e.name, e.schedule, e.enabled ? 'yes' : 'no', when(e.nextRuns[0]), when(e.lastRun?.startedAt), e.lastRun?.exitCode === undefined ? '-' : String(e.lastRun.exitCode), e.command])) + `\n(${r.untagged} other lines not managed by Tether)`);
  }));
  cr.command('add <host> <schedule> <command>').option('-u, --user <user>').option('--name <name>').option('--disabled').option('--json').action(act(async (c, id, schedule: string, command: string, o: { user?: string; name?: string; disabled?: boolean; json?: boolean }) => {
    const r = await c.call<CronEntryView>('POST', `${base(id)}${qs({ user: o.user })}`, { schedule, command, ...(o.name ? { name: o.name } : {}), enabled: !o.disabled });
    out(Boolean(o.json), r, () => show(r));
  }));
  cr.command('set <host> <entry>').option('-u, --user <user>').option('--schedule <s>').option('--command <cmd>').option('--name <name>').option('--enable').option('--disable').option('--json').action(act(async (c, id, entry: string, o: { user?: string; schedule?: string; command?: string; name?: string; enable?: boolean; disable?: boolean; json?: boolean }) => {
    const body = { ...(o.schedule ? { schedule: o.schedule } : {}), ...(o.command ? { command: o.command } : {}), ...(o.name !== undefined ? { name: o.name } : {}), ...(o.enable ? { enabled: true } : o.disable ? { enabled: false } : {}) };
    const r = await c.call<CronEntryView>('PATCH', `${base(id)}/${enc(entry)}${qs({ user: o.user })}`, body);
    out(Boolean(o.json), r, () => show(r));
  }));
  cr.command('rm <host> <entry>').option('-u, --user <user>').action(act(async (c, id, entry: string, o: { user?: string }) => void (await c.call('DELETE', `${base(id)}/${enc(entry)}${qs({ user: o.user })}`))));
  cr.command('runs <host> <entry>').option('-u, --user <user>').option('--json').action(act(async (c, id, entry: string, o: { user?: string; json?: boolean }) => {
    const r = await c.call<{ runs: { startedAt: number; endedAt?: number; exitCode?: number; output: string }[] }>('GET', `${base(id)}/${enc(entry)}/runs${qs({ user: o.user })}`);
    out(Boolean(o.json), r, () => r.runs.map((x) => `--- ${when(x.startedAt)} exit ${x.exitCode ?? '(running)'}\n${x.output}`).join('\n'));
  }));
  cr.command('check <host> <schedule>').description("validate a schedule as the host's cron reads it; show the next runs").option('--json').action(act(async (c, id, schedule: string, o: { json?: boolean }) => {
    const r = await c.call<{ valid: boolean; nextRuns: number[]; message?: string }>('GET', `${base(id)}/validate${qs({ schedule })}`);
    out(Boolean(o.json), r, () => (r.valid ? `valid; next: ${r.nextRuns.map(when).join(', ') || '(at boot)'}` : `invalid: ${r.message}`));
    if (!r.valid) process.exitCode = 1;
  }));
}

interface Proc { pid: number; ppid: number; user: string; state: string; name: string; command: string; cpuPercent?: number; rssBytes: number; listenPorts: number[] }

function registerProcesses(program: Command): void {
  const p = program.command('proc').description('processes and ports on a host (agent capability process)');
  p.command('ls <host>').option('--tree', 'as a tree by parent').option('--json').action(act(async (c, id, o: { tree?: boolean; json?: boolean }) => {
    const r = await c.call<{ processes: Proc[]; total: number }>('GET', `/api/v1/hosts/${enc(id)}/ps`);
    const row = (x: Proc, indent = '') => [String(x.pid), x.user, x.cpuPercent === undefined ? '-' : x.cpuPercent.toFixed(1), bytes(x.rssBytes), x.state, indent + (x.command || x.name), x.listenPorts.join(',')];
    out(Boolean(o.json), r, () => {
      if (!o.tree) return table(['PID', 'USER', 'CPU%', 'RSS', 'S', 'COMMAND', 'LISTEN'], r.processes.map((x) => row(x)));
      const pids = new Set(r.processes.map((x) => x.pid));
      const kids = new Map<number, Proc[]>();
      for (const x of r.processes) (kids.get(pids.has(x.ppid) ? x.ppid : 0) ?? kids.set(pids.has(x.ppid) ? x.ppid : 0, []).get(pids.has(x.ppid) ? x.ppid : 0)!).push(x);
      const rows: string[][] = [];
      const walk = (ppid: number, depth: number) => {
        for (const x of kids.get(ppid) ?? []) {
          rows.push(row(x, depth ? `${'  '.repeat(depth - 1)}└ ` : ''));
          if (depth < 64) walk(x.pid, depth + 1);
        }
      };
      walk(0, 0);
      return table(['PID', 'USER', 'CPU%', 'RSS', 'S', 'COMMAND', 'LISTEN'], rows);
    });
  }));
  p.command('kill <host> <pid>').option('-s, --signal <sig>', 'TERM, KILL, HUP, INT, QUIT, USR1, USR2, STOP or CONT (SIGKILL works too)', 'TERM').action(act(async (c, id, pid: string, o: { signal: string }) => {
    const signal = parseSignal(o.signal);
    await c.call('POST', `/api/v1/hosts/${enc(id)}/ps/${enc(pid)}/signal`, { signal });
  }));
  p.command('ports <host>').option('--port <n>', 'who listens on this port').option('--json').action(act(async (c, id, o: { port?: string; json?: boolean }) => {
    const r = await c.call<{ ports: { proto: string; address: string; port: number; pid?: number; process?: string; user?: string }[] }>('GET', `/api/v1/hosts/${enc(id)}/ports${qs({ port: o.port })}`);
    out(Boolean(o.json), r, () => table(['PROTO', 'ADDRESS', 'PORT', 'PID', 'PROCESS', 'USER'], r.ports.map((x) => [x.proto, x.address, String(x.port), x.pid ? String(x.pid) : '-', x.process ?? '-', x.user ?? '-'])));
  }));
  p.command('env <host> <pid>').description('a process\'s environment ("agent" for the agent\'s own)').option('--json').action(act(async (c, id, pid: string, o: { json?: boolean }) => {
    const r = await c.call<{ env: Record<string, string> }>('GET', pid === 'agent' ? `/api/v1/hosts/${enc(id)}/agent-environ` : `/api/v1/hosts/${enc(id)}/ps/${enc(pid)}/environ`);
    out(Boolean(o.json), r, () => Object.entries(r.env).map(([k, v]) => `${k}=${v}`).join('\n'));
  }));
}

interface PowerStatus { uptimeSec: number; bootTime: number; scheduled?: { action: string; at: number }; hibernate?: { possible: boolean; reason?: string }; suspend?: { possible: boolean; reason?: string } }

function registerPower(program: Command): void {
  const p = program.command('power').description('reboot, power off, hibernate, suspend, schedule (agent capability power)');
  const sleep = (what: string, s: PowerStatus['hibernate']) => (s ? `\n${what}: ${s.possible ? 'possible' : `not possible — ${s.reason ?? 'no reason given'}`}` : '');
  const status = (r: PowerStatus) => `up ${Math.floor(r.uptimeSec / 3600)}h${Math.floor((r.uptimeSec % 3600) / 60)}m since ${when(r.bootTime)}${r.scheduled ? `; ${r.scheduled.action} scheduled at ${when(r.scheduled.at)}` : ''}${sleep('hibernate', r.hibernate)}${sleep('suspend', r.suspend)}`;
  p.command('status <host>').description('uptime, a scheduled shutdown, and whether the host can hibernate or suspend').option('--json').action(act(async (c, id, o: { json?: boolean }) => {
    const r = await c.call<PowerStatus>('GET', `/api/v1/hosts/${enc(id)}/power`);
    out(Boolean(o.json), r, () => status(r));
  }));
  for (const action of ['hibernate', 'suspend'] as const) {
    p.command(`${action} <host>`).description(`${action} now, where \`systemctl can-${action}\` says yes (else refused with the reason)`).option('--yes', 'confirm (required)').option('--json').action(act(async (c, id, o: { yes?: boolean; json?: boolean }) => {
      if (!o.yes) throw new Error(`${action} of ${id}: add --yes to confirm`);
      const r = await c.call('POST', `/api/v1/hosts/${enc(id)}/power`, { action });
      out(Boolean(o.json), r, () => `${action} sent`);
    }));
  }
  for (const action of ['reboot', 'poweroff'] as const) {
    p.command(`${action} <host>`).option('--in <minutes>', 'schedule it (shutdown +N) instead of now').option('-m, --message <text>').option('--yes', 'confirm (required)').option('--json').action(act(async (c, id, o: { in?: string; message?: string; yes?: boolean; json?: boolean }) => {
      if (!o.yes) throw new Error(`${action} of ${id}: add --yes to confirm`);
      if (o.in) {
        const r = await c.call<{ uptimeSec: number; bootTime: number; scheduled?: { action: string; at: number } }>('POST', `/api/v1/hosts/${enc(id)}/power/schedule`, { action, minutes: Number(o.in), ...(o.message ? { message: o.message } : {}) });
        return out(Boolean(o.json), r, () => status(r));
      }
      const r = await c.call('POST', `/api/v1/hosts/${enc(id)}/power`, { action });
      out(Boolean(o.json), r, () => `${action} sent`);
    }));
  }
  p.command('cancel <host>').option('--json').action(act(async (c, id, o: { json?: boolean }) => {
    const r = await c.call<{ uptimeSec: number; bootTime: number }>('DELETE', `/api/v1/hosts/${enc(id)}/power/schedule`);
    out(Boolean(o.json), r, () => status(r));
  }));
}

interface HostsEntry { ip: string; names: string[]; comment?: string }

function registerHostsFile(program: Command): void {
  const h = program.command('hosts-file').description("a host's /etc/hosts (agent capability files)");
  const get = (c: Client, id: string) => c.call<{ entries: HostsEntry[]; content: string; sha256: string }>('GET', `/api/v1/hosts/${enc(id)}/hosts-file`);
  const put = (c: Client, id: string, entries: HostsEntry[], sha: string) => c.call<{ backup: string }>('PUT', `/api/v1/hosts/${enc(id)}/hosts-file`, { entries, expectSha256: sha });
  h.command('show <host>').option('--json').action(act(async (c, id, o: { json?: boolean }) => {
    const r = await get(c, id);
    out(Boolean(o.json), r, () => r.content.trimEnd());
  }));
  h.command('add <host> <ip> <names...>').option('--comment <text>').action(act(async (c, id, ip: string, names: string[], o: { comment?: string }) => {
    const r = await get(c, id);
    const w = await put(c, id, [...r.entries, { ip, names, ...(o.comment ? { comment: o.comment } : {}) }], r.sha256);
    process.stderr.write(`written; previous file kept at ${w.backup}\n`);
  }));
  h.command('rm <host> <ipOrName>').action(act(async (c, id, key: string) => {
    const r = await get(c, id);
    const entries = r.entries.map((e) => (e.ip === key ? undefined : { ...e, names: e.names.filter((n) => n !== key) })).filter((e): e is HostsEntry => Boolean(e && e.names.length));
    if (entries.length === r.entries.length && entries.every((e, i) => e.names.length === r.entries[i]!.names.length)) throw new Error(`${key} is not in the hosts file`);
    const w = await put(c, id, entries, r.sha256);
    process.stderr.write(`written; previous file kept at ${w.backup}\n`);
  }));
}

export function registerManagers(program: Command): void {
  registerDocker(program);
  registerSystemd(program);
  registerCron(program);
  registerProcesses(program);
  registerPower(program);
  registerHostsFile(program);
}
