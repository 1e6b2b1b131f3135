import { useRef, useState, type FormEvent } from 'react';
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

interface ArtifactsInfo {
  publicUrl: string | null;
  latest: string | null;
  capabilities: string[];
  artifacts: { version: string; arch: string; file: string; size: number; sha256: string; url: string }[];
  /** a self-issued hub certificate's pins: the line fetches install.sh pinned to this key */
  tlsPin?: { pubkey: string; fingerprint: string } | null;
}

export interface InstallOptions {
  allow: string[];
  fileRoot: string;
  cpu: string;
  memory: string;
}

/** What the CLI checks too (packages/cli/src/install-line.ts): a value that fails stays out of the line. */
export const INSTALL_CHECKS = {
  fileRoot: (s: string) => s.startsWith('/') && s.length <= 4096 && !/[\0\n\r]/.test(s),
  cpu: (s: string) => /^[1-9]\d{0,4}%$/.test(s) && Number(s.slice(0, -1)) <= 10000,
  memory: (s: string) => /^[1-9]\d{0,9}[KMG]$/i.test(s),
};

/** A word as sh reads it: left alone when it holds only safe characters, else single-quoted. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The same line as `tether token create --install-line`. */
export function installLine(hub: string, token: string, o: InstallOptions, capabilities: string[], pubkeyPin?: string): string {
  const allow = capabilities.filter((c) => c === 'metrics' || o.allow.includes(c));
  const args = ['--token', token];
  if (allow.length > 1) args.push('--allow', allow.join(','));
  const fileRoot = o.fileRoot.trim();
  const cpu = o.cpu.trim();
  const memory = o.memory.trim().toUpperCase();
  if (fileRoot && INSTALL_CHECKS.fileRoot(fileRoot)) args.push('--file-root', fileRoot);
  if (cpu && INSTALL_CHECKS.cpu(cpu)) args.push('--cpu', cpu);
  if (memory && INSTALL_CHECKS.memory(memory)) args.push('--memory', memory);
  const pin = pubkeyPin ? ` -k --pinnedpubkey ${shellQuote(pubkeyPin)}` : '';
  return `curl -fsSL${pin} ${shellQuote(hub.replace(/\/+$/, '') + '/install.sh')} | sudo sh -s -- ${args.map(shellQuote).join(' ')}`;
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
  const arts = useAsync(() => get<ArtifactsInfo>('/api/v1/agent-artifacts'), []);
  const [opts, setOpts] = useState<InstallOptions>({ allow: [], fileRoot: '', cpu: '', memory: '' });
  const lineRef = useRef<HTMLPreElement>(null);

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
  const capabilities = arts.data?.capabilities ?? ['metrics'];
  const line = created ? installLine(arts.data?.publicUrl ?? hub, created.token, opts, capabilities, arts.data?.tlsPin?.pubkey) : '';
  const bad = (k: 'fileRoot' | 'cpu' | 'memory') => opts[k].trim() !== '' && !INSTALL_CHECKS[k](opts[k].trim());
  // Newest version first (the hub's order), each with its architectures.
  const versions: [string, string[]][] = [];
  for (const a of arts.data?.artifacts ?? []) {
    const v = versions.find(([x]) => x === a.version);
    if (v) v[1].push(a.arch);
    else versions.push([a.version, [a.arch]]);
  }

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
          <h3>{t('enroll.installTitle')}</h3>
          <p>{t('enroll.installThis')}</p>
          <fieldset className="install-allow">
            <legend>{t('enroll.allow')}</legend>
            {capabilities.map((c) => (
              <label key={c} className="inline">
                <input
                  type="checkbox"
                  checked={c === 'metrics' || opts.allow.includes(c)}
                  disabled={c === 'metrics'}
                  onChange={(e) => setOpts({ ...opts, allow: e.target.checked ? [...opts.allow, c] : opts.allow.filter((x) => x !== c) })}
                />{' '}
                {i.tk('cap.' + c, c)}
                {c === 'metrics' ? ` (${t('enroll.metricsAlways')})` : ''}
              </label>
            ))}
          </fieldset>
          <div className="row wrap">
            <Field label={t('enroll.fileRoot')} hint={bad('fileRoot') ? t('enroll.badFileRoot') : '/srv'}>
              <input value={opts.fileRoot} aria-invalid={bad('fileRoot')} onChange={(e) => setOpts({ ...opts, fileRoot: e.target.value })} />
            </Field>
            <Field label={t('enroll.cpu')} hint={bad('cpu') ? t('enroll.badCpu') : '20%'}>
              <input className="w6" value={opts.cpu} aria-invalid={bad('cpu')} onChange={(e) => setOpts({ ...opts, cpu: e.target.value })} />
            </Field>
            <Field label={t('enroll.memory')} hint={bad('memory') ? t('enroll.badMemory') : '128M'}>
              <input className="w6" value={opts.memory} aria-invalid={bad('memory')} onChange={(e) => setOpts({ ...opts, memory: e.target.value })} />
            </Field>
          </div>
          <pre className="cmd mono" data-testid="install-line" ref={lineRef}>
            {line}
          </pre>
          <CopyButton text={line} selectIn={lineRef} />
          <h3>{t('enroll.installedTitle')}</h3>
          <p>{t('enroll.runThis')}</p>
          <pre className="cmd mono">{command}</pre>
          <CopyButton text={command} />
          <p className="muted">{t('enroll.envNote')}</p>
        </div>
      )}
      {arts.error && <ErrorBox error={arts.error} />}
      {arts.data && (
        <div className="card" data-testid="enroll-artifacts">
          <h2>{t('enroll.artifacts')}</h2>
          {versions.length === 0 ? (
            <p role="status">
              {t('enroll.noArtifacts')} <code>npm run package:agent</code> <span className="muted">{t('enroll.noArtifactsDir')}</span>
            </p>
          ) : (
            <ul>
              {versions.slice(0, 5).map(([v, archs], n) => (
                <li key={v}>
                  <span className="mono">{v}</span>
                  {n === 0 ? ` (${t('enroll.artifactsNewest')})` : ''}: {archs.map((a) => `Linux ${a}`).join(', ')}
                </li>
              ))}
            </ul>
          )}
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
