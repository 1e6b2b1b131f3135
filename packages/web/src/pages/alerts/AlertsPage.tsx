/** Active alerts (live), alert history with filters, and the delivery log. */
import { useState } from 'react';
import { get, qs } from '../../api';
import { useI18n } from '../../i18n';
import { href } from '../../router';
import { Empty, View, useAsync } from '../../ui';
import { loadChannels, loadHosts, loadRules, ruleName, type Delivery } from './common';
import { Severity } from './severity';
import { useActiveAlerts, type AlertView } from './stream';

type Tab = 'active' | 'history' | 'deliveries';

export function AlertsPage() {
  const { t } = useI18n();
  const [tab, setTab] = useState<Tab>('active');
  const tabs: [Tab, string][] = [
    ['active', t('alerts.active')],
    ['history', t('alerts.history')],
    ['deliveries', t('alerts.deliveries')],
  ];
  return (
    <section aria-labelledby="alerts-title">
      <div className="page-head">
        <h1 id="alerts-title">{t('alerts.title')}</h1>
      </div>
      <div role="tablist" aria-label={t('alerts.sections')} className="tabs">
        {tabs.map(([k, label]) => (
          <button key={k} type="button" role="tab" aria-selected={tab === k} onClick={() => setTab(k)}>
            {label}
          </button>
        ))}
      </div>
      {tab === 'active' && <Active />}
      {tab === 'history' && <History />}
      {tab === 'deliveries' && <Deliveries />}
    </section>
  );
}

function valueText(i: ReturnType<typeof useI18n>, a: AlertView) {
  return a.value === null ? '—' : i.num(a.value, 2);
}

function Active() {
  const i = useI18n();
  const { t } = i;
  const { alerts, status } = useActiveAlerts();
  const firing = alerts.filter((a) => a.state === 'firing').length;
  return (
    <>
      <p className="muted" data-testid="alerts-live" data-status={status} role="status">
        {status === 'open' ? t('alerts.liveOn', { firing, pending: alerts.length - firing }) : status === 'offline' ? t('alerts.liveOff') : t('state.loading')}
      </p>
      {alerts.length === 0 ? (
        status === 'open' && <Empty>{t('alerts.noneActive')}</Empty>
      ) : (
        <div className="scroll-x">
          <table className="table" data-testid="active-alerts">
            <thead>
              <tr>
                <th>{t('alerts.severity')}</th>
                <th>{t('alerts.state')}</th>
                <th>{t('alerts.host')}</th>
                <th>{t('alerts.rule')}</th>
                <th>{t('alerts.subject')}</th>
                <th className="num">{t('alerts.valuePeak')}</th>
                <th>{t('alerts.since')}</th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((a) => (
                <tr key={`${a.ruleId}|${a.hostId}|${a.subject}`} data-alert={a.id} data-rule={a.ruleId} data-state={a.state}>
                  <td>
                    <Severity s={a.severity} />
                  </td>
                  <td>
                    <span className={'badge ' + (a.state === 'firing' ? 'bad' : 'run')}>{i.tk('alerts.st.' + a.state, a.state)}</span>
                    {a.silenced && <span className="chip"> {t('alerts.silenced')}</span>}
                    {a.flapping && <span className="chip"> {t('alerts.flapping')}</span>}
                  </td>
                  <td>{a.hostId ? <a href={href('/hosts/' + encodeURIComponent(a.hostId))}>{a.hostname || a.hostId}</a> : '—'}</td>
                  <td>{ruleName(i, { name: a.ruleName })}</td>
                  <td className="mono" title={a.detail ?? undefined}>
                    {a.subject}
                  </td>
                  <td className="num" title={`${a.op} ${a.threshold}`}>
                    {valueText(i, a)} / {a.peak === null ? '—' : i.num(a.peak, 2)} <span className="muted small-text">({a.op} {i.num(a.threshold, 2)})</span>
                  </td>
                  <td title={i.date(a.firedAt ?? a.startedAt)}>{i.ago(a.firedAt ?? a.startedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

const RANGES = ['-1h', '-24h', '-7d', '-30d'] as const;

function History() {
  const i = useI18n();
  const { t } = i;
  const [rule, setRule] = useState('');
  const [host, setHost] = useState('');
  const [state, setState] = useState('');
  const [from, setFrom] = useState<string>('-24h');
  const [offset, setOffset] = useState(0);
  const limit = 50;
  const rules = useAsync(loadRules, []);
  const hosts = useAsync(loadHosts, []);
  const rows = useAsync(() => get<{ alerts: AlertView[] }>('/api/v1/alerts/history' + qs({ rule, host, state, from, limit, offset })), [rule, host, state, from, offset]);
  const reset = (f: (v: string) => void) => (v: string) => {
    setOffset(0);
    f(v);
  };
  return (
    <>
      <div className="filters" role="search">
        <label className="inline">
          {t('alerts.rule')}
          <select aria-label={t('alerts.rule')} value={rule} onChange={(e) => reset(setRule)(e.target.value)}>
            <option value="">{t('alerts.any')}</option>
            {rules.data?.map((r) => (
              <option key={r.id} value={r.id}>
                {ruleName(i, r)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          {t('alerts.host')}
          <select aria-label={t('alerts.host')} value={host} onChange={(e) => reset(setHost)(e.target.value)}>
            <option value="">{t('alerts.any')}</option>
            {hosts.data?.map((h) => (
              <option key={h.id} value={h.id}>
                {h.hostname} ({h.id.slice(0, 8)})
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          {t('alerts.state')}
          <select aria-label={t('alerts.state')} value={state} onChange={(e) => reset(setState)(e.target.value)}>
            <option value="">{t('alerts.any')}</option>
            <option value="firing">{t('alerts.st.firing')}</option>
            <option value="resolved">{t('alerts.st.resolved')}</option>
          </select>
        </label>
        <label className="inline">
          {t('alerts.from')}
          <select aria-label={t('alerts.from')} value={from} onChange={(e) => reset(setFrom)(e.target.value)}>
            {RANGES.map((r) => (
              <option key={r} value={r}>
                {t(`alerts.range.${r}` as 'alerts.range.-1h')}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={rows.reload}>
          {t('action.refresh')}
        </button>
      </div>
      <View a={rows}>
        {(d) =>
          d.alerts.length === 0 ? (
            <Empty>{t('alerts.noHistory')}</Empty>
          ) : (
            <div className="scroll-x">
              <table className="table" data-testid="alert-history">
                <thead>
                  <tr>
                    <th>{t('alerts.severity')}</th>
                    <th>{t('alerts.state')}</th>
                    <th>{t('alerts.host')}</th>
                    <th>{t('alerts.rule')}</th>
                    <th>{t('alerts.subject')}</th>
                    <th className="num">{t('alerts.peak')}</th>
                    <th>{t('alerts.fired')}</th>
                    <th>{t('alerts.ended')}</th>
                  </tr>
                </thead>
                <tbody>
                  {d.alerts.map((a) => (
                    <tr key={a.id} data-rule={a.ruleId} data-state={a.state}>
                      <td>
                        <Severity s={a.severity} />
                      </td>
                      <td>
                        <span className={'badge ' + (a.state === 'firing' ? 'bad' : 'ok')}>{i.tk('alerts.st.' + a.state, a.state)}</span>
                      </td>
                      <td>{a.hostname || a.hostId || '—'}</td>
                      <td>{ruleName(i, { name: a.ruleName })}</td>
                      <td className="mono">{a.subject}</td>
                      <td className="num">{a.peak === null ? '—' : i.num(a.peak, 2)}</td>
                      <td>{i.date(a.firedAt ?? a.startedAt)}</td>
                      <td>
                        {a.endedAt ? i.date(a.endedAt) : '—'}
                        {a.endReason && <span className="muted small-text"> ({i.tk('alerts.end.' + a.endReason, a.endReason)})</span>}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </View>
      <div className="row">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - limit))}>
          {t('action.newer')}
        </button>
        <button type="button" disabled={(rows.data?.alerts.length ?? 0) < limit} onClick={() => setOffset(offset + limit)}>
          {t('action.older')}
        </button>
      </div>
    </>
  );
}

function Deliveries() {
  const i = useI18n();
  const { t } = i;
  const [channel, setChannel] = useState('');
  const channels = useAsync(loadChannels, []);
  const rows = useAsync(() => get<{ deliveries: Delivery[] }>('/api/v1/alerts/deliveries' + qs({ channel, limit: 200 })), [channel]);
  return (
    <>
      <div className="filters">
        <label className="inline">
          {t('alerts.channel')}
          <select aria-label={t('alerts.channel')} value={channel} onChange={(e) => setChannel(e.target.value)}>
            <option value="">{t('alerts.any')}</option>
            {channels.data?.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={rows.reload}>
          {t('action.refresh')}
        </button>
      </div>
      <View a={rows}>{(d) => (d.deliveries.length === 0 ? <Empty>{t('alerts.noDeliveries')}</Empty> : <DeliveryTable rows={d.deliveries} />)}</View>
    </>
  );
}

export function DeliveryTable({ rows }: { rows: Delivery[] }) {
  const i = useI18n();
  const { t } = i;
  return (
    <div className="scroll-x">
      <table className="table" data-testid="deliveries">
        <thead>
          <tr>
            <th>{t('alerts.when')}</th>
            <th>{t('alerts.channel')}</th>
            <th>{t('alerts.kind')}</th>
            <th>{t('alerts.message')}</th>
            <th>{t('alerts.status')}</th>
            <th className="num">{t('alerts.attempts')}</th>
            <th>{t('alerts.lastError')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.id} data-status={d.status}>
              <td>{i.date(d.createdAt)}</td>
              <td>{d.channelName}</td>
              <td>{i.tk('alerts.dkind.' + d.kind, d.kind)}</td>
              <td>{d.title}</td>
              <td>
                <span className={'badge ' + (d.status === 'ok' ? 'ok' : d.status === 'failed' ? 'bad' : 'run')}>{i.tk('alerts.ds.' + d.status, d.status)}</span>
                {d.responseStatus !== null && <span className="muted small-text"> HTTP {d.responseStatus}</span>}
              </td>
              <td className="num">{d.attempts}</td>
              <td className="small-text">{d.lastError ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
