import { useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { get, qs, type OverviewRow } from '../api';
import { useI18n } from '../i18n';
import { live } from '../live';
import { href } from '../router';
import { figuresOf, labelMatcher, olderVersion } from '../fleet';
import { Bar, Empty, ErrorBox, Labels, Loading, Sparkline } from '../ui';

const SPARK = 30;

interface Row extends OverviewRow {
  bootAt: number | null;
  spark: number[];
}

type SortKey = 'hostname' | 'status' | 'cpu' | 'memory' | 'disk' | 'load' | 'net' | 'uptime';
const SORTERS: Record<SortKey, (r: Row) => number | string> = {
  hostname: (r) => r.hostname,
  status: (r) => (r.online ? 0 : 1),
  cpu: (r) => r.cpuPercent ?? -1,
  memory: (r) => r.memoryPercent ?? -1,
  disk: (r) => r.diskPercent ?? -1,
  load: (r) => r.load1 ?? -1,
  net: (r) => (r.netRxBytesPerSec ?? 0) + (r.netTxBytesPerSec ?? 0),
  uptime: (r) => (r.bootAt ? -r.bootAt : 1),
};

type Item = { kind: 'group'; key: string; total: number; online: number } | { kind: 'host'; row: Row };

/** How often the table shows what the socket pushed (samples arrive continuously for large fleets). */
const REDRAW_MS = 1000;

export function OverviewPage() {
  const i = useI18n();
  const { t } = i;
  const rows = useRef(new Map<string, Row>());
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>();
  const [loaded, setLoaded] = useState(false);
  const [search, setSearch] = useState('');
  const [searchIds, setSearchIds] = useState<Set<string> | null>(null);
  const [labelSel, setLabelSel] = useState('');
  const [status, setStatus] = useState<'all' | 'online' | 'offline'>('all');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'hostname', desc: false });
  const [groupBy, setGroupBy] = useState('');
  const dirty = useRef(false);
  // The newest agent this hub holds: hosts whose agents are older say so (tether agent upgrade).
  const [latestAgent, setLatestAgent] = useState<string | null>(null);
  useEffect(() => {
    get<{ latest: string | null }>('/api/v1/agent-artifacts').then((r) => setLatestAgent(r.latest), () => {});
  }, []);

  // The snapshot once, then the live socket; after a reconnect the snapshot again (samples missed meanwhile).
  useEffect(() => {
    let gone = false;
    const load = async () => {
      try {
        const now = Date.now();
        const r = await get<{ hosts: OverviewRow[] }>('/api/v1/metrics/overview');
        if (gone) return;
        const m = rows.current;
        const seen = new Set<string>();
        for (const h of r.hosts) {
          seen.add(h.id);
          const old = m.get(h.id);
          m.set(h.id, { ...h, bootAt: h.uptimeSec !== null ? now - h.uptimeSec * 1000 : null, spark: old?.spark ?? (h.cpuPercent !== null ? [h.cpuPercent] : []) });
        }
        for (const id of [...m.keys()]) if (!seen.has(id)) m.delete(id);
        setError(undefined);
        setLoaded(true);
        setVersion((v) => v + 1);
      } catch (e) {
        if (!gone) setError(e);
      }
    };
    void load();
    const offStatus = live.onStatus((s, reconnected) => {
      if (s === 'open' && reconnected) void load();
    });
    const off = live.subscribe(
      '*',
      (e) => {
        const r = rows.current.get(e.hostId);
        if (!r) {
          // A host we have not seen (just enrolled): the snapshot brings its name and labels.
          if (e.type === 'status' && e.online) void load();
          return;
        }
        if (e.type === 'status') r.online = e.online;
        else {
          Object.assign(r, figuresOf(e.series));
          r.ts = e.ts;
          r.online = true;
          if (r.cpuPercent !== null) {
            r.spark.push(r.cpuPercent);
            if (r.spark.length > SPARK) r.spark.shift();
          }
        }
        dirty.current = true;
      },
      ['usage'],
    );
    const timer = setInterval(() => {
      if (dirty.current) {
        dirty.current = false;
        setVersion((v) => v + 1);
      }
    }, REDRAW_MS);
    return () => {
      gone = true;
      off();
      offStatus();
      clearInterval(timer);
    };
  }, []);

  // Name matches are found here; IP and MAC matches by the hub's search.
  useEffect(() => {
    const q = search.trim();
    if (!q || !/[\d:.]/.test(q)) {
      setSearchIds(null);
      return;
    }
    const timer = setTimeout(() => {
      get<{ hosts: { id: string }[] }>('/api/v1/hosts' + qs({ q, limit: 10000 }))
        .then((r) => setSearchIds(new Set(r.hosts.map((h) => h.id))))
        .catch(() => setSearchIds(null));
    }, 250);
    return () => clearTimeout(timer);
  }, [search]);

  const all = useMemo(() => [...rows.current.values()], [version]);
  const labelKeys = useMemo(() => [...new Set(all.flatMap((r) => Object.keys(r.labels)))].sort(), [all]);
  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    const match = labelMatcher(labelSel);
    const list = all.filter((r) => (status === 'all' || (status === 'online') === r.online) && match(r.labels) && (!q || r.hostname.toLowerCase().includes(q) || r.id === q || searchIds?.has(r.id)));
    const f = SORTERS[sort.key];
    const dir = sort.desc ? -1 : 1;
    list.sort((a, b) => {
      const x = f(a);
      const y = f(b);
      const c = typeof x === 'string' ? x.localeCompare(y as string) : x - (y as number);
      return c !== 0 ? c * dir : a.hostname.localeCompare(b.hostname);
    });
    return list;
  }, [all, search, searchIds, labelSel, status, sort]);

  const items = useMemo<Item[]>(() => {
    if (!groupBy) return shown.map((row) => ({ kind: 'host', row }));
    const groups = new Map<string, Row[]>();
    for (const r of shown) {
      const k = r.labels[groupBy] ?? '';
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(r);
    }
    const out: Item[] = [];
    for (const [key, g] of [...groups].sort((a, b) => (a[0] === '' ? 1 : b[0] === '' ? -1 : a[0].localeCompare(b[0])))) {
      out.push({ kind: 'group', key, total: g.length, online: g.filter((r) => r.online).length });
      for (const row of g) out.push({ kind: 'host', row });
    }
    return out;
  }, [shown, groupBy]);

  const online = all.filter((r) => r.online).length;
  const scroller = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: items.length, getScrollElement: () => scroller.current, estimateSize: () => 40, overscan: 10 });

  const header = (key: SortKey, label: string) => (
    <button
      type="button"
      className="th"
      aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : undefined}
      onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : key !== 'hostname' && key !== 'status' }))}
    >
      {label}
      {sort.key === key ? (sort.desc ? ' ▼' : ' ▲') : ''}
    </button>
  );

  if (!loaded && error) return <ErrorBox error={error} />;
  if (!loaded) return <Loading />;
  return (
    <section className="overview" aria-labelledby="ov-title">
      <div className="page-head">
        <h1 id="ov-title">{t('overview.title')}</h1>
        <div className="counts" data-testid="counts">
          <span>{t('overview.total', { n: i.num(all.length, 0) })}</span>
          <span className="on">{t('overview.online', { n: i.num(online, 0) })}</span>
          <span className="off">{t('overview.offline', { n: i.num(all.length - online, 0) })}</span>
          {shown.length !== all.length && <span>{t('overview.shown', { n: i.num(shown.length, 0) })}</span>}
        </div>
      </div>
      {error !== undefined && <ErrorBox error={error} />}
      <div className="filters">
        <input type="search" aria-label={t('overview.search')} placeholder={t('overview.search')} value={search} onChange={(e) => setSearch(e.target.value)} />
        <input aria-label={t('overview.labelFilter')} placeholder={t('overview.labelFilter')} value={labelSel} onChange={(e) => setLabelSel(e.target.value)} />
        <select aria-label={t('overview.status')} value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
          <option value="all">{t('overview.statusAll')}</option>
          <option value="online">{t('status.online')}</option>
          <option value="offline">{t('status.offline')}</option>
        </select>
        <select aria-label={t('overview.groupBy')} value={groupBy} onChange={(e) => setGroupBy(e.target.value)}>
          <option value="">{t('overview.noGroup')}</option>
          {labelKeys.map((k) => (
            <option key={k} value={k}>
              {t('overview.groupByKey', { key: k })}
            </option>
          ))}
        </select>
      </div>
      {all.length === 0 ? (
        <Empty>
          {t('overview.empty')} <a href={href('/enroll')}>{t('overview.enrollLink')}</a>
        </Empty>
      ) : (
        <div className="grid-table" role="table" aria-label={t('overview.title')} aria-rowcount={items.length + 1}>
          <div className="tr thead" role="row">
            <span role="columnheader">{header('hostname', t('col.host'))}</span>
            <span role="columnheader">{header('status', t('col.status'))}</span>
            <span role="columnheader" className="num">{header('cpu', t('col.cpu'))}</span>
            <span role="columnheader" className="num">{header('memory', t('col.memory'))}</span>
            <span role="columnheader" className="num">{header('disk', t('col.disk'))}</span>
            <span role="columnheader" className="num">{header('load', t('col.load'))}</span>
            <span role="columnheader" className="num">{header('net', t('col.net'))}</span>
            <span role="columnheader">{header('uptime', t('col.uptime'))}</span>
            <span role="columnheader">{t('col.os')}</span>
          </div>
          <div className="tbody" ref={scroller} data-testid="host-scroller">
            {shown.length === 0 && <Empty>{t('overview.noMatch')}</Empty>}
            <div style={{ height: v.getTotalSize(), position: 'relative' }}>
              {v.getVirtualItems().map((vi) => {
                const it = items[vi.index]!;
                const style = { transform: `translateY(${vi.start}px)` };
                if (it.kind === 'group')
                  return (
                    <div key={'g:' + it.key} className="tr group" role="row" style={style} aria-rowindex={vi.index + 2}>
                      <span role="cell">
                        {groupBy}={it.key || t('overview.unlabelled')} · {t('overview.groupCounts', { online: i.num(it.online, 0), total: i.num(it.total, 0) })}
                      </span>
                    </div>
                  );
                const r = it.row;
                const now = Date.now();
                return (
                  <div key={r.id} className={'tr' + (r.online ? '' : ' is-off')} role="row" style={style} aria-rowindex={vi.index + 2} data-host={r.hostname}>
                    <span role="cell" className="host-cell">
                      <a href={href('/hosts/' + r.id)}>{r.hostname}</a>
                      {latestAgent && olderVersion(r.agentVersion, latestAgent) && (
                        <span className="badge run" data-testid="outdated" title={t('overview.outdatedTitle', { version: r.agentVersion, latest: latestAgent })}>
                          {t('overview.outdated')}
                        </span>
                      )}
                      <Labels labels={r.labels} onPick={(k, val) => setLabelSel((s) => (s ? s + ',' : '') + `${k}=${val}`)} />
                    </span>
                    <span role="cell" title={r.online ? t('status.online') : t('status.offline')}>
                      <span className={'dot ' + (r.online ? 'on' : 'off')} aria-hidden="true" />
                      <span className="status-text">{r.online ? t('status.online') : t('status.offline')}</span>
                    </span>
                    <span role="cell" className="num" data-testid="cpu">
                      <Sparkline values={r.spark} label={t('col.cpu')} /> {i.pct(r.cpuPercent)}
                    </span>
                    <span role="cell" className="num">
                      <Bar value={r.memoryPercent} /> {i.pct(r.memoryPercent)}
                    </span>
                    <span role="cell" className="num">
                      <Bar value={r.diskPercent} /> {i.pct(r.diskPercent)}
                    </span>
                    <span role="cell" className="num">{i.num(r.load1, 2)}</span>
                    <span role="cell" className="num" title={`↓ ${i.rate(r.netRxBytesPerSec)} ↑ ${i.rate(r.netTxBytesPerSec)}`}>
                      ↓{i.rate(r.netRxBytesPerSec)} ↑{i.rate(r.netTxBytesPerSec)}
                    </span>
                    <span role="cell">{r.bootAt ? i.duration((now - r.bootAt) / 1000) : '—'}</span>
                    <span role="cell" className="muted ellipsis">{r.os}</span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      )}
    </section>
  );
}
