import { useState, type FormEvent } from 'react';
import { del, get, post } from '../api';
import { useI18n } from '../i18n';
import { CopyButton, ErrorBox, Field, RevokeButton, TableView, useAsync } from '../ui';

interface Token {
  id: string;
  name: string;
  labels: Record<string, string>;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  singleUse: boolean;
  uses: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export function EnrollPage() {
  const i = useI18n();
  const { t } = i;
  const tokens = useAsync(() => get<{ tokens: Token[] }>('/api/v1/enrollment-tokens').then((r) => r.tokens), []);
  const [name, setName] = useState('');
  const [labels, setLabels] = useState('');
  const [hours, setHours] = useState('24');
  const [singleUse, setSingleUse] = useState(true);
  const [created, setCreated] = useState<{ token: string; hubFingerprint?: string }>();
  const [err, setErr] = useState<unknown>();

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setErr(undefined);
    try {
      const r = await post<{ token: string; hubFingerprint?: string }>('/api/v1/enrollment-tokens', {
        ...(name ? { name } : {}),
        labels: parseLabels(labels),
        expiresInSec: Math.max(60, Math.round(Number(hours) * 3600)),
        singleUse,
      });
      setCreated(r);
      tokens.reload();
    } catch (x) {
      setErr(x);
    }
  };
  const hub = location.origin;
  const command = created
    ? `TETHER_TOKEN=${created.token} tether agent --hub ${hub} --state /var/lib/tether-agent${created.hubFingerprint ? ` --hub-fingerprint ${created.hubFingerprint}` : ''}`
    : '';

  return (
    <section aria-labelledby="enroll-title">
      <div className="page-head">
        <h1 id="enroll-title">{t('enroll.title')}</h1>
      </div>
      <form className="card" onSubmit={create}>
        <div className="row wrap">
          <Field label={t('enroll.name')}>
            <input value={name} onChange={(e) => setName(e.target.value)} />
          </Field>
          <Field label={t('enroll.labels')} hint="env=prod,role=web">
            <input value={labels} onChange={(e) => setLabels(e.target.value)} />
          </Field>
          <Field label={t('enroll.expiresHours')}>
            <input type="number" min="0.02" step="any" className="w6" value={hours} onChange={(e) => setHours(e.target.value)} />
          </Field>
          <label className="inline">
            <input type="checkbox" checked={singleUse} onChange={(e) => setSingleUse(e.target.checked)} /> {t('enroll.singleUse')}
          </label>
        </div>
        {err !== undefined && <ErrorBox error={err} />}
        <button type="submit" className="primary">
          {t('enroll.create')}
        </button>
      </form>
      {created && (
        <div className="card" data-testid="enroll-command">
          <h2>{t('enroll.shownOnce')}</h2>
          <p>{t('enroll.runThis')}</p>
          <pre className="cmd mono">{command}</pre>
          <CopyButton text={command} />
          <p className="muted">{t('enroll.envNote')}</p>
        </div>
      )}
      <h2>{t('enroll.tokens')}</h2>
      <TableView a={tokens} empty={t('enroll.none')} testid="enroll-tokens" head={[t('enroll.name'), t('enroll.labels'), t('enroll.uses'), t('enroll.expires'), t('jobs.by')]} actions={t('files.actions')}>
        {(rows) =>
          rows.map((x) => (
            <tr key={x.id} className={x.revokedAt ? 'is-off' : ''}>
              <td>{x.name || x.id.slice(0, 10)}</td>
              <td>{Object.entries(x.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '—'}</td>
              <td>
                {x.uses}
                {x.singleUse ? ` (${t('enroll.singleUse')})` : ''}
              </td>
              <td>{x.revokedAt ? t('enroll.revoked') : i.date(x.expiresAt)}</td>
              <td>{x.createdBy}</td>
              <td>
                {!x.revokedAt && (
                  <RevokeButton question={t('enroll.revokeConfirm', { name: x.name || x.id })} revoke={() => del('/api/v1/enrollment-tokens/' + x.id)} onError={setErr} done={tokens.reload} />
                )}
              </td>
            </tr>
          ))
        }
      </TableView>
    </section>
  );
}
