import { useState, type FormEvent } from 'react';
import { get, qs } from '../api';
import { useI18n } from '../i18n';
import { Empty, ErrorBox, Field, View, useAsync } from '../ui';

interface Entry {
  seq: number;
  ts: number;
  actor: string | null;
  authMethod: string;
  ip: string | null;
  action: string;
  targets: string[];
  params: unknown;
  outcome: string;
  status: number | null;
}

export function AuditPage() {
  const i = useI18n();
  const { t } = i;
  const empty = { actor: '', host: '', action: '', from: '', to: '' };
  const [form, setForm] = useState(empty);
  const [filter, setFilter] = useState(empty);
  const [before, setBefore] = useState<number[]>([]);
  const beforeSeq = before[before.length - 1];
  const entries = useAsync(() => get<{ entries: Entry[] }>('/api/v1/audit' + qs({ ...filter, limit: 100, beforeSeq })), [filter, beforeSeq]);
  const [verify, setVerify] = useState<{ ok: boolean; entries: number; problems: { seq: number; problem: string }[] }>();
  const [verr, setVerr] = useState<unknown>();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBefore([]);
    setFilter({ ...form });
  };
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm((f) => ({ ...f, [k]: e.target.value }));
  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">{t('audit.title')}</h1>
        <button
          type="button"
          onClick={() =>
            get<typeof verify>('/api/v1/audit/verify')
              .then((v) => setVerify(v))
              .catch(setVerr)
          }
        >
          {t('audit.verify')}
        </button>
        {verify && (
          <span className={verify.ok ? 'on' : 'off'} role="status">
            {verify.ok ? t('audit.verifyOk', { n: verify.entries }) : t('audit.verifyBad', { n: verify.problems.length })}
          </span>
        )}
      </div>
      {verr !== undefined && <ErrorBox error={verr} />}
      <form className="row wrap card" onSubmit={submit}>
        <Field label={t('audit.actor')}>
          <input value={form.actor} onChange={set('actor')} />
        </Field>
        <Field label={t('audit.host')}>
          <input value={form.host} onChange={set('host')} />
        </Field>
        <Field label={t('audit.action')} hint="POST /api/v1/exec*">
          <input value={form.action} onChange={set('action')} />
        </Field>
        <Field label={t('audit.since')} hint="-24h">
          <input value={form.from} onChange={set('from')} className="w10" />
        </Field>
        <Field label={t('audit.until')}>
          <input value={form.to} onChange={set('to')} className="w10" />
        </Field>
        <button type="submit" className="primary">
          {t('action.filter')}
        </button>
      </form>
      <View a={entries}>
        {(d) =>
          d.entries.length === 0 ? (
            <Empty>{t('audit.none')}</Empty>
          ) : (
            <>
              <table className="table" data-testid="audit-table">
                <thead>
                  <tr>
                    <th className="num">#</th>
                    <th>{t('audit.time')}</th>
                    <th>{t('audit.actor')}</th>
                    <th>{t('audit.action')}</th>
                    <th>{t('audit.targets')}</th>
                    <th>{t('audit.outcome')}</th>
                    <th>{t('audit.params')}</th>
                  </tr>
                </thead>
                <tbody>
                  {d.entries.map((e) => (
                    <tr key={e.seq}>
                      <td className="num">{e.seq}</td>
                      <td>{i.date(e.ts)}</td>
                      <td>
                        {e.actor ?? '—'} <span className="muted">{e.authMethod} {e.ip}</span>
                      </td>
                      <td className="mono">{e.action}</td>
                      <td className="mono ellipsis" title={e.targets.join(', ')}>{e.targets.length ? e.targets.map((x) => x.slice(0, 10)).join(', ') : '—'}</td>
                      <td>
                        <span className={'badge ' + (e.outcome === 'ok' || e.outcome === 'success' ? 'ok' : 'bad')}>{i.tk('outcome.' + e.outcome, e.outcome)}</span> {e.status ?? ''}
                      </td>
                      <td className="mono ellipsis params" title={JSON.stringify(e.params)}>
                        {e.params === null || e.params === undefined ? '' : JSON.stringify(e.params)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div className="row">
                {before.length > 0 && (
                  <button type="button" onClick={() => setBefore((b) => b.slice(0, -1))}>
                    {t('action.newer')}
                  </button>
                )}
                {d.entries.length === 100 && (
                  <button type="button" onClick={() => setBefore((b) => [...b, d.entries[d.entries.length - 1]!.seq])}>
                    {t('action.older')}
                  </button>
                )}
              </div>
            </>
          )
        }
      </View>
    </section>
  );
}
