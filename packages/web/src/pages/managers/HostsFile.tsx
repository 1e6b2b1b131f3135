/** /etc/hosts: the entries, edited and checked here, saved against the version read (the agent keeps a backup). */
import { useEffect, useState } from 'react';
import { api, get } from '../../api';
import { useI18n } from '../../i18n';
import { useAsync } from '../../ui';
import { MView, hostApi, useAction, SLOW } from './common';

interface Line {
  ip: string;
  names: string;
  comment: string;
}
interface HostsFile {
  entries: { ip: string; names: string[]; comment?: string }[];
  content: string;
  sha256: string;
}
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export function HostsFileTab({ id, canAct }: { id: string; canAct: boolean }) {
  const { t } = useI18n();
  const f = useAsync(() => get<HostsFile>(hostApi(id, '/hosts-file')), [id]);
  const [lines, setLines] = useState<Line[]>([]);
  const act = useAction();
  const [saved, setSaved] = useState('');
  useEffect(() => {
    if (f.data) setLines(f.data.entries.map((e) => ({ ip: e.ip, names: e.names.join(' '), comment: e.comment ?? '' })));
  }, [f.data]);
  const problems = lines.flatMap((l, n) => {
    const out: string[] = [];
    if (!(IPV4.test(l.ip) || (l.ip.includes(':') && IPV6.test(l.ip)))) out.push(t('hosts.badIp', { n: n + 1 }));
    const names = l.names.split(/\s+/).filter(Boolean);
    if (!names.length || !names.every((x) => NAME.test(x))) out.push(t('hosts.badName', { n: n + 1 }));
    return out;
  });
  const set = (n: number, k: keyof Line, v: string) => setLines(lines.map((l, m) => (m === n ? { ...l, [k]: v } : l)));
  return (
    <div data-testid="hosts-tab">
      <MView a={f}>
        {(d) => (
          <>
            <table className="table" data-testid="hosts-entries">
              <thead>
                <tr>
                  <th>{t('hosts.ip')}</th>
                  <th>{t('hosts.names')}</th>
                  <th>{t('hosts.comment')}</th>
                  {canAct && <th />}
                </tr>
              </thead>
              <tbody>
                {lines.map((l, n) => (
                  <tr key={n}>
                    <td><input className="mono" aria-label={`${t('hosts.ip')} ${n + 1}`} value={l.ip} readOnly={!canAct} onChange={(e) => set(n, 'ip', e.target.value.trim())} /></td>
                    <td><input className="mono" aria-label={`${t('hosts.names')} ${n + 1}`} value={l.names} readOnly={!canAct} onChange={(e) => set(n, 'names', e.target.value)} style={{ width: '100%' }} /></td>
                    <td><input aria-label={`${t('hosts.comment')} ${n + 1}`} value={l.comment} readOnly={!canAct} onChange={(e) => set(n, 'comment', e.target.value)} /></td>
                    {canAct && (
                      <td>
                        <button type="button" className="small danger" onClick={() => setLines(lines.filter((_, m) => m !== n))}>{t('hosts.remove')}</button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
            {problems.length > 0 && (
              <ul className="bad" role="alert" data-testid="hosts-problems">
                {problems.map((p) => <li key={p}>{p}</li>)}
              </ul>
            )}
            {canAct && (
              <div className="row wrap">
                <button type="button" onClick={() => setLines([...lines, { ip: '', names: '', comment: '' }])}>{t('hosts.add')}</button>
                <button
                  type="button"
                  disabled={problems.length > 0 || act.busy}
                  onClick={() =>
                    void act.run(
                      async () => {
                        const r = await api<{ backup: string }>('PUT', hostApi(id, '/hosts-file'), {
                          body: { expectSha256: d.sha256, entries: lines.map((l) => ({ ip: l.ip, names: l.names.split(/\s+/).filter(Boolean), ...(l.comment.trim() ? { comment: l.comment.trim() } : {}) })) },
                          ...SLOW.agent,
                        });
                        setSaved(r.backup);
                      },
                      t('action.save'),
                      f.reload,
                    )
                  }
                >
                  {t('action.save')}
                </button>
                <span className="muted">{t('hosts.backup')}</span>
              </div>
            )}
            {act.note}
            {saved && <p className="muted" data-testid="hosts-saved">{t('hosts.saved', { backup: saved })}</p>}
            <details>
              <summary>{t('hosts.text')}</summary>
              <pre className="output">{d.content}</pre>
            </details>
          </>
        )}
      </MView>
    </div>
  );
}
