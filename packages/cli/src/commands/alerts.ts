/**
 * `tether alert`, `tether rule`, `tether channel`, `tether silence`: alerts and what makes them.
 */
import type { Command } from 'commander';
import { parseDurationSec } from '@tether/protocol/lite';
import { Client } from '../client.js';
import { fail, out } from '../output.js';
import { ago, table } from '../table.js';

interface AlertV {
  id: string;
  ruleName: string;
  severity: string;
  hostId: string;
  hostname: string;
  subject: string;
  state: string;
  value: number | null;
  peak: number | null;
  op: string;
  threshold: number;
  startedAt: number;
  firedAt: number | null;
  endedAt: number | null;
  silenced: boolean;
  flapping: boolean;
}
interface RuleV {
  id: string;
  name: string;
  kind: string;
  metric: string | null;
  anomaly: string | null;
  op: string;
  threshold: number;
  forSec: number;
  severity: string;
  enabled: boolean;
  preset: string | null;
  scope: { hosts?: string[]; selector?: string; exclude?: string[] };
  channels: string[];
}
interface ChannelV {
  id: string;
  name: string;
  type: string;
  enabled: boolean;
  config: Record<string, unknown>;
  secret: Record<string, { set: boolean }>;
}
interface SilenceV {
  id: string;
  ruleId: string | null;
  hostId: string | null;
  selector: string | null;
  endsAt: number;
  reason: string;
  createdBy: string;
  active: boolean;
}

const num = (v: number | null) => (v === null ? '-' : Number(v.toFixed(2)).toString());
const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'));
const run = (fn: (c: Client) => Promise<void>) => async () => {
  try {
    await fn(Client.fromState());
  } catch (err) {
    fail(err);
  }
};
const q = (o: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};
const duration = (s: string, what: string) => {
  const v = parseDurationSec(s);
  if (v === undefined || !Number.isFinite(v)) throw new Error(`${what}: expected a duration such as 30s, 5m or 2h, got ${JSON.stringify(s)}`);
  return v;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

function alertRows(list: AlertV[]): string {
  return table(
    ['ID', 'STATE', 'SEVERITY', 'RULE', 'HOST', 'SUBJECT', 'VALUE', 'PEAK', 'SINCE', 'ENDED'],
    list.map((a) => [a.id, a.state + (a.silenced ? ' (silenced)' : '') + (a.flapping ? ' (flapping)' : ''), a.severity, a.ruleName, a.hostname || a.hostId || '-', a.subject || '-', `${num(a.value)} ${a.op} ${num(a.threshold)}`, num(a.peak), ago(a.startedAt), a.endedAt ? when(a.endedAt) : '-']),
  );
}

export function registerAlerts(program: Command): void {
  const alert = program.command('alert').description('alerts: what is pending or firing now, and what fired before');
  alert
    .command('ls')
    .description('pending and firing alerts')
    .option('--rule <id>', 'only this rule')
    .option('--host <id>', 'only this host')
    .option('--json', 'print JSON')
    .action((o: { rule?: string; host?: string; json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ alerts: AlertV[] }>('GET', `/api/v1/alerts${q({ rule: o.rule, host: o.host })}`);
        out(Boolean(o.json), r.alerts, () => (r.alerts.length ? alertRows(r.alerts) : 'no alerts pending or firing'));
      })(),
    );
  alert
    .command('history')
    .description('alerts that fired, with start, end and peak, newest first')
    .option('--rule <id>', 'only this rule')
    .option('--host <id>', 'only this host')
    .option('--state <state>', 'firing or resolved')
    .option('--from <time>', 'e.g. -24h, ISO 8601 or epoch ms', '-7d')
    .option('--to <time>', 'default now')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .action((o: { rule?: string; host?: string; state?: string; from?: string; to?: string; limit: string; json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ alerts: AlertV[] }>('GET', `/api/v1/alerts/history${q({ rule: o.rule, host: o.host, state: o.state, from: o.from, to: o.to, limit: o.limit })}`);
        out(Boolean(o.json), r.alerts, () => (r.alerts.length ? alertRows(r.alerts) : 'no alerts in this range'));
      })(),
    );

  const rule = program.command('rule').description('alert rules');
  rule
    .command('ls')
    .description('rules, presets included')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ rules: RuleV[] }>('GET', '/api/v1/alerts/rules');
        out(Boolean(o.json), r.rules, () =>
          table(
            ['ID', 'NAME', 'WATCHES', 'CONDITION', 'FOR', 'SEVERITY', 'ENABLED', 'SCOPE'],
            r.rules.map((x) => [x.id, x.name, x.metric ?? x.anomaly ?? '', `${x.op} ${x.threshold}`, `${x.forSec}s`, x.severity, x.enabled ? 'yes' : 'no', [x.scope.hosts?.join(',') ?? '', x.scope.selector ?? '', x.scope.exclude?.length ? `not ${x.scope.exclude.join(',')}` : ''].filter(Boolean).join(' ') || 'all hosts']),
          ),
        );
      })(),
    );
  rule
    .command('add')
    .description('add a rule: --metric SERIES --op > --threshold N, or --anomaly TYPE (host_offline, clock_skew, cert_expiry, …)')
    .requiredOption('--name <name>', 'what the alert is called')
    .option('--metric <series>', 'cpu_percent|busy, fs_used_percent (every mount), fs_used_percent|/var, memory_used_percent…')
    .option('--anomaly <type>', 'host_offline, clock_skew, cert_expiry, container_restart_loop, container_oom, container_unhealthy, systemd_unit_failed')
    .option('--op <op>', '> >= < <= == !=', '>')
    .option('--threshold <n>', 'the value compared with')
    .option('--for <duration>', 'how long the condition must hold', '5m')
    .option('--resolve-for <duration>', 'how long it must stay clear before resolving (default: --for, at most 5m)')
    .option('--avg', 'compare the average over --for instead of every sample')
    .option('--severity <s>', 'info, warning or critical', 'warning')
    .option('-s, --selector <selector>', 'hosts whose labels match, e.g. env=prod')
    .option('--host <id>', 'a host (repeatable)', collect)
    .option('--exclude <id>', 'leave a host out (repeatable)', collect)
    .option('--channel <id>', 'send to this channel (repeatable; default: every channel)', collect)
    .option('--group <duration>', 'gather notifications this long into one message', '60s')
    .option('--param <key=value>', 'anomaly parameters: endpoint=host:443, windowSec=600 (repeatable)', collect)
    .option('--disabled', 'create it switched off')
    .option('--json', 'print JSON')
    .action((o: { name: string; metric?: string; anomaly?: string; op: string; threshold?: string; for: string; resolveFor?: string; avg?: boolean; severity: string; selector?: string; host?: string[]; exclude?: string[]; channel?: string[]; group: string; param?: string[]; disabled?: boolean; json?: boolean }) =>
      run(async (c) => {
        if (!o.metric === !o.anomaly) throw new Error('give either --metric or --anomaly');
        const params: Record<string, string | number> = {};
        for (const p of o.param ?? []) {
          const i = p.indexOf('=');
          if (i < 1) throw new Error(`--param takes key=value, got ${JSON.stringify(p)}`);
          const v = p.slice(i + 1);
          params[p.slice(0, i)] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
        }
        const body = {
          name: o.name,
          ...(o.metric ? { kind: 'metric', metric: o.metric, op: o.op } : { kind: 'anomaly', anomaly: o.anomaly }),
          ...(o.threshold !== undefined ? { threshold: Number(o.threshold) } : {}),
          forSec: duration(o.for, '--for'),
          ...(o.resolveFor ? { resolveForSec: duration(o.resolveFor, '--resolve-for') } : {}),
          aggregate: o.avg ? 'avg' : 'all',
          severity: o.severity,
          scope: { ...(o.selector ? { selector: o.selector } : {}), ...(o.host?.length ? { hosts: o.host } : {}), ...(o.exclude?.length ? { exclude: o.exclude } : {}) },
          channels: o.channel ?? [],
          groupWindowSec: duration(o.group, '--group'),
          params,
          enabled: !o.disabled,
        };
        const r = await c.call<RuleV>('POST', '/api/v1/alerts/rules', body);
        out(Boolean(o.json), r, () => `rule ${r.id} added`);
      })(),
    );
  for (const [name, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    rule
      .command(`${name} <id>`)
      .description(`${name} a rule${enabled ? '' : ' (its alerts end)'}`)
      .option('--json', 'print JSON')
      .action((id: string, o: { json?: boolean }) =>
        run(async (c) => {
          const r = await c.call<RuleV>('PATCH', `/api/v1/alerts/rules/${encodeURIComponent(id)}`, { enabled });
          out(Boolean(o.json), r, () => `rule ${r.id} ${enabled ? 'enabled' : 'disabled'}`);
        })(),
      );
  }
  rule
    .command('rm <id>')
    .description('delete a rule (its alerts end)')
    .option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ ok: boolean }>('DELETE', `/api/v1/alerts/rules/${encodeURIComponent(id)}`);
        out(Boolean(o.json), r, () => `rule ${id} deleted`);
      })(),
    );
  rule
    .command('reset-presets')
    .description('put the preset rules back as shipped (other rules are untouched)')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ rules: RuleV[] }>('POST', '/api/v1/alerts/rules/reset-presets');
        out(Boolean(o.json), r.rules, () => `${r.rules.length} presets reset: ${r.rules.map((x) => x.name).join(', ')}`);
      })(),
    );

  const channel = program.command('channel').description('notification channels');
  channel
    .command('ls')
    .description('channels (secrets show only whether they are set)')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ channels: ChannelV[] }>('GET', '/api/v1/alerts/channels');
        out(Boolean(o.json), r.channels, () =>
          table(
            ['ID', 'NAME', 'TYPE', 'ENABLED', 'TARGET', 'SECRETS SET'],
            r.channels.map((x) => [x.id, x.name, x.type, x.enabled ? 'yes' : 'no', String(x.config.url ?? (Array.isArray(x.config.to) ? x.config.to.join(',') : '-')), Object.entries(x.secret).filter(([, v]) => v.set).map(([k]) => k).join(',') || '-']),
          ),
        );
      })(),
    );
  channel
    .command('add <type>')
    .description('add a channel: webhook, slack, email, dingtalk or feishu. Secrets come from the environment, never from arguments: TETHER_CHANNEL_URL (slack, dingtalk, feishu), TETHER_CHANNEL_SECRET (webhook HMAC key, DingTalk/Feishu signing secret), TETHER_SMTP_PASSWORD')
    .requiredOption('--name <name>', 'channel name')
    .option('--url <url>', 'webhook: where to POST')
    .option('--header <name=value>', 'webhook: extra header (repeatable; kept secret)', collect)
    .option('--smtp-host <host>', 'email: SMTP server')
    .option('--smtp-port <port>', 'email: port (default 587, or 465 with --tls tls)')
    .option('--tls <mode>', 'email: starttls (default), tls or none')
    .option('--no-tls-verify', 'email: accept any server certificate')
    .option('--from <address>', 'email: sender')
    .option('--to <address>', 'email: recipient (repeatable)', collect)
    .option('--username <user>', 'email: SMTP login (password from TETHER_SMTP_PASSWORD)')
    .option('--min-severity <s>', 'only rules of this severity or higher')
    .option('--json', 'print JSON')
    .action((type: string, o: { name: string; url?: string; header?: string[]; smtpHost?: string; smtpPort?: string; tls?: string; tlsVerify: boolean; from?: string; to?: string[]; username?: string; minSeverity?: string; json?: boolean }) =>
      run(async (c) => {
        const env = process.env;
        const config: Record<string, unknown> = o.minSeverity ? { minSeverity: o.minSeverity } : {};
        const secret: Record<string, unknown> = {};
        if (type === 'webhook') {
          config.url = o.url;
          if (env.TETHER_CHANNEL_SECRET) secret.hmacKey = env.TETHER_CHANNEL_SECRET;
          if (o.header?.length) {
            const h: Record<string, string> = {};
            for (const x of o.header) {
              const i = x.indexOf('=');
              if (i < 1) throw new Error(`--header takes name=value, got ${JSON.stringify(x)}`);
              h[x.slice(0, i)] = x.slice(i + 1);
            }
            secret.headers = h;
          }
        } else if (type === 'email') {
          Object.assign(config, { host: o.smtpHost, from: o.from, to: o.to ?? [], ...(o.smtpPort ? { port: Number(o.smtpPort) } : {}), ...(o.tls ? { tls: o.tls } : {}), ...(o.tlsVerify === false ? { tlsVerify: false } : {}), ...(o.username ? { username: o.username } : {}) });
          if (env.TETHER_SMTP_PASSWORD) secret.password = env.TETHER_SMTP_PASSWORD;
        } else {
          if (!env.TETHER_CHANNEL_URL) throw new Error(`a ${type} channel’s URL carries its token: set TETHER_CHANNEL_URL`);
          secret.url = env.TETHER_CHANNEL_URL;
          if (env.TETHER_CHANNEL_SECRET) secret.signSecret = env.TETHER_CHANNEL_SECRET;
        }
        const r = await c.call<ChannelV>('POST', '/api/v1/alerts/channels', { name: o.name, type, config, secret });
        out(Boolean(o.json), r, () => `channel ${r.id} added`);
      })(),
    );
  channel
    .command('test <id>')
    .description('send a test notification now and say how it went')
    .option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ status: string; lastError: string | null; responseStatus: number | null }>('POST', `/api/v1/alerts/channels/${encodeURIComponent(id)}/test`);
        out(Boolean(o.json), r, () => (r.status === 'ok' ? `delivered${r.responseStatus ? ` (${r.responseStatus})` : ''}` : `failed: ${r.lastError}`));
        if (r.status !== 'ok') process.exitCode = 1;
      })(),
    );
  channel
    .command('rm <id>')
    .description('delete a channel no rule sends to')
    .option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ ok: boolean }>('DELETE', `/api/v1/alerts/channels/${encodeURIComponent(id)}`);
        out(Boolean(o.json), r, () => `channel ${id} deleted`);
      })(),
    );

  const silence = program.command('silence').description('silences: hold back notifications for a rule, host or labels until a time');
  silence
    .command('ls')
    .description('silences, current and past')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ silences: SilenceV[] }>('GET', '/api/v1/alerts/silences');
        out(Boolean(o.json), r.silences, () => table(['ID', 'ACTIVE', 'RULE', 'HOST', 'SELECTOR', 'ENDS', 'BY', 'REASON'], r.silences.map((s) => [s.id, s.active ? 'yes' : 'no', s.ruleId ?? '-', s.hostId ?? '-', s.selector ?? '-', when(s.endsAt), s.createdBy, s.reason])));
      })(),
    );
  silence
    .command('add')
    .description('add a silence (at least one of --rule, --host, --selector)')
    .option('--rule <id>', 'this rule')
    .option('--host <id>', 'this host')
    .option('-s, --selector <selector>', 'hosts whose labels match')
    .requiredOption('--for <duration>', 'how long, e.g. 2h')
    .requiredOption('--reason <text>', 'why (shown to others)')
    .option('--json', 'print JSON')
    .action((o: { rule?: string; host?: string; selector?: string; for: string; reason: string; json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<SilenceV>('POST', '/api/v1/alerts/silences', { ...(o.rule ? { ruleId: o.rule } : {}), ...(o.host ? { hostId: o.host } : {}), ...(o.selector ? { selector: o.selector } : {}), durationSec: duration(o.for, '--for'), reason: o.reason });
        out(Boolean(o.json), r, () => `silence ${r.id} until ${when(r.endsAt)}`);
      })(),
    );
  silence
    .command('rm <id>')
    .description('end a silence')
    .option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) =>
      run(async (c) => {
        const r = await c.call<{ ok: boolean }>('DELETE', `/api/v1/alerts/silences/${encodeURIComponent(id)}`);
        out(Boolean(o.json), r, () => `silence ${id} ended`);
      })(),
    );
}
