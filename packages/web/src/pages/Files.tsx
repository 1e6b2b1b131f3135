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

const inside = (p: string, root: string) => p === root || p.startsWith(root.endsWith('/') ? root : root + '/');

export function FilesPage({ hostId, me }: { hostId: string; me: Me }) {
  const host = useAsync(() => get<Host>(`/api/v1/hosts/${encodeURIComponent(hostId)}`), [hostId]);
  return <View a={host}>{(h) => <FilesOf key={h.id} h={h} me={me} />}</View>;
}

/**
 * The folders the agent allows (its file_roots, from the host's facts) are shortcuts, and the page
 * opens at the first of them, or where this browser last was inside one. Without the list (an
 * agent from before it was reported) it opens at `/` and the agent says what it refuses.
 */
function FilesOf({ h, me }: { h: Host; me: Me }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const roots = h.facts.access?.fileRoots ?? [];
  const key = 'tether.files.' + h.id;
  const [path, setPath] = useState(() => {
    const saved = localStorage.getItem(key);
    if (saved && (roots.length === 0 || roots.some((r) => inside(saved, r)))) return saved;
    return roots[0] ?? '/';
  });
  const [input, setInput] = useState(path);
  const [actionErr, setActionErr] = useState<unknown>();
  const [busy, setBusy] = useState('');
  const fileInput = useRef<HTMLInputElement>(null);
  const base = `/api/v1/hosts/${encodeURIComponent(h.id)}/files`;
  const allowed = h.capabilities.includes('files');
  const list = useAsync(() => (allowed ? get<{ path: string; entries: Entry[]; truncated: boolean }>(base + qs({ path })) : Promise.resolve({ path, entries: [], truncated: false })), [h.id, path]);
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
    // An upload takes as long as its bytes take: no answer deadline.
    for (const f of [...files]) await act(t('files.uploading', { name: f.name }), () => request('PUT', base + '/content' + qs({ path: join(path, f.name) }), { raw: f, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 0 }));
    if (fileInput.current) fileInput.current.value = '';
  };
  const mkdir = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    // The event's currentTarget is gone once the handler has awaited: keep the form.
    const form = e.currentTarget;
    const name = (new FormData(form).get('dir') as string).trim();
    if (!name) return;
    await act(t('files.mkdir'), () => post(base + '/mkdir', { path: join(path, name) }));
    form.reset();
  };
  const remove = async (en: Entry) => {
    if (!(await confirm(t('files.deleteConfirm', { path: join(path, en.name) }), { okLabel: t('action.delete') }))) return;
    // a folder's whole tree may take the agent a while: the hub's own limit for a round trip
    await act(t('action.delete'), () => del(base + qs({ path: join(path, en.name), ...(en.type === 'dir' ? { recursive: true } : {}) }), { timeoutMs: 75_000 }));
  };
  const crumbs = path.split('/').filter(Boolean);
  const atRoot = path === '/' || roots.includes(path);

  return (
    <section aria-labelledby="files-title">
      <p>
        <a href={href('/hosts/' + h.id)}>← {h.hostname}</a>
      </p>
      <div className="page-head">
        <h1 id="files-title">{t('files.title', { host: h.hostname })}</h1>
      </div>
      {!allowed ? (
        <Empty>{t('files.notAllowed')}</Empty>
      ) : (
        <>
          {roots.length > 0 && (
            <nav aria-label={t('files.roots')} className="row wrap" data-testid="file-roots">
              <span className="muted">{t('files.roots')}:</span>
              {roots.map((r) => (
                <button key={r} type="button" className="small mono" aria-current={path === r ? 'location' : undefined} onClick={() => open(r)}>
                  {r}
                </button>
              ))}
            </nav>
          )}
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              open(input.trim() || roots[0] || '/');
            }}
          >
            <input aria-label={t('files.path')} className="mono grow" value={input} onChange={(e) => setInput(e.target.value)} data-testid="files-path" />
            <button type="submit">{t('files.go')}</button>
          </form>
          <nav aria-label={t('files.crumbs')} className="crumbs">
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
                    <th data-label="">
                      <span className="sr-only">{t('files.actions')}</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {!atRoot && (
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
                    <tr key={en.name} data-name={en.name}>
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
                      <td>
                        <div className="row end cell-actions">
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
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </View>
        </>
      )}
    </section>
  );
}
