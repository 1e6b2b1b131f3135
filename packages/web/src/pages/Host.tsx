import { useEffect, useMemo, useRef, useState } from 'react';
import { get, post, qs, type Host, type Me, type Task } from '../api';
import { useI18n, type I18n, type Key } from '../i18n';
import { live } from '../live';
import { go, href, type HostTab } from '../router';
import { Chart } from '../Chart';
import { Boundary, CommandText, Empty, ErrorBox, Labels, Loading, View, useAsync, useConfirm } from '../ui';
import { olderVersion } from '../fleet';
import { ManagerPanel, managerTabs } from './managers';
import { ProcessTab, PortsList } from './managers/Processes';

type Range = 'live' | '1h' | '24h' | '7d' | '30d' | 'custom';
const RANGES: Range[] = ['live', '1h', '24h', '7d', '30d', 'custom'];
const LIVE_WINDOW_MS = 15 * 60_000;
const FAMILIES = ['cpu_percent', 'cpu_core_busy_percent', 'load1', 'load5', 'load15', 'memory_bytes', 'swap_bytes', 'fs_used_percent', 'disk_read_bytes_per_second', 'disk_write_bytes_per_second', 'net_rx_bytes_per_second', 'net_tx_bytes_per_second'];

/** Columns of values by series key, aligned on one time axis (seconds). */
class Table {
  xs: number[] = [];
  cols = new Map<string, (number | null)[]>();

  static fromQuery(series: { key: string; points: [number, number, number, number][] }[]): Table {
    const t = new Table();
    const times = new Set<number>();
    for (const s of series) for (const p of s.points) times.add(p[0]);
    const xs = [...times].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    t.xs = xs.map((x) => x / 1000);
    for (const s of series) {
      const col: (number | null)[] = new Array(xs.length).fill(null);
      for (const p of s.points) col[at.get(p[0])!] = p[1];
      t.cols.set(s.key, col);
    }
    return t;
  }

  /** A new table with one live sample appended and anything older than the window dropped. */
  append(ts: number, values: Record<string, number>, windowMs: number): Table {
    const t = new Table();
    const cut = (ts - windowMs) / 1000;
    let start = 0;
    while (start < this.xs.length && this.xs[start]! < cut) start++;
    if (this.xs.length && ts / 1000 <= this.xs[this.xs.length - 1]!) return this;
    t.xs = [...this.xs.slice(start), ts / 1000];
    const n = t.xs.length;
    for (const [k, col] of this.cols) t.cols.set(k, [...col.slice(start), values[k] ?? null]);
    for (const k in values) {
      if (t.cols.has(k) || !FAMILIES.some((f) => k === f || k.startsWith(f + '|'))) continue;
      const col: (number | null)[] = new Array(n).fill(null);
      col[n - 1] = values[k]!;
      t.cols.set(k, col);
    }
    return t;
  }

  keys(family: string): string[] {
    return [...this.cols.keys()].filter((k) => k === family || k.startsWith(family + '|')).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  }
}

/** A host's page; `tab` comes from the URL (#/hosts/ID/TAB), so reload and back keep it. */
export function HostPage({ id, me, tab: asked }: { id: string; me: Me; tab?: string }) {
  const i = useI18n();
  const { t } = i;
  const host = useAsync(() => get<Host>(`/api/v1/hosts/${encodeURIComponent(id)}`), [id]);
  const [online, setOnline] = useState<boolean | undefined>();
  const [bump, setBump] = useState<Record<string, number>>({});

  // Status changes and the kinds of reports that refresh the tabs (lists are fetched when a report says they changed).
  useEffect(
    () =>
      live.subscribe([id], (e) => {
        if (e.type === 'status') setOnline(e.online);
        else {
          setOnline(true);
          if (e.kind !== 'usage') setBump((b) => ({ ...b, [e.kind]: e.ts }));
        }
      }),
    [id],
  );

  return (
    <View a={host}>
      {(h) => {
        const isOnline = online ?? h.online;
        const caps = new Set(h.capabilities);
        const canAct = me.role !== 'viewer';
        const tabs: [HostTab, Key][] = [
          ['charts', 'host.tab.charts'],
          ['processes', 'host.tab.processes'],
          ['connections', 'host.tab.connections'],
          ['hardware', 'host.tab.hardware'],
          ['sensors', 'host.tab.sensors'],
          ['runs', 'host.tab.runs'],
          ...managerTabs(h, me),
        ];
        const tab: HostTab = tabs.find(([k]) => k === asked)?.[0] ?? 'charts';
        return (
          <section aria-labelledby="host-title">
            <div className="page-head">
              <h1 id="host-title">
                <span className={'dot ' + (isOnline ? 'on' : 'off')} aria-hidden="true" /> {h.hostname}
              </h1>
              <span className={isOnline ? 'on' : 'off'} data-testid="host-status">
                {isOnline ? t('status.online') : t('status.offline')}
              </span>
              <div className="actions">
                {canAct && caps.has('exec') && (
                  <a className="button" href={href('/exec?hosts=' + encodeURIComponent(h.id))}>
                    {t('host.runCommand')}
                  </a>
                )}
                {canAct && caps.has('terminal') && (
                  <a className="button" href={href(`/hosts/${h.id}/terminal`)}>
                    {t('host.terminal')}
                  </a>
                )}
                {canAct && caps.has('files') && (
                  <a className="button" href={href(`/hosts/${h.id}/files`)}>
                    {t('host.files')}
                  </a>
                )}
                {me.role === 'admin' && <AgentUpgrade h={h} />}
              </div>
            </div>
            <Facts h={h} />
            <div role="tablist" aria-label={t('host.sections')} className="tabs">
              {tabs.map(([k, label]) => (
                <button key={k} type="button" role="tab" id={'tab-' + k} aria-selected={tab === k} aria-controls={'panel-' + k} onClick={() => go(`/hosts/${encodeURIComponent(h.id)}` + (k === 'charts' ? '' : '/' + k))}>
                  {t(label)}
                </button>
              ))}
            </div>
            <div role="tabpanel" id={'panel-' + tab} aria-labelledby={'tab-' + tab}>
              <Boundary resetKey={tab}>
              {tab === 'charts' && <Charts id={h.id} />}
              {tab === 'processes' && <Processes h={h} me={me} bump={bump.processes} />}
              {tab === 'connections' && <Connections h={h} bump={bump.connections} />}
              {tab === 'hardware' && <Hardware id={h.id} />}
              {tab === 'sensors' && <Sensors id={h.id} bump={bump.sensors} />}
              {tab === 'runs' && <Runs id={h.id} />}
              <ManagerPanel tab={tab} h={h} me={me} />
              </Boundary>
            </div>
          </section>
        );
      }}
    </View>
  );
}

/**
 * Upgrades this host's agent to the newest build the hub holds (tether agent upgrade), shown when the
 * agent is older and its own config allows upgrades (auto_update); the job page follows it.
 */
function AgentUpgrade({ h }: { h: Host }) {
  const { t } = useI18n();
  const confirm = useConfirm();
  const [err, setErr] = useState<unknown>();
  const latest = useAsync(() => get<{ latest: string | null }>('/api/v1/agent-artifacts').then((r) => r.latest), []);
  const to = latest.data;
  if (!to || !olderVersion(h.agentVersion, to) || !h.facts.access?.autoUpdate) return null;
  return (
    <>
      <button
        type="button"
        data-testid="agent-upgrade"
        onClick={async () => {
          if (!(await confirm(t('host.upgradeConfirm', { host: h.hostname, from: h.agentVersion, to }), { okLabel: t('host.upgrade', { version: to }) }))) return;
          try {
            const r = await post<{ job: { id: string } }>('/api/v1/agents/upgrade', { target: { hosts: [h.id] }, version: to });
            go('/jobs/' + r.job.id);
          } catch (e) {
            setErr(e);
          }
        }}
      >
        {t('host.upgrade', { version: to })}
      </button>
      {err !== undefined && <ErrorBox error={err} />}
    </>
  );
}

function Facts({ h }: { h: Host }) {
  const i = useI18n();
  const { t } = i;
  const f = h.facts;
  const rows: [Key, React.ReactNode][] = [
    ['host.os', f.os.pretty || f.os.name],
    ['host.kernel', f.kernel],
    ['host.arch', f.arch],
    ['host.cpu', `${f.cpu.model} · ${t('host.cores', { n: f.cpu.logicalCores })}`],
    ['host.memory', i.bytes(f.memoryBytes)],
    ['host.addresses', f.ips.join(', ') || '—'],
    ['host.macs', f.macs.join(', ') || '—'],
    ['host.boot', f.bootTime ? `${i.date(f.bootTime)} (${i.duration((Date.now() - f.bootTime) / 1000)})` : '—'],
    ['host.agent', h.agentVersion],
    ['host.lastSeen', h.online ? t('status.online') : i.ago(h.lastSeen)],
    ['host.labels', Object.keys(h.labels).length ? <Labels labels={h.labels} /> : '—'],
    [
      'host.capabilities',
      <span className="labels" data-testid="capabilities">
        {h.capabilities.map((c) => (
          <span key={c} className="chip">
            {i.tk('cap.' + c, c)}
          </span>
        ))}
      </span>,
    ],
  ];
  return (
    <dl className="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{t(k)}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

const toLocalInput = (ms: number) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

function Charts({ id }: { id: string }) {
  const i = useI18n();
  const { t } = i;
  const [range, setRange] = useState<Range>('live');
  const [custom, setCustom] = useState(() => ({ from: toLocalInput(Date.now() - 6 * 3600_000), to: toLocalInput(Date.now()) }));
  const [table, setTable] = useState<Table>();
  const [tier, setTier] = useState('');
  const [error, setError] = useState<unknown>();
  const [pickedAt, setPickedAt] = useState<number>();
  /** the span the charts show (seconds), the whole of the range picked; live: the last 15 minutes */
  const [span, setSpan] = useState<[number, number]>();
  const tableRef = useRef<Table>(undefined);

  useEffect(() => {
    let gone = false;
    let off: (() => void) | undefined;
    setTable(undefined);
    setError(undefined);
    const ms = { live: LIVE_WINDOW_MS, '1h': 3600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000, custom: 0 }[range];
    const now = Date.now();
    const [from, to] = range === 'custom' ? [new Date(custom.from).getTime(), new Date(custom.to).getTime()] : [now - ms, now];
    setSpan([from / 1000, to / 1000]);
    const q = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), ...(range === 'live' ? { tier: 'raw' } : {}) };
    // Live: samples pushed while the history loads are kept and appended after it.
    const early: { ts: number; series: Record<string, number> }[] = [];
    if (range === 'live')
      off = live.subscribe(
        [id],
        (e) => {
          if (e.type !== 'sample') return;
          if (!tableRef.current) return void early.push(e);
          tableRef.current = tableRef.current.append(e.ts, e.series, LIVE_WINDOW_MS);
          setTable(tableRef.current);
          setSpan([(e.ts - LIVE_WINDOW_MS) / 1000, e.ts / 1000]);
        },
        ['usage'],
      );
    get<{ tier: string; series: { key: string; points: [number, number, number, number][] }[] }>('/api/v1/metrics/query' + qs({ host: id, metrics: FAMILIES.join(','), ...q }))
      .then((r) => {
        if (gone) return;
        let tb = Table.fromQuery(r.series);
        for (const e of early) tb = tb.append(e.ts, e.series, LIVE_WINDOW_MS);
        tableRef.current = tb;
        setTier(r.tier);
        setTable(tb);
      })
      .catch((e) => !gone && setError(e));
    return () => {
      gone = true;
      tableRef.current = undefined;
      off?.();
    };
  }, [id, range, range === 'custom' ? custom.from + custom.to : '']);

  const charts = useMemo(() => {
    if (!table) return [];
    const pick = (keys: string[], label: (k: string) => string) => keys.map((k) => ({ label: label(k), values: table.cols.get(k)! }));
    const dim = (k: string) => k.slice(k.indexOf('|') + 1);
    const cpuModes = ['busy', 'user', 'system', 'iowait', 'steal'].map((m) => 'cpu_percent|' + m).filter((k) => table.cols.has(k));
    const mem = ['used', 'cached', 'buffers', 'available'].map((m) => 'memory_bytes|' + m).filter((k) => table.cols.has(k));
    const net = [...table.keys('net_rx_bytes_per_second'), ...table.keys('net_tx_bytes_per_second')].filter((k) => !k.endsWith('|lo'));
    const io = [...table.keys('disk_read_bytes_per_second'), ...table.keys('disk_write_bytes_per_second')];
    return [
      { id: 'cpu', title: t('chart.cpu'), series: pick(cpuModes, (k) => i.tk('cpu.' + dim(k), dim(k))), fmt: (v: number) => i.pct(v), yMax: 100 },
      { id: 'cores', title: t('chart.cores'), series: pick(table.keys('cpu_core_busy_percent'), (k) => t('chart.core', { n: dim(k) })), fmt: (v: number) => i.pct(v), yMax: 100 },
      { id: 'load', title: t('chart.load'), series: pick(['load1', 'load5', 'load15'].filter((k) => table.cols.has(k)), (k) => t('chart.loadMin', { n: k.replace('load', '') })), fmt: (v: number) => i.num(v, 2) },
      { id: 'memory', title: t('chart.memory'), series: pick(mem, (k) => i.tk('mem.' + dim(k), dim(k))), fmt: (v: number, d?: number) => i.bytes(v, d), binary: true },
      { id: 'swap', title: t('chart.swap'), series: pick(['swap_bytes|used'].filter((k) => table.cols.has(k)), () => t('mem.used')), fmt: (v: number, d?: number) => i.bytes(v, d), binary: true },
      { id: 'disk', title: t('chart.disk'), series: pick(table.keys('fs_used_percent'), dim), fmt: (v: number) => i.pct(v), yMax: 100 },
      { id: 'io', title: t('chart.io'), series: pick(io, (k) => (k.startsWith('disk_read') ? '↓ ' : '↑ ') + dim(k)), fmt: (v: number, d?: number) => i.rate(v, d), binary: true },
      { id: 'net', title: t('chart.net'), series: pick(net, (k) => (k.startsWith('net_rx') ? '↓ ' : '↑ ') + dim(k)), fmt: (v: number, d?: number) => i.rate(v, d), binary: true },
    ].filter((c) => c.series.length > 0);
  }, [table, i]);

  return (
    <div>
      <div className="row wrap">
        <div role="radiogroup" aria-label={t('range.label')} className="seg">
          {RANGES.map((r) => (
            <button key={r} type="button" role="radio" aria-checked={range === r} onClick={() => setRange(r)}>
              {t(('range.' + r) as Key)}
            </button>
          ))}
        </div>
        {range === 'custom' && (
          <>
            <label className="inline">
              {t('range.from')} <input type="datetime-local" value={custom.from} onChange={(e) => setCustom((c) => ({ ...c, from: e.target.value }))} />
            </label>
            <label className="inline">
              {t('range.to')} <input type="datetime-local" value={custom.to} onChange={(e) => setCustom((c) => ({ ...c, to: e.target.value }))} />
            </label>
          </>
        )}
        {tier && <span className="muted" data-testid="tier">{t('range.tier', { tier: i.tk('tier.' + tier, tier) })}</span>}
        <span className="muted">{t('chart.clickHint')}</span>
      </div>
      {error !== undefined && <ErrorBox error={error} />}
      {!table && error === undefined && <Loading />}
      {table && table.xs.length === 0 && range !== 'live' && <Empty>{t('chart.noData')}</Empty>}
      {table && (
        <div className="charts">
          {charts.map((c) => (
            <Chart key={c.id + i.lang} title={c.title} xs={table.xs} series={c.series} fmt={c.fmt} locale={i.locale} timeLabel={i.t('chart.time')} onPick={setPickedAt} name={c.id} {...(c.yMax !== undefined ? { yMax: c.yMax } : {})} {...(c.binary ? { binary: true } : {})} {...(span ? { xRange: span } : {})} />
          ))}
        </div>
      )}
      {pickedAt !== undefined && <TopAt id={id} at={pickedAt} onClose={() => setPickedAt(undefined)} />}
    </div>
  );
}

interface TopEntry {
  pid: number;
  name: string;
  user: string;
  command: string;
  cpuPercent: number;
  rssBytes: number;
  memPercent: number;
}

/** "What was using the CPU at this time": the per-minute top processes nearest the moment. */
function TopAt({ id, at, onClose }: { id: string; at: number; onClose?: () => void }) {
  const i = useI18n();
  const { t } = i;
  const top = useAsync(() => get<{ ts: number; byCpu: TopEntry[]; byMem: TopEntry[] }>(`/api/v1/hosts/${id}/processes` + qs({ at: new Date(at).toISOString() })), [id, at]);
  return (
    <div className="card" data-testid="top-at">
      <div className="row">
        <h3>{t('top.title', { time: i.date(at) })}</h3>
        {onClose && (
          <button type="button" className="small" onClick={onClose}>
            {t('action.close')}
          </button>
        )}
      </div>
      <View a={top}>
        {(d) => (
          <div className="two">
            {(['byCpu', 'byMem'] as const).map((k) => (
              <table key={k} className="table top-table" data-testid={'top-' + k}>
                <caption>{k === 'byCpu' ? t('top.byCpu') : t('top.byMem')} · {i.time(d.ts)}</caption>
                <thead>
                  <tr>
                    <th>{t('proc.name')}</th>
                    <th>{t('proc.command')}</th>
                    <th>{t('proc.user')}</th>
                    <th className="num">{t('proc.cpu')}</th>
                    <th className="num">{t('proc.rss')}</th>
                  </tr>
                </thead>
                <tbody>
                  {d[k].map((p) => (
                    <tr key={p.pid + p.name} data-pid={p.pid}>
                      <td>{p.name} <span className="muted">{p.pid}</span></td>
                      <td className="command-cell"><CommandText text={p.command || p.name} /></td>
                      <td>{p.user}</td>
                      <td className="num">{i.pct(p.cpuPercent)}</td>
                      <td className="num">{i.bytes(p.rssBytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ))}
          </div>
        )}
      </View>
    </div>
  );
}

/**
 * Asks for "what was running at" a moment. It starts at the latest minute the hub has a top list
 * for (the host's last report, not an hour ago, which may be before the host existed).
 */
function TopAsk({ h }: { h: Host }) {
  const { t } = useI18n();
  const [at, setAt] = useState('');
  const [showAt, setShowAt] = useState<number>();
  const [none, setNone] = useState(false);
  useEffect(() => {
    let gone = false;
    const last = h.online ? Date.now() : (h.lastSeen ?? Date.now());
    get<{ ts: number }>(`/api/v1/hosts/${encodeURIComponent(h.id)}/processes` + qs({ at: new Date(last).toISOString() }))
      .then((r) => !gone && setAt(toLocalInput(r.ts)))
      .catch(() => {
        if (gone) return;
        setNone(true);
        setAt(toLocalInput(last));
      });
    return () => {
      gone = true;
    };
  }, [h.id, h.online, h.lastSeen]);
  return (
    <>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          if (at) setShowAt(new Date(at).getTime());
        }}
      >
        <label className="inline">
          {t('top.askAt')} <input type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} data-testid="top-at-input" />
        </label>
        <button type="submit" disabled={!at}>{t('top.show')}</button>
        {none && <span className="muted">{t('top.noHistory')}</span>}
      </form>
      {showAt !== undefined && <TopAt id={h.id} at={showAt} onClose={() => setShowAt(undefined)} />}
    </>
  );
}

interface Proc {
  pid: number;
  user: string;
  name: string;
  command: string;
  state: string;
  cpuPercent?: number;
  rssBytes: number;
  memPercent: number;
  threads: number;
  listenPorts: number[];
}

function useSorted<T>(list: T[], init: keyof T, desc = true) {
  const [s, setS] = useState<{ key: keyof T; desc: boolean }>({ key: init, desc });
  const sorted = useMemo(
    () =>
      [...list].sort((a, b) => {
        const x = a[s.key] as unknown;
        const y = b[s.key] as unknown;
        const c = typeof x === 'string' ? x.localeCompare(String(y)) : Number(x ?? -1) - Number(y ?? -1);
        return s.desc ? -c : c;
      }),
    [list, s],
  );
  const th = (key: keyof T, label: string, num = false) => (
    <th className={num ? 'num' : undefined} aria-sort={s.key === key ? (s.desc ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="th" onClick={() => setS((o) => ({ key, desc: o.key === key ? !o.desc : true }))}>
        {label}
        {s.key === key ? (s.desc ? ' ▼' : ' ▲') : ''}
      </button>
    </th>
  );
  return { sorted, th };
}

/**
 * Processes: "what was running at" a moment above the live list, which comes from the agent's
 * process manager (tree, signals) when it allows `process`, else from the latest processes report.
 */
function Processes({ h, me, bump }: { h: Host; me: Me; bump: number | undefined }) {
  return (
    <div>
      <TopAsk h={h} />
      {h.capabilities.includes('process') ? <ProcessTab id={h.id} canAct={me.role !== 'viewer'} /> : <ReportedProcesses id={h.id} bump={bump} />}
    </div>
  );
}

function ReportedProcesses({ id, bump }: { id: string; bump: number | undefined }) {
  const i = useI18n();
  const { t } = i;
  const p = useAsync(() => get<{ ts: number; processes: Proc[]; totals: { processes: number; threads: number } }>(`/api/v1/hosts/${id}/processes`), [id, bump]);
  const [filter, setFilter] = useState('');
  const list = useMemo(() => (p.data?.processes ?? []).filter((x) => !filter || (x.name + ' ' + x.command + ' ' + x.user).toLowerCase().includes(filter.toLowerCase())), [p.data, filter]);
  const { sorted, th } = useSorted(list, 'cpuPercent');
  return (
    <View a={p}>
      {(d) => (
        <>
          <div className="row wrap">
            <input type="search" aria-label={t('proc.filter')} placeholder={t('proc.filter')} value={filter} onChange={(e) => setFilter(e.target.value)} />
            <span className="muted">
              {t('proc.totals', { n: i.num(d.totals.processes, 0), threads: i.num(d.totals.threads, 0) })} · {i.time(d.ts)}
            </span>
          </div>
          <table className="table" data-testid="processes">
            <thead>
              <tr>
                {th('pid', t('proc.pid'), true)}
                {th('name', t('proc.name'))}
                {th('user', t('proc.user'))}
                {th('cpuPercent', t('proc.cpu'), true)}
                {th('rssBytes', t('proc.rss'), true)}
                {th('threads', t('proc.threads'), true)}
                <th>{t('proc.ports')}</th>
                <th>{t('proc.command')}</th>
              </tr>
            </thead>
            <tbody>
              {sorted.slice(0, 300).map((x) => (
                <tr key={x.pid} data-pid={x.pid}>
                  <td className="num">{x.pid}</td>
                  <td>{x.name}</td>
                  <td>{x.user}</td>
                  <td className="num">{i.pct(x.cpuPercent)}</td>
                  <td className="num">{i.bytes(x.rssBytes)}</td>
                  <td className="num">{x.threads}</td>
                  <td>{x.listenPorts.join(', ')}</td>
                  <td className="command-cell"><CommandText text={x.command || x.name} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </View>
  );
}

interface Sock {
  proto: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
  pid?: number;
  process?: string;
}

/**
 * Connections and listening sockets from the latest connections report; the listening ones from
 * the agent's process manager instead (with the owner's user) when it allows `process`.
 */
function Connections({ h, bump }: { h: Host; bump: number | undefined }) {
  const i = useI18n();
  const { t } = i;
  const c = useAsync(() => get<{ ts: number; counts: { tcp: Record<string, number>; udp: number; unix: number }; listening: Sock[]; connections: Sock[] }>(`/api/v1/hosts/${h.id}/connections`), [h.id, bump]);
  const ports = h.capabilities.includes('process');
  const sockRows = (list: Sock[], remote: boolean) => (
    <table className="table" data-testid={remote ? 'connections' : 'listening'}>
      <thead>
        <tr>
          <th>{t('conn.proto')}</th>
          <th>{t('conn.local')}</th>
          {remote && <th>{t('conn.remote')}</th>}
          {remote && <th>{t('conn.state')}</th>}
          <th>{t('conn.process')}</th>
        </tr>
      </thead>
      <tbody>
        {list.slice(0, 500).map((s, n) => (
          <tr key={n}>
            <td>{s.proto}</td>
            <td className="mono">{s.localAddress}:{s.localPort}</td>
            {remote && <td className="mono">{s.remoteAddress}:{s.remotePort}</td>}
            {remote && <td>{s.state}</td>}
            <td>{s.process ? `${s.process} (${s.pid})` : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
  return (
    <div>
      {c.data && (
        <p className="muted">
          {Object.entries(c.data.counts.tcp).map(([k, n]) => `${k} ${n}`).join(' · ')} · UDP {c.data.counts.udp} · Unix {c.data.counts.unix} · {i.time(c.data.ts)}
        </p>
      )}
      <h3>{t('conn.listening')}</h3>
      {ports ? <PortsList id={h.id} /> : c.data && (c.data.listening.length ? sockRows(c.data.listening, false) : <Empty>{t('state.none')}</Empty>)}
      <h3>{t('conn.established')}</h3>
      <View a={c}>{(d) => (d.connections.length ? sockRows(d.connections, true) : <Empty>{t('state.none')}</Empty>)}</View>
    </div>
  );
}

interface Inventory {
  blockDevices: { name: string; sizeBytes: number; rotational: boolean; model: string }[];
  filesystems: { device: string; mount: string; fsType: string; sizeBytes: number; readOnly: boolean }[];
  interfaces: { name: string; mac: string; mtu: number; operState: string; speedMbps?: number; addresses: { address: string; prefixLength: number }[] }[];
  gateways: { ipv4?: { address: string; interface: string }; ipv6?: { address: string; interface: string } };
  nameservers: string[];
}

function Hardware({ id }: { id: string }) {
  const i = useI18n();
  const { t } = i;
  const inv = useAsync(() => get<{ ts: number; data: Inventory }>(`/api/v1/hosts/${id}/inventory`).then((r) => r.data), [id]);
  return (
    <View a={inv}>
      {(d) => (
        <div>
          <h3>{t('hw.disks')}</h3>
          <table className="table">
            <thead>
              <tr><th>{t('hw.device')}</th><th>{t('hw.model')}</th><th className="num">{t('hw.size')}</th><th>{t('hw.kind')}</th></tr>
            </thead>
            <tbody>
              {d.blockDevices.map((b) => (
                <tr key={b.name}><td>{b.name}</td><td>{b.model || '—'}</td><td className="num">{i.bytes(b.sizeBytes)}</td><td>{b.rotational ? 'HDD' : 'SSD'}</td></tr>
              ))}
            </tbody>
          </table>
          <h3>{t('hw.filesystems')}</h3>
          <table className="table">
            <thead>
              <tr><th>{t('hw.mount')}</th><th>{t('hw.device')}</th><th>{t('hw.type')}</th><th className="num">{t('hw.size')}</th></tr>
            </thead>
            <tbody>
              {d.filesystems.map((f) => (
                <tr key={f.mount}><td className="mono">{f.mount}</td><td className="mono">{f.device}</td><td>{f.fsType}{f.readOnly ? ' (ro)' : ''}</td><td className="num">{i.bytes(f.sizeBytes)}</td></tr>
              ))}
            </tbody>
          </table>
          <h3>{t('hw.interfaces')}</h3>
          <table className="table">
            <thead>
              <tr><th>{t('hw.name')}</th><th>{t('hw.state')}</th><th>MAC</th><th>{t('hw.addresses')}</th><th className="num">MTU</th><th className="num">{t('hw.speed')}</th></tr>
            </thead>
            <tbody>
              {d.interfaces.map((n) => (
                <tr key={n.name}><td>{n.name}</td><td>{n.operState}</td><td className="mono">{n.mac}</td><td className="mono">{n.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(', ')}</td><td className="num">{n.mtu}</td><td className="num">{n.speedMbps ? `${n.speedMbps} Mb/s` : '—'}</td></tr>
              ))}
            </tbody>
          </table>
          <p className="muted">
            {t('hw.gateway')}: {d.gateways.ipv4 ? `${d.gateways.ipv4.address} (${d.gateways.ipv4.interface})` : '—'} · {t('hw.dns')}: {d.nameservers.join(', ') || '—'}
          </p>
        </div>
      )}
    </View>
  );
}

interface Latest {
  sensors?: { ts: number; temperatures: { chip: string; label: string; celsius: number; critCelsius?: number }[]; fans: { chip: string; label: string; rpm: number }[]; power: { name: string; capacityPercent?: number; powerWatts?: number; status?: string }[]; sshSessions: unknown[] };
  gpu?: { gpus: { index: number; name: string; utilizationPercent?: number; memoryUsedBytes?: number; memoryTotalBytes?: number; temperatureCelsius?: number }[] };
}

function Sensors({ id, bump }: { id: string; bump: number | undefined }) {
  const i = useI18n();
  const { t } = i;
  const l = useAsync(() => get<Latest>(`/api/v1/hosts/${id}/latest`), [id, bump]);
  return (
    <View a={l}>
      {(d) => {
        const s = d.sensors;
        const none = !s || (!s.temperatures.length && !s.fans.length && !s.power.length);
        return (
          <div>
            {none && !d.gpu?.gpus.length && <Empty>{t('sensors.none')}</Empty>}
            {s && s.temperatures.length > 0 && (
              <table className="table">
                <caption>{t('sensors.temps')}</caption>
                <tbody>
                  {s.temperatures.map((x) => (
                    <tr key={x.chip + x.label}><td>{x.chip}/{x.label}</td><td className="num">{i.num(x.celsius, 1)} °C</td></tr>
                  ))}
                </tbody>
              </table>
            )}
            {s && s.fans.length > 0 && (
              <table className="table">
                <caption>{t('sensors.fans')}</caption>
                <tbody>{s.fans.map((x) => <tr key={x.chip + x.label}><td>{x.chip}/{x.label}</td><td className="num">{i.num(x.rpm, 0)} RPM</td></tr>)}</tbody>
              </table>
            )}
            {s && s.power.length > 0 && (
              <table className="table">
                <caption>{t('sensors.power')}</caption>
                <tbody>{s.power.map((x) => <tr key={x.name}><td>{x.name}</td><td className="num">{x.capacityPercent !== undefined ? i.pct(x.capacityPercent) : ''} {x.powerWatts !== undefined ? i.num(x.powerWatts, 1) + ' W' : ''}</td></tr>)}</tbody>
              </table>
            )}
            {d.gpu && d.gpu.gpus.length > 0 && (
              <table className="table">
                <caption>GPU</caption>
                <tbody>{d.gpu.gpus.map((g) => <tr key={g.index}><td>{g.index}: {g.name}</td><td className="num">{i.pct(g.utilizationPercent)}</td><td className="num">{i.bytes(g.memoryUsedBytes)} / {i.bytes(g.memoryTotalBytes)}</td><td className="num">{g.temperatureCelsius !== undefined ? i.num(g.temperatureCelsius, 0) + ' °C' : ''}</td></tr>)}</tbody>
              </table>
            )}
            {s && <p className="muted">{t('sensors.ssh', { n: s.sshSessions.length })}</p>}
          </div>
        );
      }}
    </View>
  );
}

function Runs({ id }: { id: string }) {
  const i = useI18n();
  const { t } = i;
  const r = useAsync(() => get<{ tasks: Task[] }>(`/api/v1/hosts/${id}/tasks?limit=50`), [id]);
  return (
    <View a={r}>
      {(d) =>
        d.tasks.length === 0 ? (
          <Empty>{t('runs.none')}</Empty>
        ) : (
          <table className="table">
            <thead>
              <tr><th>{t('jobs.started')}</th><th>{t('jobs.state')}</th><th className="num">{t('task.exit')}</th><th>{t('jobs.job')}</th></tr>
            </thead>
            <tbody>
              {d.tasks.map((x) => (
                <tr key={x.id}>
                  <td>{i.date(x.createdAt)}</td>
                  <td><StateBadge state={x.status ?? x.state} ok={x.ok} /></td>
                  <td className="num">{x.exitCode ?? '—'}</td>
                  <td><a href={href('/jobs/' + x.jobId)}>{x.jobId.slice(0, 12)}</a></td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </View>
  );
}

export function StateBadge({ state, ok }: { state: string; ok?: boolean | null }) {
  const i = useI18n();
  const cls = ok === true || state === 'succeeded' ? 'ok' : ok === false || state === 'failed' || state === 'lost' || state === 'refused' ? 'bad' : state === 'running' || state === 'sent' || state === 'pending' ? 'run' : '';
  return <span className={'badge ' + cls}>{i.tk('state.' + state, state)}</span>;
}

export type { I18n };
