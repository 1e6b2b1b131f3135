import { useState, type FormEvent } from 'react';
import { del, get, patch, post, qs, type Me } from '../api';
import { useI18n, type Key } from '../i18n';
import { ErrorBox, Field, Modal, RevokeButton, TableView, useAsync, useConfirm } from '../ui';

interface User {
  id: string;
  username: string;
  role: string;
  hostSelector: string | null;
  disabled: boolean;
  totpEnabled: boolean;
  locked: boolean;
  failedLogins: number;
  createdAt: number;
}
interface Session {
  id: string;
  username: string;
  createdAt: number;
  lastUsedAt: number;
  expiresAt: number;
  ip: string;
  userAgent: string;
  current: boolean;
}
interface ApiToken {
  id: string;
  username: string;
  name: string;
  scope: string;
  hostSelector: string | null;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const ROLES = ['viewer', 'operator', 'admin'] as const;

export function UsersPage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const users = useAsync(() => get<{ users: User[] }>('/api/v1/users').then((r) => r.users), []);
  const [err, setErr] = useState<unknown>();
  const [adding, setAdding] = useState(false);
  const [resetFor, setResetFor] = useState<User>();
  const run = async (fn: () => Promise<unknown>) => {
    setErr(undefined);
    try {
      await fn();
      users.reload();
    } catch (e) {
      setErr(e);
    }
  };
  return (
    <section aria-labelledby="users-title">
      <div className="page-head">
        <h1 id="users-title">{t('users.title')}</h1>
        <button type="button" className="primary" onClick={() => setAdding(true)}>
          {t('users.add')}
        </button>
      </div>
      {err !== undefined && <ErrorBox error={err} />}
      <TableView a={users} empty={t('state.none')} testid="users-table" head={[t('login.username'), t('users.role'), t('users.hosts'), t('users.state'), t('users.created')]} actions={t('files.actions')}>
        {(rows) =>
          rows.map((u) => (
            <tr key={u.id} className={u.disabled ? 'is-off' : ''}>
              <td>{u.username}</td>
              <td>
                <select aria-label={t('users.roleOf', { name: u.username })} value={u.role} disabled={u.id === me.id} onChange={(e) => void run(() => patch('/api/v1/users/' + u.id, { role: e.target.value }))}>
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {t(`role.${r}`)}
                    </option>
                  ))}
                </select>
              </td>
              <td className="mono">{u.hostSelector ?? t('users.allHosts')}</td>
              <td>
                {[u.disabled && t('users.disabled'), u.locked && t('users.locked'), u.totpEnabled && t('users.twoFactor')].filter(Boolean).join(' · ') || t('users.active')}
              </td>
              <td>{i.date(u.createdAt)}</td>
              <td>
                <div className="row end wrap cell-actions">
                {u.id !== me.id && (
                  <button type="button" className="small" onClick={() => void run(() => patch('/api/v1/users/' + u.id, { disabled: !u.disabled }))}>
                    {u.disabled ? t('users.enable') : t('users.disable')}
                  </button>
                )}
                <button type="button" className="small" onClick={() => setResetFor(u)}>
                  {t('users.resetPassword')}
                </button>
                {u.locked && (
                  <button type="button" className="small" onClick={() => void run(() => post(`/api/v1/users/${u.id}/unlock`))}>
                    {t('users.unlock')}
                  </button>
                )}
                {u.totpEnabled && (
                  <button
                    type="button"
                    className="small"
                    onClick={async () => {
                      if (await confirm(t('users.reset2faConfirm', { name: u.username }))) await run(() => del(`/api/v1/users/${u.id}/totp`));
                    }}
                  >
                    {t('users.reset2fa')}
                  </button>
                )}
                {u.id !== me.id && (
                  <button
                    type="button"
                    className="small danger"
                    onClick={async () => {
                      if (await confirm(t('users.deleteConfirm', { name: u.username }), { okLabel: t('action.delete') })) await run(() => del('/api/v1/users/' + u.id));
                    }}
                  >
                    {t('action.delete')}
                  </button>
                )}
                </div>
              </td>
            </tr>
          ))
        }
      </TableView>
      {adding && <AddUser done={() => (setAdding(false), users.reload())} />}
      {resetFor && <ResetPassword user={resetFor} done={() => setResetFor(undefined)} />}
      <h2>{t('sessions.allTitle')}</h2>
      <Sessions all />
      <h2>{t('tokens.allTitle')}</h2>
      <ApiTokens all />
    </section>
  );
}

function AddUser({ done }: { done: () => void }) {
  const { t } = useI18n();
  const [f, setF] = useState({ username: '', password: '', role: 'viewer', hostSelector: '' });
  const [err, setErr] = useState<unknown>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await post('/api/v1/users', { username: f.username, password: f.password, role: f.role, ...(f.hostSelector ? { hostSelector: f.hostSelector } : {}) });
      done();
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <Modal title={t('users.add')} onClose={done}>
      <form onSubmit={submit}>
        <Field label={t('login.username')}>
          <input required value={f.username} onChange={(e) => setF({ ...f, username: e.target.value })} autoFocus />
        </Field>
        <Field label={t('login.password')} hint={t('users.passwordHint')}>
          <input required type="password" autoComplete="new-password" minLength={10} value={f.password} onChange={(e) => setF({ ...f, password: e.target.value })} />
        </Field>
        <Field label={t('users.role')}>
          <select value={f.role} onChange={(e) => setF({ ...f, role: e.target.value })}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {t(`role.${r}`)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t('users.hosts')} hint={t('users.hostsHint')}>
          <input value={f.hostSelector} onChange={(e) => setF({ ...f, hostSelector: e.target.value })} placeholder="env=staging" />
        </Field>
        {err !== undefined && <ErrorBox error={err} />}
        <div className="row end">
          <button type="button" onClick={done}>
            {t('action.cancel')}
          </button>
          <button type="submit" className="primary">
            {t('users.add')}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function ResetPassword({ user, done }: { user: User; done: () => void }) {
  const { t } = useI18n();
  const [pw, setPw] = useState('');
  const [err, setErr] = useState<unknown>();
  return (
    <Modal title={t('users.resetPasswordOf', { name: user.username })} onClose={done}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await post(`/api/v1/users/${user.id}/password`, { password: pw });
            done();
          } catch (x) {
            setErr(x);
          }
        }}
      >
        <Field label={t('profile.newPassword')} hint={t('users.passwordHint')}>
          <input required type="password" autoComplete="new-password" minLength={10} value={pw} onChange={(e) => setPw(e.target.value)} autoFocus />
        </Field>
        {err !== undefined && <ErrorBox error={err} />}
        <div className="row end">
          <button type="button" onClick={done}>
            {t('action.cancel')}
          </button>
          <button type="submit" className="primary">
            {t('action.save')}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function Sessions({ all }: { all?: boolean }) {
  const i = useI18n();
  const { t } = i;
  const s = useAsync(() => get<{ sessions: Session[] }>('/api/v1/auth/sessions' + qs({ all: all || undefined })).then((r) => r.sessions), [all]);
  const [err, setErr] = useState<unknown>();
  return (
    <>
      {err !== undefined && <ErrorBox error={err} />}
      <TableView a={s} empty={t('state.none')} testid="sessions" head={[...(all ? [t('login.username')] : []), t('sessions.started'), t('sessions.lastUsed'), t('sessions.address'), t('sessions.agent')]} actions={t('files.actions')}>
        {(rows) =>
          rows.map((x) => (
            <tr key={x.id}>
              {all && <td>{x.username}</td>}
              <td>{i.date(x.createdAt)}</td>
              <td>{i.ago(x.lastUsedAt)}</td>
              <td>{x.ip}</td>
              <td className="ellipsis" title={x.userAgent}>{x.userAgent}</td>
              <td>
                {x.current ? (
                  <span className="badge ok">{t('sessions.current')}</span>
                ) : (
                  <RevokeButton question={t('sessions.revokeConfirm')} revoke={() => del('/api/v1/auth/sessions/' + x.id)} onError={setErr} done={s.reload} />
                )}
              </td>
            </tr>
          ))
        }
      </TableView>
    </>
  );
}

export function ApiTokens({ all, canCreate }: { all?: boolean; canCreate?: boolean }) {
  const i = useI18n();
  const { t } = i;
  const tokens = useAsync(() => get<{ tokens: ApiToken[] }>('/api/v1/api-tokens' + qs({ all: all || undefined })).then((r) => r.tokens), [all]);
  const [err, setErr] = useState<unknown>();
  const [f, setF] = useState({ name: '', scope: 'read', hostSelector: '', days: '90' });
  const [shown, setShown] = useState<string>();
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setErr(undefined);
    try {
      const r = await post<{ token: string }>('/api/v1/api-tokens', { name: f.name, scope: f.scope, ...(f.hostSelector ? { hostSelector: f.hostSelector } : {}), expiresInSec: Math.round(Number(f.days) * 86400) });
      setShown(r.token);
      tokens.reload();
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <div>
      {canCreate && (
        <form className="row wrap card" onSubmit={create}>
          <Field label={t('tokens.name')}>
            <input required value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} />
          </Field>
          <Field label={t('tokens.scope')}>
            <select value={f.scope} onChange={(e) => setF({ ...f, scope: e.target.value })}>
              {['read', 'write', 'execute'].map((s) => (
                <option key={s} value={s}>
                  {t(`scope.${s}` as Key)}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t('users.hosts')}>
            <input value={f.hostSelector} onChange={(e) => setF({ ...f, hostSelector: e.target.value })} placeholder="env=prod" />
          </Field>
          <Field label={t('tokens.days')}>
            <input type="number" min="1" className="w6" value={f.days} onChange={(e) => setF({ ...f, days: e.target.value })} />
          </Field>
          <button type="submit" className="primary">
            {t('tokens.create')}
          </button>
        </form>
      )}
      {shown && (
        <div className="card">
          <p>{t('tokens.shownOnce')}</p>
          <pre className="cmd mono">{shown}</pre>
        </div>
      )}
      {err !== undefined && <ErrorBox error={err} />}
      <TableView a={tokens} empty={t('tokens.none')} testid="api-tokens" head={[...(all ? [t('login.username')] : []), t('tokens.name'), t('tokens.scope'), t('users.hosts'), t('tokens.expires'), t('sessions.lastUsed')]} actions={t('files.actions')}>
        {(rows) =>
          rows.map((x) => (
            <tr key={x.id} className={x.revokedAt ? 'is-off' : ''}>
              {all && <td>{x.username}</td>}
              <td>{x.name}</td>
              <td>{i.tk('scope.' + x.scope, x.scope)}</td>
              <td className="mono">{x.hostSelector ?? t('users.allHosts')}</td>
              <td>{x.revokedAt ? t('enroll.revoked') : i.date(x.expiresAt)}</td>
              <td>{x.lastUsedAt ? i.ago(x.lastUsedAt) : '—'}</td>
              <td>
                {!x.revokedAt && (
                  <RevokeButton question={t('tokens.revokeConfirm', { name: x.name })} revoke={() => del('/api/v1/api-tokens/' + x.id)} onError={setErr} done={tokens.reload} />
                )}
              </td>
            </tr>
          ))
        }
      </TableView>
    </div>
  );
}
