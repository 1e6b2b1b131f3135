import { useState, type FormEvent } from 'react';
import { ApiError, post, setCsrf } from '../api';
import { useI18n } from '../i18n';
import { Field, errorText } from '../ui';
import { Toolbar, type Theme } from '../toolbar';

export function LoginPage({ onLoggedIn, theme, setTheme }: { onLoggedIn: () => Promise<void>; theme: Theme; setTheme: (t: Theme) => void }) {
  const i = useI18n();
  const { t } = i;
  const [username, setUsername] = useState('admin');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    try {
      const r = await post<{ csrfToken: string }>('/api/v1/auth/login', { username, password, ...(needCode && code ? { code } : {}) }, { noAuthRedirect: true });
      setCsrf(r.csrfToken);
      await onLoggedIn();
    } catch (x) {
      if (x instanceof ApiError && x.code === 'totp_required') setNeedCode(true);
      else setErr(x);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login-wrap">
      <Toolbar theme={theme} setTheme={setTheme} />
      <form className="card login" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{t('app.name')}</h1>
        <p className="muted">{t('login.subtitle')}</p>
        <Field label={t('login.username')}>
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
        </Field>
        <Field label={t('login.password')}>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required autoFocus />
        </Field>
        {needCode && (
          <Field label={t('login.code')} hint={t('login.codeHint')}>
            <input name="code" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} required autoFocus />
          </Field>
        )}
        {err !== undefined && (
          <p className="error-text" role="alert">
            {errorText(i, err)}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {t('login.submit')}
        </button>
        <details className="first-run">
          <summary>{t('login.firstRun')}</summary>
          <p>{t('login.firstRunText')}</p>
          <code>data/initial-admin-password</code>
        </details>
      </form>
    </div>
  );
}
