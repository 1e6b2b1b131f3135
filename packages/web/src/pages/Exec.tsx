import { useMemo, useState, type FormEvent } from 'react';
import { get, post, qs, type Host, type Job, type Me } from '../api';
import { useI18n } from '../i18n';
import { useRoute } from '../router';
import { ErrorBox, Field, View, useAsync } from '../ui';
import { JobLive } from './Jobs';

/** Splits a command line into arguments: whitespace separates, '…' and "…" quote, \ escapes. */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let k = 0; k < line.length; k++) {
    const c = line[k]!;
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && k + 1 < line.length) cur += line[++k];
      else cur += c;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (c === '\\' && k + 1 < line.length) {
      cur += line[++k];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

type TargetMode = 'hosts' | 'selector' | 'glob';

export function ExecPage({ me }: { me: Me }) {
  const i = useI18n();
  const { t } = i;
  const route = useRoute();
  const preset = route.query.get('hosts')?.split(',').filter(Boolean) ?? [];
  const hosts = useAsync(() => get<{ hosts: Host[] }>('/api/v1/hosts' + qs({ limit: 10000 })), []);
  const [mode, setMode] = useState<TargetMode>('hosts');
  const [picked, setPicked] = useState<Set<string>>(new Set(preset));
  const [filter, setFilter] = useState('');
  const [selector, setSelector] = useState('');
  const [glob, setGlob] = useState('');
  const [command, setCommand] = useState('');
  const [shell, setShell] = useState(false);
  const [timeout, setTimeoutSec] = useState('60');
  const [user, setUser] = useState('');
  const [cwd, setCwd] = useState('');
  const [strategy, setStrategy] = useState('parallel');
  const [batch, setBatch] = useState('1');
  const [continueOnError, setContinueOnError] = useState(false);
  const [err, setErr] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [jobId, setJobId] = useState<string>();

  const execHosts = useMemo(() => (hosts.data?.hosts ?? []).filter((h) => h.capabilities.includes('exec')), [hosts.data]);
  const shown = useMemo(() => execHosts.filter((h) => !filter || h.hostname.toLowerCase().includes(filter.toLowerCase()) || Object.entries(h.labels).some(([k, v]) => `${k}=${v}`.includes(filter))), [execHosts, filter]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErr(undefined);
    const argv = shell ? [command] : splitArgs(command);
    if (!argv.length || !command.trim()) return setErr(new Error(t('exec.noCommand')));
    const target = mode === 'hosts' ? { hosts: [...picked] } : mode === 'selector' ? { selector } : { glob };
    if (mode === 'hosts' && picked.size === 0) return setErr(new Error(t('exec.noHosts')));
    setBusy(true);
    try {
      const r = await post<{ job: Job }>('/api/v1/exec', {
        target,
        command: argv,
        ...(shell ? { shell: true } : {}),
        ...(Number(timeout) > 0 ? { timeoutSec: Number(timeout) } : {}),
        ...(user ? { user } : {}),
        ...(cwd ? { cwd } : {}),
        strategy: { kind: strategy, ...(strategy === 'rolling' ? { batchSize: Math.max(1, Number(batch) || 1) } : {}), ...(continueOnError ? { continueOnError: true } : {}) },
        mode: 'async',
      });
      setJobId(r.job.id);
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="exec-title">
      <div className="page-head">
        <h1 id="exec-title">{t('exec.title')}</h1>
      </div>
      <form className="card exec-form" onSubmit={submit}>
        <fieldset>
          <legend>{t('exec.target')}</legend>
          <div role="radiogroup" aria-label={t('exec.target')} className="seg">
            {(['hosts', 'selector', 'glob'] as const).map((m) => (
              <button key={m} type="button" role="radio" aria-checked={mode === m} onClick={() => setMode(m)}>
                {t(`exec.by.${m}`)}
              </button>
            ))}
          </div>
          {mode === 'hosts' && (
            <View a={hosts}>
              {() => (
                <div className="host-picker">
                  <div className="row">
                    <input type="search" aria-label={t('exec.filterHosts')} placeholder={t('exec.filterHosts')} value={filter} onChange={(e) => setFilter(e.target.value)} />
                    <button type="button" className="small" onClick={() => setPicked(new Set([...picked, ...shown.filter((h) => h.online).map((h) => h.id)]))}>
                      {t('exec.pickAll')}
                    </button>
                    <button type="button" className="small" onClick={() => setPicked(new Set())}>
                      {t('exec.pickNone')}
                    </button>
                    <span className="muted">{t('exec.picked', { n: picked.size })}</span>
                  </div>
                  {execHosts.length === 0 ? (
                    <p className="muted">{t('exec.noExecHosts')}</p>
                  ) : (
                    <ul className="pick-list">
                      {shown.slice(0, 500).map((h) => (
                        <li key={h.id}>
                          <label>
                            <input
                              type="checkbox"
                              checked={picked.has(h.id)}
                              onChange={(e) => {
                                const n = new Set(picked);
                                if (e.target.checked) n.add(h.id);
                                else n.delete(h.id);
                                setPicked(n);
                              }}
                            />
                            <span className={'dot ' + (h.online ? 'on' : 'off')} aria-hidden="true" /> {h.hostname}
                            <span className="muted"> {Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(' ')}</span>
                          </label>
                        </li>
                      ))}
                    </ul>
                  )}
                </div>
              )}
            </View>
          )}
          {mode === 'selector' && (
            <Field label={t('exec.selector')} hint={t('exec.selectorHint')}>
              <input value={selector} onChange={(e) => setSelector(e.target.value)} placeholder="env=prod,role in (web,api)" />
            </Field>
          )}
          {mode === 'glob' && (
            <Field label={t('exec.glob')}>
              <input value={glob} onChange={(e) => setGlob(e.target.value)} placeholder="web-*" />
            </Field>
          )}
        </fieldset>
        <Field label={t('exec.command')} hint={shell ? t('exec.shellHint') : t('exec.argvHint')}>
          <input className="mono" name="command" value={command} onChange={(e) => setCommand(e.target.value)} placeholder="uptime" autoComplete="off" spellCheck={false} />
        </Field>
        <div className="row wrap">
          <label className="inline">
            <input type="checkbox" checked={shell} onChange={(e) => setShell(e.target.checked)} /> {t('exec.shell')}
          </label>
          <label className="inline">
            {t('exec.timeout')} <input type="number" min="1" className="w6" value={timeout} onChange={(e) => setTimeoutSec(e.target.value)} />
          </label>
          <label className="inline">
            {t('exec.user')} <input className="w10" value={user} onChange={(e) => setUser(e.target.value)} />
          </label>
          <label className="inline">
            {t('exec.cwd')} <input className="w10" value={cwd} onChange={(e) => setCwd(e.target.value)} placeholder="/" />
          </label>
          <label className="inline">
            {t('exec.strategy')}
            <select value={strategy} onChange={(e) => setStrategy(e.target.value)}>
              {['parallel', 'sequence', 'rolling', 'evenodd'].map((s) => (
                <option key={s} value={s}>
                  {t(`strategy.${s as 'parallel'}`)}
                </option>
              ))}
            </select>
          </label>
          {strategy === 'rolling' && (
            <label className="inline">
              {t('exec.batch')} <input type="number" min="1" className="w6" value={batch} onChange={(e) => setBatch(e.target.value)} />
            </label>
          )}
          {strategy !== 'parallel' && (
            <label className="inline">
              <input type="checkbox" checked={continueOnError} onChange={(e) => setContinueOnError(e.target.checked)} /> {t('exec.continueOnError')}
            </label>
          )}
        </div>
        {err !== undefined && <ErrorBox error={err} />}
        <div className="row end">
          <button type="submit" className="primary" disabled={busy || me.role === 'viewer'}>
            {t('exec.run')}
          </button>
        </div>
      </form>
      {jobId && <JobLive key={jobId} id={jobId} me={me} compact />}
    </section>
  );
}
