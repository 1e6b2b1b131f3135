/** Live processes (list or tree, send a signal) and who listens on which port, for the host page's Processes and Connections tabs. */
import { useMemo, useState } from 'react';
import { get, post } from '../../api';
import { useI18n } from '../../i18n';
import { CommandText, Empty, useAsync, useConfirm } from '../../ui';
import { MView, hostApi, useAction, SLOW } from './common';

interface Row {
  pid: number;
  ppid: number;
  user: string;
  state: string;
  name: string;
  command: string;
  cpuPercent?: number;
  rssBytes: number;
  memPercent: number;
  threads: number;
  listenPorts: number[];
}
const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT'];

/** Depth-first order with each row's depth; rows whose parent is not in the list are roots. */
function tree(rows: Row[]): [Row, number][] {
  const pids = new Set(rows.map((r) => r.pid));
  const kids = new Map<number, Row[]>();
  for (const r of rows) {
    const p = pids.has(r.ppid) && r.ppid !== r.pid ? r.ppid : 0;
    kids.set(p, [...(kids.get(p) ?? []), r]);
  }
  const out: [Row, number][] = [];
  const walk = (p: number, d: number) => {
    for (const r of (kids.get(p) ?? []).sort((a, b) => a.pid - b.pid)) {
      out.push([r, d]);
      if (d < 64) walk(r.pid, d + 1);
    }
  };
  walk(0, 0);
  return out;
}

export function ProcessTab({ id, canAct }: { id: string; canAct: boolean }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const ps = useAsync(() => get<{ processes: Row[]; total: number }>(hostApi(id, '/ps')), [id]);
  const [filter, setFilter] = useState('');
  const [asTree, setAsTree] = useState(false);
  const [sig, setSig] = useState<Record<number, string>>({});
  const act = useAction();
  const rows = useMemo(() => {
    const all = ps.data?.processes ?? [];
    const f = filter.toLowerCase();
    const match = (r: Row) => !f || `${r.pid} ${r.name} ${r.user} ${r.command}`.toLowerCase().includes(f);
    if (asTree) return tree(all).filter(([r]) => match(r));
    return [...all].sort((a, b) => (b.cpuPercent ?? 0) - (a.cpuPercent ?? 0)).filter(match).map((r): [Row, number] => [r, 0]);
  }, [ps.data, filter, asTree]);
  return (
    <div data-testid="ps-tab">
      <div className="row wrap">
        <input type="search" aria-label={t('mgr.filter')} placeholder={t('mgr.filter')} value={filter} onChange={(e) => setFilter(e.target.value)} />
        <label className="inline">
          <input type="checkbox" checked={asTree} onChange={(e) => setAsTree(e.target.checked)} /> {t('ps.tree')}
        </label>
        <button type="button" className="small" onClick={ps.reload}>{t('action.refresh')}</button>
        {ps.data && <span className="muted">{t('ps.total', { n: ps.data.total, shown: rows.length })}</span>}
      </div>
      {act.note}
      <MView a={ps}>
        {() => (
          <div className="scroll-x">
            <table className="table" data-testid="ps">
              <thead>
                <tr>
                  <th className="num">{t('ps.pid')}</th>
                  <th>{t('mgr.name')}</th>
                  <th>{t('mgr.user')}</th>
                  <th className="num">{t('ps.cpu')}</th>
                  <th className="num">{t('ps.rss')}</th>
                  <th>{t('ports.port')}</th>
                  <th>{t('mgr.command')}</th>
                  {canAct && <th>{t('mgr.signal')}</th>}
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, 500).map(([r, d]) => (
                  <tr key={r.pid} data-pid={r.pid}>
                    <td className="num">{r.pid}</td>
                    <td>
                      <span style={d > 0 ? { paddingLeft: d * 14 } : undefined}>{d > 0 ? '└ ' : ''}{r.name}</span>
                    </td>
                    <td>{r.user}</td>
                    <td className="num">{i.pct(r.cpuPercent)}</td>
                    <td className="num">{i.bytes(r.rssBytes)}</td>
                    <td>{r.listenPorts.join(', ')}</td>
                    <td className="command-cell"><CommandText text={r.command || r.name} /></td>
                    {canAct && (
                      <td>
                        <span className="row" style={{ margin: 0 }}>
                          <select aria-label={t('mgr.signal')} value={sig[r.pid] ?? 'SIGTERM'} onChange={(e) => setSig({ ...sig, [r.pid]: e.target.value })}>
                            {SIGNALS.map((s) => (
                              <option key={s}>{s}</option>
                            ))}
                          </select>
                          <button
                            type="button"
                            className="small danger"
                            disabled={act.busy}
                            onClick={async () => {
                              const signal = sig[r.pid] ?? 'SIGTERM';
                              if (!(await confirm(t('ps.confirm', { signal, name: r.name, pid: r.pid }), { danger: true, okLabel: t('ps.send') }))) return;
                              await act.run(() => post(hostApi(id, `/ps/${r.pid}/signal`), { signal }, SLOW.agent), `${signal} → ${r.name} (${r.pid})`, ps.reload);
                            }}
                          >
                            {t('ps.send')}
                          </button>
                        </span>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </MView>
    </div>
  );
}

interface Port {
  proto: string;
  address: string;
  port: number;
  pid?: number;
  process?: string;
  user?: string;
}

/** Who listens on which port, from the agent's process manager (shown in the host page's Connections tab). */
export function PortsList({ id }: { id: string }) {
  const { t } = useI18n();
  const p = useAsync(() => get<{ ports: Port[] }>(hostApi(id, '/ports')), [id]);
  return (
    <div data-testid="ports-tab">
      <button type="button" className="small" onClick={p.reload}>{t('action.refresh')}</button>
      <MView a={p}>
        {(d) =>
          d.ports.length === 0 ? (
            <Empty>{t('ports.none')}</Empty>
          ) : (
            <table className="table" data-testid="ports">
              <thead>
                <tr>
                  <th>{t('ports.proto')}</th>
                  <th>{t('ports.address')}</th>
                  <th className="num">{t('ports.port')}</th>
                  <th>{t('ports.process')}</th>
                  <th>{t('mgr.user')}</th>
                </tr>
              </thead>
              <tbody>
                {[...d.ports].sort((a, b) => a.port - b.port).map((x) => (
                  <tr key={`${x.proto}|${x.address}|${x.port}`} data-port={x.port}>
                    <td>{x.proto}</td>
                    <td className="mono">{x.address}</td>
                    <td className="num">{x.port}</td>
                    <td>{x.process ? `${x.process} (${x.pid})` : '—'}</td>
                    <td>{x.user ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </MView>
    </div>
  );
}
