/** Notification channels (changes: admin): secrets shown only as "set"; test-send shows how it went. */
import { useState, type FormEvent } from 'react';
import { del, patch, post, type Me } from '../../api';
import { useI18n } from '../../i18n';
import { ErrorBox, Field, Modal, TableView, useAsync, useConfirm } from '../../ui';
import { CHANNEL_TYPES, SEVERITIES, list, loadChannels, type Channel, type Delivery } from './common';

export function ChannelsPage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const admin = me.role === 'admin' && !me.hostSelector;
  const canTest = me.role !== 'viewer';
  const channels = useAsync(loadChannels, []);
  const [err, setErr] = useState<unknown>();
  const [editing, setEditing] = useState<Channel | 'new'>();
  const [tests, setTests] = useState<Record<string, Delivery | 'busy' | { error: unknown }>>({});
  const run = async (fn: () => Promise<unknown>) => {
    setErr(undefined);
    try {
      await fn();
      channels.reload();
    } catch (e) {
      setErr(e);
    }
  };
  const test = async (c: Channel) => {
    setTests((x) => ({ ...x, [c.id]: 'busy' }));
    try {
      const d = await post<Delivery>(`/api/v1/alerts/channels/${c.id}/test`);
      setTests((x) => ({ ...x, [c.id]: d }));
    } catch (e) {
      setTests((x) => ({ ...x, [c.id]: { error: e } }));
    }
  };
  const summary = (c: Channel) => {
    const cfg = c.config;
    if (c.type === 'webhook') return String(cfg.url ?? '');
    if (c.type === 'email') return `${String(cfg.host ?? '')} → ${((cfg.to as string[]) ?? []).join(', ')}`;
    return '';
  };
  return (
    <section aria-labelledby="channels-title">
      <div className="page-head">
        <h1 id="channels-title">{t('alerts.channels')}</h1>
        {admin && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('alerts.newChannel')}
          </button>
        )}
      </div>
      {!admin && <p className="muted">{t('alerts.channelsAdminOnly')}</p>}
      {err !== undefined && <ErrorBox error={err} />}
      <TableView a={channels} empty={t('alerts.noChannels')} testid="channels-table" head={[t('alerts.name'), t('alerts.type'), t('alerts.target'), t('alerts.secrets'), t('alerts.minSeverity'), t('alerts.enabled')]} actions={t('alerts.actions')}>
        {(d) => (
          <>
            {d.map((c) => {
              const r = tests[c.id];
              return (
                <tr key={c.id} data-channel={c.id} className={c.enabled ? '' : 'is-off'}>
                  <td>{c.name}</td>
                  <td>{t(`alerts.ct.${c.type}` as 'alerts.ct.webhook')}</td>
                  <td className="mono small-text">{summary(c)}</td>
                  <td className="small-text">
                    {Object.entries(c.secret)
                      .filter(([, v]) => v.set)
                      .map(([k, v]) => (
                        <span key={k} className="chip" title={v.names?.join(', ')}>
                          {k}: {t('alerts.set')}
                        </span>
                      ))}
                  </td>
                  <td>{c.config.minSeverity ? i.tk('alerts.sev.' + String(c.config.minSeverity), String(c.config.minSeverity)) : '—'}</td>
                  <td>{c.enabled ? t('alerts.yes') : t('alerts.no')}</td>
                  <td>
                    <div className="row end">
                      {canTest && (
                        <button type="button" className="small" disabled={r === 'busy'} onClick={() => void test(c)}>
                          {t('alerts.testSend')}
                        </button>
                      )}
                      {admin && (
                        <>
                          <button type="button" className="small" onClick={() => setEditing(c)}>
                            {t('alerts.edit')}
                          </button>
                          <button
                            type="button"
                            className="small danger"
                            onClick={async () => {
                              if (await confirm(t('alerts.deleteChannelConfirm', { name: c.name }), { okLabel: t('action.delete') })) await run(() => del('/api/v1/alerts/channels/' + c.id));
                            }}
                          >
                            {t('action.delete')}
                          </button>
                        </>
                      )}
                    </div>
                    {r && (
                      <div className="test-result small-text" role="status" data-testid="test-result" data-status={r === 'busy' ? 'busy' : 'error' in r ? 'error' : r.status}>
                        {r === 'busy' ? (
                          t('alerts.testing')
                        ) : 'error' in r ? (
                          <ErrorBox error={r.error} />
                        ) : r.status === 'ok' ? (
                          <span className="badge ok">{t('alerts.testOk', { status: r.responseStatus ?? '—' })}</span>
                        ) : (
                          <span className="badge bad">{t('alerts.testFailed', { error: r.lastError ?? r.status })}</span>
                        )}
                      </div>
                    )}
                  </td>
                </tr>
              );
            })}
          </>
        )}
      </TableView>
      {editing && (
        <ChannelEditor
          channel={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            channels.reload();
          }}
        />
      )}
    </section>
  );
}

type CType = (typeof CHANNEL_TYPES)[number];

function ChannelEditor({ channel, onClose, onSaved }: { channel: Channel | undefined; onClose: () => void; onSaved: () => void }) {
  const { t } = useI18n();
  const cfg = channel?.config ?? {};
  const isSet = (k: string) => !!channel?.secret[k]?.set;
  const [name, setName] = useState(channel?.name ?? '');
  const [type, setType] = useState<CType>((channel?.type as CType) ?? 'webhook');
  const [enabled, setEnabled] = useState(channel?.enabled ?? true);
  const [minSeverity, setMinSeverity] = useState(String(cfg.minSeverity ?? ''));
  const [url, setUrl] = useState(String(cfg.url ?? ''));
  const [host, setHost] = useState(String(cfg.host ?? ''));
  const [port, setPort] = useState(cfg.port !== undefined ? String(cfg.port) : '');
  const [tls, setTls] = useState(String(cfg.tls ?? 'starttls'));
  const [from, setFrom] = useState(String(cfg.from ?? ''));
  const [to, setTo] = useState(((cfg.to as string[]) ?? []).join(', '));
  const [username, setUsername] = useState(String(cfg.username ?? ''));
  const [tlsVerify, setTlsVerify] = useState(cfg.tlsVerify !== false);
  // Secrets: never shown; blank keeps what is set.
  const [sec, setSec] = useState<Record<string, string>>({});
  const [clear, setClear] = useState<Record<string, boolean>>({});
  const [headers, setHeaders] = useState('');
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const secretFields: Record<CType, { key: string; label: string; required?: boolean }[]> = {
    webhook: [{ key: 'hmacKey', label: t('alerts.f.hmacKey') }],
    slack: [{ key: 'url', label: t('alerts.f.robotUrl'), required: true }],
    email: [{ key: 'password', label: t('alerts.f.password') }],
    dingtalk: [
      { key: 'url', label: t('alerts.f.robotUrl'), required: true },
      { key: 'signSecret', label: t('alerts.f.signSecret') },
    ],
    feishu: [
      { key: 'url', label: t('alerts.f.robotUrl'), required: true },
      { key: 'signSecret', label: t('alerts.f.signSecret') },
    ],
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    const config: Record<string, unknown> = {};
    if (minSeverity) config.minSeverity = minSeverity;
    if (type === 'webhook') config.url = url.trim();
    if (type === 'email') {
      config.host = host.trim();
      if (port) config.port = Number(port);
      config.tls = tls;
      config.from = from.trim();
      config.to = list(to);
      if (username.trim()) config.username = username.trim();
      config.tlsVerify = tlsVerify;
    }
    const secret: Record<string, unknown> = {};
    for (const f of secretFields[type]) {
      if (sec[f.key]) secret[f.key] = sec[f.key];
      else if (clear[f.key] && channel) secret[f.key] = null;
    }
    if (type === 'webhook') {
      if (headers.trim()) {
        const h: Record<string, string> = {};
        for (const line of headers.split('\n')) {
          const m = line.match(/^\s*([^:=\s]+)\s*[:=]\s*(.*?)\s*$/);
          if (m) h[m[1]!] = m[2]!;
        }
        secret.headers = h;
      } else if (clear.headers && channel) secret.headers = null;
    }
    try {
      if (channel) await patch('/api/v1/alerts/channels/' + channel.id, { name: name.trim(), enabled, config, secret });
      else await post('/api/v1/alerts/channels', { name: name.trim(), type, enabled, config, secret });
      onSaved();
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };

  const secretInput = (f: { key: string; label: string; required?: boolean }) => (
    <div key={f.key}>
      <Field label={f.label} hint={isSet(f.key) ? t('alerts.secretKeep') : undefined}>
        <input type="password" autoComplete="off" value={sec[f.key] ?? ''} onChange={(e) => setSec({ ...sec, [f.key]: e.target.value })} required={!!f.required && !isSet(f.key)} placeholder={isSet(f.key) ? t('alerts.set') : ''} />
      </Field>
      {isSet(f.key) && !f.required && (
        <label className="inline small-text">
          <input type="checkbox" checked={!!clear[f.key]} onChange={(e) => setClear({ ...clear, [f.key]: e.target.checked })} />
          {t('alerts.secretRemove')}
        </label>
      )}
    </div>
  );

  return (
    <Modal title={channel ? t('alerts.editChannel') : t('alerts.newChannel')} onClose={onClose}>
      <form className="alert-form" onSubmit={submit}>
        <div className="two">
          <Field label={t('alerts.name')}>
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoFocus />
          </Field>
          <Field label={t('alerts.type')}>
            <select aria-label={t('alerts.type')} value={type} onChange={(e) => setType(e.target.value as CType)} disabled={!!channel}>
              {CHANNEL_TYPES.map((c) => (
                <option key={c} value={c}>
                  {t(`alerts.ct.${c}`)}
                </option>
              ))}
            </select>
          </Field>
        </div>
        {type === 'webhook' && (
          <Field label={t('alerts.f.url')}>
            <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} required className="mono" />
          </Field>
        )}
        {type === 'email' && (
          <>
            <div className="three">
              <Field label={t('alerts.f.smtpHost')}>
                <input value={host} onChange={(e) => setHost(e.target.value)} required />
              </Field>
              <Field label={t('alerts.f.port')}>
                <input type="number" min={1} max={65535} value={port} onChange={(e) => setPort(e.target.value)} />
              </Field>
              <Field label={t('alerts.f.tls')}>
                <select aria-label={t('alerts.f.tls')} value={tls} onChange={(e) => setTls(e.target.value)}>
                  <option value="tls">{t('alerts.tls.tls')}</option>
                  <option value="starttls">{t('alerts.tls.starttls')}</option>
                  <option value="none">{t('alerts.tls.none')}</option>
                </select>
              </Field>
            </div>
            <div className="two">
              <Field label={t('alerts.f.from')}>
                <input value={from} onChange={(e) => setFrom(e.target.value)} required />
              </Field>
              <Field label={t('alerts.f.to')} hint={t('alerts.f.toHint')}>
                <input value={to} onChange={(e) => setTo(e.target.value)} required />
              </Field>
              <Field label={t('alerts.f.username')}>
                <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" />
              </Field>
            </div>
            <label className="inline">
              <input type="checkbox" checked={tlsVerify} onChange={(e) => setTlsVerify(e.target.checked)} />
              {t('alerts.f.tlsVerify')}
            </label>
          </>
        )}
        {secretFields[type].map(secretInput)}
        {type === 'webhook' && (
          <>
            <Field label={t('alerts.f.headers')} hint={isSet('headers') ? t('alerts.headersKeep', { names: channel?.secret.headers?.names?.join(', ') ?? '' }) : t('alerts.f.headersHint')}>
              <textarea rows={2} value={headers} onChange={(e) => setHeaders(e.target.value)} className="mono" />
            </Field>
            {isSet('headers') && (
              <label className="inline small-text">
                <input type="checkbox" checked={!!clear.headers} onChange={(e) => setClear({ ...clear, headers: e.target.checked })} />
                {t('alerts.secretRemove')}
              </label>
            )}
          </>
        )}
        <div className="two">
          <Field label={t('alerts.minSeverity')}>
            <select aria-label={t('alerts.minSeverity')} value={minSeverity} onChange={(e) => setMinSeverity(e.target.value)}>
              <option value="">{t('alerts.any')}</option>
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {t(`alerts.sev.${s}`)}
                </option>
              ))}
            </select>
          </Field>
        </div>
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
