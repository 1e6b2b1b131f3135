/** Alert rules: presets and custom ones; enable/disable, create/edit, delete, reset presets. */
import { useState, type FormEvent } from 'react';
import { del, get, patch, post, type Me } from '../../api';
import { useI18n } from '../../i18n';
import { ErrorBox, Field, Modal, TableView, useAsync, useConfirm } from '../../ui';
import { OPS, SEVERITIES, list, loadChannels, loadHosts, loadRules, ruleName, type Catalog, type Channel, type HostLite, type Rule } from './common';
import { Severity } from './severity';

export function RulesPage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const canWrite = me.role !== 'viewer' && !me.hostSelector;
  const rules = useAsync(loadRules, []);
  const catalog = useAsync(() => get<Catalog>('/api/v1/alerts/catalog'), []);
  const hosts = useAsync(loadHosts, []);
  const channels = useAsync(loadChannels, []);
  const [err, setErr] = useState<unknown>();
  const [editing, setEditing] = useState<Rule | 'new'>();
  const run = async (fn: () => Promise<unknown>) => {
    setErr(undefined);
    try {
      await fn();
      rules.reload();
    } catch (e) {
      setErr(e);
    }
  };
  const hostName = (id: string) => hosts.data?.find((h) => h.id === id)?.hostname ?? id.slice(0, 8);
  const scopeText = (r: Rule) => {
    const parts: string[] = [];
    if (r.scope.hosts?.length) parts.push(r.scope.hosts.map(hostName).join(', '));
    if (r.scope.selector) parts.push(r.scope.selector);
    let s = parts.join(' + ') || t('alerts.allHosts');
    if (r.scope.exclude?.length) s += ' − ' + r.scope.exclude.map(hostName).join(', ');
    return s;
  };
  return (
    <section aria-labelledby="rules-title">
      <div className="page-head">
        <h1 id="rules-title">{t('alerts.rules')}</h1>
        {canWrite && (
          <div className="row">
            <button
              type="button"
              onClick={async () => {
                if (await confirm(t('alerts.resetConfirm'), { okLabel: t('alerts.resetPresets') })) await run(() => post('/api/v1/alerts/rules/reset-presets'));
              }}
            >
              {t('alerts.resetPresets')}
            </button>
            <button type="button" className="primary" onClick={() => setEditing('new')}>
              {t('alerts.newRule')}
            </button>
          </div>
        )}
      </div>
      {err !== undefined && <ErrorBox error={err} />}
      <TableView a={rules} empty={t('alerts.noRules')} testid="rules-table" head={[t('alerts.enabled'), t('alerts.name'), t('alerts.watches'), t('alerts.condition'), t('alerts.scope'), t('alerts.severity')]} actions={t('alerts.actions')}>
        {(d) => (
          <>
            {d.map((r) => (
              <tr key={r.id} data-rule={r.id} className={r.enabled ? '' : 'is-off'}>
                <td>
                  <input type="checkbox" role="switch" aria-label={t('alerts.enabledOf', { name: ruleName(i, r) })} checked={r.enabled} disabled={!canWrite} onChange={(e) => {
                      const enabled = e.target.checked;
                      // Shown at once; the reload after the change brings the hub's view.
                      rules.set(d.map((x) => (x.id === r.id ? { ...x, enabled } : x)));
                      void run(() => patch('/api/v1/alerts/rules/' + r.id, { enabled }));
                    }} />
                </td>
                <td>
                  {ruleName(i, r)} {r.preset && <span className="chip">{t('alerts.preset')}</span>}
                </td>
                <td className="mono">{r.kind === 'metric' ? r.metric : r.anomaly}</td>
                <td>
                  {r.op} {i.num(r.threshold, 3)} · {t('alerts.forSec', { s: r.forSec })}
                  {r.kind === 'metric' && r.aggregate === 'avg' && ` · ${t('alerts.agg.avg')}`}
                </td>
                <td className="small-text">{scopeText(r)}</td>
                <td>
                  <Severity s={r.severity} />
                </td>
                <td>
                  <div className="row end cell-actions">
                  {canWrite && (
                    <>
                      <button type="button" className="small" onClick={() => setEditing(r)}>
                        {t('alerts.edit')}
                      </button>
                      <button
                        type="button"
                        className="small danger"
                        onClick={async () => {
                          if (await confirm(t('alerts.deleteRuleConfirm', { name: ruleName(i, r) }), { okLabel: t('action.delete') })) await run(() => del('/api/v1/alerts/rules/' + r.id));
                        }}
                      >
                        {t('action.delete')}
                      </button>
                    </>
                  )}
                  </div>
                </td>
              </tr>
            ))}
          </>
        )}
      </TableView>
      {editing && catalog.data && (
        <RuleEditor
          rule={editing === 'new' ? undefined : editing}
          catalog={catalog.data}
          hosts={hosts.data ?? []}
          channels={channels.data ?? []}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            rules.reload();
          }}
        />
      )}
    </section>
  );
}

type ScopeMode = 'all' | 'hosts' | 'selector';

function RuleEditor({ rule, catalog, hosts, channels, onClose, onSaved }: { rule: Rule | undefined; catalog: Catalog; hosts: HostLite[]; channels: Channel[]; onClose: () => void; onSaved: () => void }) {
  const i = useI18n();
  const { t } = i;
  const [name, setName] = useState(rule?.name ?? '');
  const [kind, setKind] = useState<'metric' | 'anomaly'>(rule?.kind ?? 'metric');
  const [family, setFamily] = useState(rule?.metric?.split('|')[0] ?? 'cpu_percent');
  const [dim, setDim] = useState(rule?.metric?.split('|').slice(1).join('|') ?? '');
  const [anomaly, setAnomaly] = useState(rule?.anomaly ?? catalog.anomalies[0]?.type ?? 'host_offline');
  const [params, setParams] = useState(
    Object.entries(rule?.params ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
  );
  const [op, setOp] = useState(rule?.op ?? '>');
  const [threshold, setThreshold] = useState(String(rule?.threshold ?? 90));
  const [forSec, setForSec] = useState(String(rule?.forSec ?? 300));
  const [resolveForSec, setResolveForSec] = useState(String(rule?.resolveForSec ?? 0));
  const [aggregate, setAggregate] = useState(rule?.aggregate ?? 'all');
  const [severity, setSeverity] = useState(rule?.severity ?? 'warning');
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const [mode, setMode] = useState<ScopeMode>(rule?.scope.hosts?.length ? 'hosts' : rule?.scope.selector ? 'selector' : 'all');
  const [scopeHosts, setScopeHosts] = useState<string[]>(rule?.scope.hosts ?? []);
  const [selector, setSelector] = useState(rule?.scope.selector ?? '');
  const [exclude, setExclude] = useState<string[]>(rule?.scope.exclude ?? []);
  const [chans, setChans] = useState<string[]>(rule?.channels ?? []);
  const [groupWindowSec, setGroupWindowSec] = useState(String(rule?.groupWindowSec ?? 60));
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const fam = catalog.metrics.find((m) => m.family === family);
  const an = catalog.anomalies.find((a) => a.type === anomaly);
  const toggle = (xs: string[], x: string, on: boolean) => (on ? [...new Set([...xs, x])] : xs.filter((y) => y !== x));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    const scope = mode === 'hosts' ? { hosts: scopeHosts } : mode === 'selector' ? { selector: selector.trim(), ...(exclude.length ? { exclude } : {}) } : exclude.length ? { exclude } : {};
    const p: Record<string, string | number> = {};
    for (const kv of list(params.replace(/,/g, ' '))) {
      const [k, ...v] = kv.split('=');
      if (k) p[k] = /^-?\d+(\.\d+)?$/.test(v.join('=')) ? Number(v.join('=')) : v.join('=');
    }
    const body: Record<string, unknown> = {
      name: name.trim(),
      kind,
      ...(kind === 'metric' ? { metric: dim.trim() ? `${family}|${dim.trim()}` : family, aggregate } : { anomaly, params: p }),
      op,
      threshold: Number(threshold),
      forSec: Number(forSec),
      resolveForSec: Number(resolveForSec),
      severity,
      enabled,
      scope,
      channels: chans,
      groupWindowSec: Number(groupWindowSec),
    };
    try {
      if (rule) await patch('/api/v1/alerts/rules/' + rule.id, body);
      else await post('/api/v1/alerts/rules', body);
      onSaved();
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };

  const hostPick = (value: string[], set: (v: string[]) => void, label: string) => (
    <fieldset>
      <legend>{label}</legend>
      <ul className="pick-list">
        {hosts.map((h) => (
          <li key={h.id}>
            <label>
              <input type="checkbox" checked={value.includes(h.id)} onChange={(e) => set(toggle(value, h.id, e.target.checked))} />
              {h.hostname} <span className="muted small-text">{Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(' ')}</span>
            </label>
          </li>
        ))}
      </ul>
    </fieldset>
  );

  return (
    <Modal title={rule ? t('alerts.editRule') : t('alerts.newRule')} onClose={onClose}>
      <form className="alert-form" onSubmit={submit}>
        <Field label={t('alerts.name')}>
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoFocus />
        </Field>
        <div className="two">
          <Field label={t('alerts.kind')}>
            <select aria-label={t('alerts.kind')} value={kind} onChange={(e) => setKind(e.target.value as 'metric')} disabled={!!rule}>
              <option value="metric">{t('alerts.kind.metric')}</option>
              <option value="anomaly">{t('alerts.kind.anomaly')}</option>
            </select>
          </Field>
          <Field label={t('alerts.severity')}>
            <select aria-label={t('alerts.severity')} value={severity} onChange={(e) => setSeverity(e.target.value)}>
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {t(`alerts.sev.${s}`)}
                </option>
              ))}
            </select>
          </Field>
        </div>
        {kind === 'metric' ? (
          <div className="two">
            <Field label={t('alerts.metric')} hint={fam?.help}>
              <select aria-label={t('alerts.metric')} value={family} onChange={(e) => setFamily(e.target.value)}>
                {catalog.metrics.map((m) => (
                  <option key={m.family} value={m.family}>
                    {m.family}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={fam?.dim ? t('alerts.dimOf', { dim: fam.dim }) : t('alerts.dim')} hint={t('alerts.dimHint')}>
              <input value={dim} onChange={(e) => setDim(e.target.value)} disabled={!fam?.dim} className="mono" />
            </Field>
          </div>
        ) : (
          <div className="two">
            <Field label={t('alerts.anomaly')} hint={an ? `${an.help} (${an.unit})` : undefined}>
              <select aria-label={t('alerts.anomaly')}
                value={anomaly}
                onChange={(e) => {
                  setAnomaly(e.target.value);
                  const a = catalog.anomalies.find((x) => x.type === e.target.value);
                  if (a) {
                    setOp(a.op);
                    setThreshold(String(a.threshold));
                  }
                }}
              >
                {catalog.anomalies.map((a) => (
                  <option key={a.type} value={a.type}>
                    {a.type}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('alerts.params')} hint={t('alerts.paramsHint')}>
              <input value={params} onChange={(e) => setParams(e.target.value)} className="mono" />
            </Field>
          </div>
        )}
        <div className="three">
          <Field label={t('alerts.op')}>
            <select aria-label={t('alerts.op')} value={op} onChange={(e) => setOp(e.target.value)}>
              {OPS.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t('alerts.threshold')}>
            <input type="number" step="any" value={threshold} onChange={(e) => setThreshold(e.target.value)} required disabled={kind === 'anomaly' && an?.thresholdEditable === false} />
          </Field>
          {kind === 'metric' && (
            <Field label={t('alerts.aggregate')}>
              <select aria-label={t('alerts.aggregate')} value={aggregate} onChange={(e) => setAggregate(e.target.value as 'all')}>
                <option value="all">{t('alerts.agg.all')}</option>
                <option value="avg">{t('alerts.agg.avg')}</option>
              </select>
            </Field>
          )}
        </div>
        <div className="three">
          <Field label={t('alerts.forSecLabel')}>
            <input type="number" min={0} step="any" value={forSec} onChange={(e) => setForSec(e.target.value)} required />
          </Field>
          <Field label={t('alerts.resolveForSec')}>
            <input type="number" min={0} step="any" value={resolveForSec} onChange={(e) => setResolveForSec(e.target.value)} required />
          </Field>
          <Field label={t('alerts.groupWindow')}>
            <input type="number" min={0} step="any" value={groupWindowSec} onChange={(e) => setGroupWindowSec(e.target.value)} required />
          </Field>
        </div>
        <fieldset>
          <legend>{t('alerts.scope')}</legend>
          <div role="radiogroup" aria-label={t('alerts.scope')} className="row">
            {(['all', 'hosts', 'selector'] as const).map((m) => (
              <label key={m} className="inline">
                <input type="radio" name="scope-mode" checked={mode === m} onChange={() => setMode(m)} />
                {t(`alerts.scope.${m}`)}
              </label>
            ))}
          </div>
          {mode === 'hosts' && hostPick(scopeHosts, setScopeHosts, t('alerts.scope.hosts'))}
          {mode === 'selector' && (
            <Field label={t('alerts.selector')}>
              <input value={selector} onChange={(e) => setSelector(e.target.value)} placeholder="env=prod,role!=db" required className="mono" />
            </Field>
          )}
          {mode !== 'hosts' && hostPick(exclude, setExclude, t('alerts.exclude'))}
        </fieldset>
        <fieldset>
          <legend>{t('alerts.channels')}</legend>
          <small className="muted">{t('alerts.channelsHint')}</small>
          {channels.map((c) => (
            <label key={c.id} className="inline" style={{ marginRight: 12 }}>
              <input type="checkbox" checked={chans.includes(c.id)} onChange={(e) => setChans(toggle(chans, c.id, e.target.checked))} />
              {c.name} <span className="muted small-text">({c.type})</span>
            </label>
          ))}
        </fieldset>
        <label className="inline">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          {t('alerts.enabled')}
        </label>
        {err !== undefined && <ErrorBox error={err} />}
        <div className="row end">
          <button type="button" onClick={onClose}>
            {t('action.cancel')}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {t('action.save')}
          </button>
        </div>
      </form>
    </Modal>
  );
}
