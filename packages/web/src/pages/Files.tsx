import { useRef, useState, type FormEvent } from 'react';
import { del, get, post, qs, request, type Host, type Me } from '../api';
import { useI18n } from '../i18n';
import { href } from '../router';
import { Empty, ErrorBox, View, useAsync, useConfirm } from '../ui';

interface Entry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  owner: string;
  group: string;
  size: number;
  mtime: number;
  target?: string;
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : dir + '/' + name);
const parent = (p: string) => p.replace(/\/[^/]+\/?$/, '') || '/';
const modeText = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

export function FilesPage({ hostId, me }: { hostId: string; me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const key = 'tether.files.' + hostId;
  const [path, setPath] = useState(() => localStorage.getItem(key) ?? '/');
  const [input, setInput] = useState(path);
  const [actionErr, setActionErr] = useState<unknown>();
  const [busy, setBusy] = useState('');
  const fileInput = useRef<HTMLInputElement>(null);
  const host = useAsync(() => get<Host>(`/api/v1/hosts/${encodeURIComponent(hostId)}`), [hostId]);
  const base = `/api/v1/hosts/${encodeURIComponent(hostId)}/files`;
  const list = useAsync(() => get<{ path: string; entries: Entry[]; truncated: boolean }>(base + qs({ path })), [hostId, path]);
  const open = (p: string) => {
    setPath(p);
    setInput(p);
    localStorage.setItem(key, p);
  };
  const act = async (label: string, fn: () => Promise<unknown>) => {
    setActionErr(undefined);
    setBusy(label);
    try {
      await fn();
      list.reload();
    } catch (e) {
      setActionErr(e);
    } finally {
      setBusy('');
    }
  };
  const upload = async (files: FileList | null) => {
    if (!files?.length) return;
    for (const f of [...files]) await act(t('files.uploading', { name: f.name }), () => request('PUT', base + '/content' + qs({ path: join(path, f.name) }), { raw: f, headers: { 'content-type': 'application/octet-stream' } }));
    if (fileInput.current) fileInput.current.value = '';
  };
  const mkdir = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const name = new FormData(e.currentTarget).get('dir') as string;
    if (name) await act(t('files.mkdir'), () => post(base + '/mkdir', { path: join(path, name) }));
    e.currentTarget.reset();
  };
  const remove = async (en: Entry) => {
    if (!(await confirm(t('files.deleteConfirm', { path: join(path, en.name) }), { okLabel: t('action.delete') }))) return;
    await act(t('action.delete'), () => del(base + qs({ path: join(path, en.name), ...(en.type === 'dir' ? { recursive: true } : {}) })));
  };
  const crumbs = path.split('/').filter(Boolean);

  return (
    <section aria-labelledby="files-title">
      <View a={host}>
        {(h) => (
          <>
            <p>
              <a href={href('/hosts/' + h.id)}>← {h.hostname}</a>
            </p>
            <div className="page-head">
              <h1 id="files-title">{t('files.title', { host: h.hostname })}</h1>
            </div>
            {!h.capabilities.includes('files') ? (
              <Empty>{t('files.notAllowed')}</Empty>
            ) : (
              <>
                <form
                  className="row"
                  onSubmit={(e) => {
                    e.preventDefault();
                    open(input.trim() || '/');
                  }}
                >
                  <input aria-label={t('files.path')} className="mono grow" value={input} onChange={(e) => setInput(e.target.value)} />
                  <button type="submit">{t('files.go')}</button>
                </form>
                <nav aria-label={t('files.path')} className="crumbs">
                  <button type="button" className="link" onClick={() => open('/')}>
                    /
                  </button>
                  {crumbs.map((c, n) => (
                    <span key={n}>
                      <button type="button" className="link" onClick={() => open('/' + crumbs.slice(0, n + 1).join('/'))}>
                        {c}
                      </button>
                      /
                    </span>
                  ))}
                </nav>
                {me.role !== 'viewer' && (
                  <div className="row wrap">
                    <label className="button">
                      {t('files.upload')}
                      <input ref={fileInput} type="file" multiple className="sr-only" onChange={(e) => void upload(e.target.files)} />
                    </label>
                    <form className="row" onSubmit={mkdir}>
                      <input name="dir" aria-label={t('files.newDir')} placeholder={t('files.newDir')} />
                      <button type="submit">{t('files.mkdir')}</button>
                    </form>
                    {busy && <span className="muted" role="status">{busy}…</span>}
                  </div>
                )}
                {actionErr !== undefined && <ErrorBox error={actionErr} />}
                <View a={list}>
                  {(d) => (
                    <table className="table" data-testid="files-table">
                      <thead>
                        <tr>
                          <th>{t('files.name')}</th>
                          <th className="num">{t('files.size')}</th>
                          <th>{t('files.mode')}</th>
                          <th>{t('files.owner')}</th>
                          <th>{t('files.modified')}</th>
                          <th>
                            <span className="sr-only">{t('files.actions')}</span>
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {path !== '/' && (
                          <tr>
                            <td colSpan={6}>
                              <button type="button" className="link" onClick={() => open(parent(path))}>
                                ..
                              </button>
                            </td>
                          </tr>
                        )}
                        {d.entries.length === 0 && (
                          <tr>
                            <td colSpan={6} className="muted">
                              {t('files.empty')}
                            </td>
                          </tr>
                        )}
                        {d.entries.map((en) => (
                          <tr key={en.name}>
                            <td>
                              {en.type === 'dir' ? (
                                <button type="button" className="link" onClick={() => open(join(path, en.name))}>
                                  📁 {en.name}/
                                </button>
                              ) : (
                                <span>
                                  {en.type === 'link' ? '🔗 ' : '📄 '}
                                  {en.name}
                                  {en.target ? ` → ${en.target}` : ''}
                                </span>
                              )}
                            </td>
                            <td className="num">{en.type === 'dir' ? '—' : i.bytes(en.size)}</td>
                            <td className="mono">{modeText(en.mode)}</td>
                            <td>
                              {en.owner}:{en.group}
                            </td>
                            <td>{i.date(en.mtime)}</td>
                            <td className="row end">
                              {en.type !== 'dir' && (
                                <a className="button small" href={base + '/content' + qs({ path: join(path, en.name) })} download={en.name}>
                                  {t('files.download')}
                                </a>
                              )}
                              {me.role !== 'viewer' && (
                                <button type="button" className="small danger" onClick={() => void remove(en)} aria-label={t('files.deleteNamed', { name: en.name })}>
                                  {t('action.delete')}
                                </button>
                              )}
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  )}
                </View>
              </>
            )}
          </>
        )}
      </View>
    </section>
  );
}
