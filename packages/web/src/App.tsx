import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { get, hubAnswering, maySession, onHubAnswering, post, setCsrf, setOnUnauthorized, setStepUpPrompt, setTotpEnabled, type Me } from './api';
import { useI18n } from './i18n';
import { Toolbar, type Theme } from './toolbar';
import { live, type LiveStatus } from './live';
import { href, matchPage, useRoute, type Page } from './router';
import { Boundary, ConfirmProvider, ErrorBox, Field, Loading, Modal, errorText, useCardLabels } from './ui';
import { LoginPage } from './pages/Login';
import { OverviewPage } from './pages/Overview';
import { HostPage } from './pages/Host';
import { ExecPage } from './pages/Exec';
import { JobsPage, JobPage } from './pages/Jobs';
import { FilesPage } from './pages/Files';
import { EnrollPage } from './pages/Enroll';
import { AuditPage } from './pages/Audit';
import { UsersPage } from './pages/Users';
import { ProfilePage } from './pages/Profile';
import { AlertsNavBadge, AlertsSection } from './pages/alerts/Section';
import { TerminalPage, TerminalSessionsPage, ReplayPage } from './pages/TerminalRoutes';


function initialTheme(): Theme {
  const s = localStorage.getItem('tether.theme');
  if (s === 'light' || s === 'dark') return s;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function App() {
  const i = useI18n();
  const { t } = i;
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [liveStatus, setLiveStatus] = useState<LiveStatus>(live.status);
  const [answering, setAnswering] = useState(hubAnswering);
  const [stepUp, setStepUp] = useState<{ totp: boolean; resolve: (ok: boolean) => void }>();

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('tether.theme', theme);
  }, [theme]);

  const loadMe = useCallback(async () => {
    // Without the cookie that comes with a session there is nothing to ask: the answer would be 401.
    if (!maySession()) return setMe(null);
    try {
      const m = await get<Me>('/api/v1/auth/me', { noAuthRedirect: true });
      setCsrf(m.csrfToken);
      setTotpEnabled(m.totpEnabled);
      setMe(m);
    } catch {
      // 401, or a hub that does not answer (the banner says which): the login page either way.
      setMe(null);
    }
  }, []);

  useEffect(() => {
    void loadMe();
    setOnUnauthorized(() => setMe(null));
    setStepUpPrompt((o) => new Promise<boolean>((resolve) => setStepUp({ totp: o.totp, resolve })));
    const offHub = onHubAnswering(setAnswering);
    const offLive = live.onStatus((s) => setLiveStatus(s));
    return () => {
      offHub();
      offLive();
    };
  }, [loadMe]);

  useEffect(() => {
    if (me) live.start();
    else live.stop();
  }, [me]);

  const stalled = !answering && (
    <div className="banner stalled" role="alert" data-testid="hub-stalled-banner">
      {t('hub.notResponding')}
    </div>
  );
  if (me === undefined) return <Loading />;
  if (me === null)
    return (
      <>
        {stalled}
        <LoginPage onLoggedIn={loadMe} theme={theme} setTheme={setTheme} />
      </>
    );

  const logout = async () => {
    await post('/api/v1/auth/logout').catch(() => {});
    setMe(null);
  };

  return (
    <ConfirmProvider>
      <Shell me={me} theme={theme} setTheme={setTheme} logout={logout} liveStatus={liveStatus} stalled={stalled} />
      {stepUp && (
        <StepUpDialog
          totp={stepUp.totp}
          done={(ok) => {
            stepUp.resolve(ok);
            setStepUp(undefined);
          }}
        />
      )}
      <span hidden data-testid="lang">{i.lang}</span>
    </ConfirmProvider>
  );
}

function StepUpDialog({ totp, done }: { totp: boolean; done: (ok: boolean) => void }) {
  const i = useI18n();
  const { t } = i;
  const [value, setValue] = useState('');
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await post('/api/v1/auth/step-up', totp ? { code: value } : { password: value }, { noAuthRedirect: true });
      done(true);
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title={t('stepup.title')} onClose={() => done(false)}>
      <form onSubmit={submit}>
        <p>{t('stepup.why')}</p>
        <Field label={totp ? t('login.code') : t('login.password')}>
          <input
            autoFocus
            type={totp ? 'text' : 'password'}
            inputMode={totp ? 'numeric' : undefined}
            autoComplete={totp ? 'one-time-code' : 'current-password'}
            value={value}
            onChange={(e) => setValue(e.target.value)}
            required
          />
        </Field>
        {err !== undefined && <p className="error-text" role="alert">{errorText(i, err)}</p>}
        <div className="row end">
          <button type="button" onClick={() => done(false)}>
            {t('action.cancel')}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {t('stepup.confirm')}
          </button>
        </div>
      </form>
    </Modal>
  );
}


/** What each page of router.ts's PAGES shows: typed over the list, so a page in the list cannot be left out. */
const PAGE_VIEWS: Record<Page, (p: Record<string, string>, me: Me, query: URLSearchParams) => ReactNode> = {
  '/': () => <OverviewPage />,
  '/exec': (_p, me, q) => <ExecPage key={q.toString()} me={me} />,
  '/jobs': () => <JobsPage />,
  '/jobs/:id': (p, me) => <JobPage id={p.id!} me={me} />,
  '/hosts/:id': (p, me) => <HostPage id={p.id!} me={me} />,
  '/hosts/:id/:tab': (p, me) => <HostPage id={p.id!} me={me} tab={p.tab!} />,
  '/hosts/:id/files': (p, me) => <FilesPage hostId={p.id!} me={me} />,
  '/hosts/:id/terminal': (p, me) => <TerminalPage hostId={p.id!} me={me} />,
  '/alerts': (_p, me) => <AlertsSection sub={undefined} me={me} />,
  '/alerts/rules': (_p, me) => <AlertsSection sub="rules" me={me} />,
  '/alerts/channels': (_p, me) => <AlertsSection sub="channels" me={me} />,
  '/alerts/silences': (_p, me) => <AlertsSection sub="silences" me={me} />,
  '/enroll': () => <EnrollPage />,
  '/audit': () => <AuditPage />,
  '/terminals': () => <TerminalSessionsPage />,
  '/terminals/:id': (p) => <ReplayPage id={p.id!} />,
  '/users': (_p, me) => <UsersPage me={me} />,
  '/profile': (_p, me) => <ProfilePage me={me} />,
};

function Shell({ me, theme, setTheme, logout, liveStatus, stalled }: { me: Me; theme: Theme; setTheme: (t: Theme) => void; logout: () => void; liveStatus: LiveStatus; stalled: ReactNode }) {
  const { t } = useI18n();
  const route = useRoute();
  const [p0] = route.parts;
  const [menuOpen, setMenuOpen] = useState(false);
  const mainRef = useRef<HTMLElement>(null);
  useCardLabels(mainRef);
  // A link followed from the menu closes it.
  useEffect(() => setMenuOpen(false), [route.path]);
  const admin = me.role === 'admin';
  const nav: [string, ReactNode, boolean][] = [
    ['/', t('nav.overview'), true],
    ['/exec', t('nav.exec'), me.role !== 'viewer'],
    ['/jobs', t('nav.jobs'), true],
    ['/alerts', <>{t('nav.alerts')}<AlertsNavBadge /></>, true],
    ['/enroll', t('nav.enroll'), admin],
    ['/audit', t('nav.audit'), admin],
    ['/terminals', t('nav.terminals'), admin],
    ['/users', t('nav.users'), admin],
    ['/profile', t('nav.profile'), true],
  ];
  const active = '/' + (p0 ?? '');
  const m = matchPage(route.parts);
  const page = m ? PAGE_VIEWS[m.page](m.params, me, route.query) : <ErrorBox error={new Error(t('state.notFound'))} />;
  return (
    <div className="shell">
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        {t('nav.skip')}
      </a>
      <header className={'top' + (menuOpen ? ' open' : '')}>
        <a className="brand" href={href('/')}>
          {t('app.name')}
        </a>
        <button type="button" className="menu-button" aria-expanded={menuOpen} aria-controls="main-menu" onClick={() => setMenuOpen((o) => !o)} data-testid="menu-button">
          <span aria-hidden="true">☰</span> {t('nav.menu')}
        </button>
        <div className="menu" id="main-menu">
          <nav aria-label={t('nav.main')}>
            {nav
              .filter((n) => n[2])
              .map(([path, label]) => (
                <a key={path} href={href(path)} aria-current={active === path || (path === '/' && p0 === 'hosts') ? 'page' : undefined}>
                  {label}
                </a>
              ))}
          </nav>
          <Toolbar theme={theme} setTheme={setTheme} />
          <span className="who" title={t(('role.' + me.role) as 'role.admin')}>
            {me.username} · {t(('role.' + me.role) as 'role.admin')}
          </span>
          <button type="button" className="small" onClick={logout}>
            {t('nav.logout')}
          </button>
        </div>
      </header>
      {stalled}
      {liveStatus === 'offline' && (
        <div className="banner" role="status" data-testid="offline-banner">
          {t('live.offline')}
        </div>
      )}
      <main id="main" tabIndex={-1} ref={mainRef}>
        <Boundary resetKey={route.path}>{page}</Boundary>
      </main>
    </div>
  );
}
