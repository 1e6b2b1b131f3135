/** Silences: hold back notifications by rule, host and/or label selector until an end time. */
import { useState, type FormEvent } from 'react';
import { del, get, post, type Me } from '../../api';
import { useI18n } from '../../i18n';
import { ErrorBox, Field, TableView, useAsync, useConfirm } from '../../ui';
import { loadHosts, loadRules, ruleName, type Silence } from './common';

const localInput = (ms: number) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

export function SilencesPage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const canWrite = me.role !== 'viewer';
  const silences = useAsync(() => get<{ silences: Silence[] }>('/api/v1/alerts/silences').then((r) => r.silences), []);
  const rules = useAsync(loadRules, []);
  const hosts = useAsync(loadHosts, []);
  const [ruleId, setRuleId] = useState('');
  const [hostId, setHostId] = useState('');
  const [selector, setSelector] = useState('');
  const [endsAt, setEndsAt] = useState(() => localInput(Date.now() + 2 * 3600_000));
  const [reason, setReason] = useState('');
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const ruleOf = (id: string | null) => {
    const r = id ? rules.data?.find((x) => x.id === id) : undefined;
    return r ? ruleName(i, r) : (id ?? '—');
  };
  const hostName = (id: string | null) => (id ? (hosts.data?.find((h) => h.id === id)?.hostname ?? id) : '—');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErr(undefined);
    setBusy(true);
    try {
      await post('/api/v1/alerts/silences', { ...(ruleId ? { ruleId } : {}), ...(hostId ? { hostId } : {}), ...(selector.trim() ? { selector: selector.trim() } : {}), endsAt: new Date(endsAt).getTime(), reason: reason.trim() });
      setReason('');
      silences.reload();
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="silences-title">
      <div className="page-head">
        <h1 id="silences-title">{t('alerts.silences')}</h1>
      </div>
      {canWrite && (
        <form className="card alert-form" onSubmit={submit} aria-label={t('alerts.newSilence')}>
          <h2>{t('alerts.newSilence')}</h2>
          <div className="three">
            <Field label={t('alerts.rule')}>
              <select aria-label={t('alerts.rule')} value={ruleId} onChange={(e) => setRuleId(e.target.value)}>
                <option value="">{t('alerts.any')}</option>
                {rules.data?.map((r) => (
                  <option key={r.id} value={r.id}>
                    {ruleName(i, r)}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('alerts.host')}>
              <select aria-label={t('alerts.host')} value={hostId} onChange={(e) => setHostId(e.target.value)}>
                <option value="">{t('alerts.any')}</option>
                {hosts.data?.map((h) => (
                  <option key={h.id} value={h.id}>
                    {h.hostname} ({h.id.slice(0, 8)})
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('alerts.selector')}>
              <input value={selector} onChange={(e) => setSelector(e.target.value)} placeholder="env=prod" className="mono" />
            </Field>
          </div>
          <div className="two">
            <Field label={t('alerts.endsAt')}>
              <input type="datetime-local" value={endsAt} onChange={(e) => setEndsAt(e.target.value)} required />
            </Field>
            <Field label={t('alerts.reason')}>
              <input value={reason} onChange={(e) => setReason(e.target.value)} required maxLength={1000} />
            </Field>
          </div>
          {err !== undefined && <ErrorBox error={err} />}
          <div className="row end">
            <button type="submit" className="primary" disabled={busy}>
              {t('alerts.addSilence')}
            </button>
          </div>
        </form>
      )}
      <TableView a={silences} empty={t('alerts.noSilences')} testid="silences-table" head={[t('alerts.state'), t('alerts.rule'), t('alerts.host'), t('alerts.selector'), t('alerts.startsAt'), t('alerts.endsAt'), t('alerts.reason'), t('alerts.createdBy')]} actions={t('alerts.actions')}>
        {(d) => (
          <>
            {[...d]
              .sort((a, b) => Number(b.active) - Number(a.active) || b.createdAt - a.createdAt)
              .map((s) => (
                <tr key={s.id} data-silence={s.id} data-active={s.active} className={s.active ? '' : 'is-off'}>
                  <td>
                    <span className={'badge ' + (s.active ? 'run' : '')}>{s.active ? t('alerts.silenceActive') : s.startsAt > Date.now() ? t('alerts.silenceLater') : t('alerts.silenceEnded')}</span>
                  </td>
                  <td>{ruleOf(s.ruleId)}</td>
                  <td>{hostName(s.hostId)}</td>
                  <td className="mono">{s.selector ?? '—'}</td>
                  <td>{i.date(s.startsAt)}</td>
                  <td>{i.date(s.endsAt)}</td>
                  <td>{s.reason}</td>
                  <td>{s.createdBy}</td>
                  <td>
                    <div className="row end cell-actions">
                    {canWrite && s.endsAt > Date.now() && (
                      <button
                        type="button"
                        className="small danger"
                        onClick={async () => {
                          if (!(await confirm(t('alerts.expireConfirm'), { okLabel: t('alerts.expire') }))) return;
                          try {
                            await del('/api/v1/alerts/silences/' + s.id);
                            silences.reload();
                          } catch (x) {
                            setErr(x);
                          }
                        }}
                      >
                        {t('alerts.expire')}
                      </button>
                    )}
                    </div>
                  </td>
                </tr>
              ))}
          </>
        )}
      </TableView>
    </section>
  );
}
