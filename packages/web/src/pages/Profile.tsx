import { useState, type FormEvent } from 'react';
import { del, get, post, type Me } from '../api';
import { useI18n } from '../i18n';
import { ErrorBox, Field, View, useAsync, useConfirm } from '../ui';
import { ApiTokens, Sessions } from './Users';

export function ProfilePage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const logins = useAsync(() => get<{ logins: { ts: number; kind: string; ip: string; userAgent: string; outcome: string }[] }>('/api/v1/auth/logins?limit=20'), []);
  return (
    <section aria-labelledby="profile-title">
      <div className="page-head">
        <h1 id="profile-title">{t('profile.title')}</h1>
      </div>
      <dl className="facts">
        <div>
          <dt>{t('login.username')}</dt>
          <dd>{me.username}</dd>
        </div>
        <div>
          <dt>{t('users.role')}</dt>
          <dd>{t(`role.${me.role}`)}</dd>
        </div>
        <div>
          <dt>{t('users.hosts')}</dt>
          <dd className="mono">{me.hostSelector ?? t('users.allHosts')}</dd>
        </div>
        <div>
          <dt>{t('profile.stepUpUntil')}</dt>
          <dd>{me.auth.stepUpUntil && me.auth.stepUpUntil > Date.now() ? i.time(me.auth.stepUpUntil) : '—'}</dd>
        </div>
      </dl>
      <div className="two">
        <ChangePassword />
        <TwoFactor me={me} />
      </div>
      <h2>{t('sessions.title')}</h2>
      <Sessions />
      <h2>{t('tokens.title')}</h2>
      <ApiTokens canCreate />
      <h2>{t('profile.logins')}</h2>
      <View a={logins}>
        {(d) => (
          <table className="table">
            <thead>
              <tr>
                <th>{t('audit.time')}</th>
                <th>{t('profile.kind')}</th>
                <th>{t('sessions.address')}</th>
                <th>{t('audit.outcome')}</th>
              </tr>
            </thead>
            <tbody>
              {d.logins.map((l, n) => (
                <tr key={n}>
                  <td>{i.date(l.ts)}</td>
                  <td>{i.tk('loginKind.' + l.kind, l.kind)}</td>
                  <td>{l.ip}</td>
                  <td>{i.tk('outcome.' + l.outcome, l.outcome)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </View>
    </section>
  );
}

function ChangePassword() {
  const { t } = useI18n();
  const [cur, setCur] = useState('');
  const [next, setNext] = useState('');
  // On by default: a password changed because it may be known to someone else should not leave
  // that someone the API tokens made with it.
  const [revokeTokens, setRevokeTokens] = useState(true);
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState<unknown>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErr(undefined);
    setMsg('');
    try {
      await post('/api/v1/auth/password', { currentPassword: cur, newPassword: next, revokeApiTokens: revokeTokens });
      setMsg(revokeTokens ? t('profile.passwordChangedTokens') : t('profile.passwordChanged'));
      setCur('');
      setNext('');
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <form className="card" onSubmit={submit}>
      <h2>{t('profile.password')}</h2>
      <Field label={t('profile.currentPassword')}>
        <input type="password" autoComplete="current-password" required value={cur} onChange={(e) => setCur(e.target.value)} />
      </Field>
      <Field label={t('profile.newPassword')} hint={t('users.passwordHint')}>
        <input type="password" autoComplete="new-password" required minLength={10} value={next} onChange={(e) => setNext(e.target.value)} />
      </Field>
      <label className="inline">
        <input type="checkbox" checked={revokeTokens} onChange={(e) => setRevokeTokens(e.target.checked)} /> {t('profile.revokeTokens')}
      </label>
      {err !== undefined && <ErrorBox error={err} />}
      {msg && <p role="status">{msg}</p>}
      <button type="submit" className="primary">
        {t('action.save')}
      </button>
    </form>
  );
}

function TwoFactor({ me }: { me: Me }) {
  const { t } = useI18n();
  const confirm = useConfirm();
  const [on, setOn] = useState(me.totpEnabled);
  const [enrol, setEnrol] = useState<{ secret: string; qrSvg: string; uri: string }>();
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState<string[]>();
  const [err, setErr] = useState<unknown>();
  const start = async () => {
    setErr(undefined);
    try {
      setEnrol(await post('/api/v1/auth/totp'));
    } catch (x) {
      setErr(x);
    }
  };
  const confirmCode = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const r = await post<{ recoveryCodes: string[] }>('/api/v1/auth/totp/confirm', { code });
      setCodes(r.recoveryCodes);
      setEnrol(undefined);
      setOn(true);
    } catch (x) {
      setErr(x);
    }
  };
  const disable = async () => {
    if (!(await confirm(t('twofa.disableConfirm')))) return;
    try {
      await del('/api/v1/auth/totp');
      setOn(false);
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <div className="card">
      <h2>{t('twofa.title')}</h2>
      <p>{on ? t('twofa.on') : t('twofa.off')}</p>
      {err !== undefined && <ErrorBox error={err} />}
      {!on && !enrol && (
        <button type="button" className="primary" onClick={start}>
          {t('twofa.enable')}
        </button>
      )}
      {on && (
        <button type="button" className="danger" onClick={disable}>
          {t('twofa.disable')}
        </button>
      )}
      {enrol && (
        <form onSubmit={confirmCode}>
          <p>{t('twofa.scan')}</p>
          <img className="qr" alt={t('twofa.qrAlt')} src={'data:image/svg+xml;utf8,' + encodeURIComponent(enrol.qrSvg)} width={180} height={180} />
          <p className="mono small-text">{enrol.secret}</p>
          <Field label={t('login.code')}>
            <input inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required value={code} onChange={(e) => setCode(e.target.value)} />
          </Field>
          <button type="submit" className="primary">
            {t('twofa.confirm')}
          </button>
        </form>
      )}
      {codes && (
        <div>
          <p>{t('twofa.recovery')}</p>
          <pre className="cmd mono">{codes.join('\n')}</pre>
        </div>
      )}
    </div>
  );
}
