import { Fragment, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { get, qs } from '../api';
import { useI18n, type I18n, type Key } from '../i18n';
import { href } from '../router';
import { Empty, ErrorBox, Field, View, useAsync } from '../ui';
import { endReason } from '../terminal-reasons';

/** What an entry names: hosts, users, paths, units… `host` is the host a path or unit is on; `result` marks what the action made (the job an exec created). */
export interface Subject {
  type: string;
  id: string;
  name?: string;
  host?: string;
  role?: 'result';
}
export interface Entry {
  seq: number;
  ts: number;
  actor: string | null;
  authMethod: string;
  ip: string | null;
  action: string;
  targets: string[];
  params: unknown;
  outcome: string;
  status: number | null;
  /** absent on entries recorded before the hub named them */
  subjects?: Subject[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const body = (e: Entry) => obj(obj(e.params).body);
/** A route parameter (`:unit`, `:cid`…), from entries whose params the hub kept. */
const param = (e: Entry, k: string) => {
  const v = obj(obj(e.params).params)[k];
  return typeof v === 'string' ? v : undefined;
};
const query = (e: Entry, k: string) => {
  const v = obj(obj(e.params).query)[k];
  return typeof v === 'string' ? v : undefined;
};
const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);

interface Ctx {
  i: I18n;
  hostName: (id: string) => string;
}

/**
 * One sentence per action: its words (a dictionary key), the subject types its {what} names (with
 * where to find them in the request for entries that have no subjects), and its own parts.
 */
interface Sentence {
  key: Key;
  what?: { types: string[]; from?: (e: Entry) => string | undefined };
  parts?: (e: Entry, c: Ctx) => Record<string, ReactNode>;
}

const verbOf = (action: string) => action.slice(action.lastIndexOf('/') + 1);
const changes = (e: Entry, c: Ctx): ReactNode => {
  const b = body(e);
  const out: string[] = [];
  for (const [k, v] of Object.entries(b)) {
    if (k === 'disabled' || k === 'enabled') out.push(c.i.t((k === 'enabled') === (v === true) ? 'audit.change.enabled' : 'audit.change.disabled'));
    else out.push(c.i.t('audit.change.set', { field: k, value: typeof v === 'string' ? v : JSON.stringify(v) }));
  }
  return out.join(c.i.t('audit.and')) || '—';
};
const shellWord = (a: string) => (a === '' ? "''" : /^[\w@%+=:,./-]+$/.test(a) ? a : "'" + a.replace(/'/g, `'\\''`) + "'");
const code = (text: string | undefined) => (text ? <code>{text}</code> : null);
const powerWord = (c: Ctx, a: unknown) => c.i.tk('audit.power.' + String(a), String(a ?? ''));

const SENTENCES: Record<string, Sentence> = {
  'POST /api/v1/exec': {
    key: 'audit.s.exec',
    parts: (e) => {
      const b = body(e);
      // argv as a shell would need it typed (a shell command is one string already)
      const cmd = Array.isArray(b.command) ? (b.command as unknown[]).map((a) => shellWord(String(a))).join(' ') : str(b.command);
      return { command: code(cmd ?? '…') };
    },
  },
  'POST /api/v1/bundles/:id/run': { key: 'audit.s.bundleRun', what: { types: ['bundle'], from: (e) => param(e, 'id') } },
  'POST /api/v1/bundles': { key: 'audit.s.bundleAdd', what: { types: ['bundle'], from: (e) => str(body(e).name) } },
  'DELETE /api/v1/bundles/:id': { key: 'audit.s.bundleDelete', what: { types: ['bundle'], from: (e) => param(e, 'id') } },
  'POST /api/v1/jobs/:id/cancel': { key: 'audit.s.jobCancel', what: { types: ['job'], from: (e) => param(e, 'id') } },
  'POST /api/v1/tasks/:id/kill': { key: 'audit.s.taskKill', what: { types: ['task', 'job'], from: (e) => param(e, 'id') } },
  'POST /api/v1/auth/login': { key: 'audit.s.login' },
  'POST /api/v1/auth/logout': { key: 'audit.s.logout' },
  'POST /api/v1/auth/password': { key: 'audit.s.password' },
  'POST /api/v1/auth/step-up': { key: 'audit.s.stepUp' },
  'POST /api/v1/auth/totp': { key: 'audit.s.totpStart' },
  'POST /api/v1/auth/totp/confirm': { key: 'audit.s.totpOn' },
  'DELETE /api/v1/auth/totp': { key: 'audit.s.totpOff' },
  'DELETE /api/v1/auth/sessions/:id': { key: 'audit.s.sessionEnd', what: { types: ['session'], from: (e) => param(e, 'id') } },
  'POST /api/v1/api-tokens': { key: 'audit.s.tokenAdd', what: { types: ['token'], from: (e) => str(body(e).name) } },
  'DELETE /api/v1/api-tokens/:id': { key: 'audit.s.tokenRevoke', what: { types: ['token'], from: (e) => param(e, 'id') } },
  'POST /api/v1/enrollment-tokens': { key: 'audit.s.enrollAdd', what: { types: ['enroll-token'], from: (e) => str(body(e).name) } },
  'DELETE /api/v1/enrollment-tokens/:id': { key: 'audit.s.enrollRevoke', what: { types: ['enroll-token'], from: (e) => param(e, 'id') } },
  'POST /api/v1/users': { key: 'audit.s.userAdd', what: { types: ['user'], from: (e) => str(body(e).username) } },
  'PATCH /api/v1/users/:id': { key: 'audit.s.userChange', what: { types: ['user'], from: (e) => param(e, 'id') }, parts: (e, c) => ({ changes: changes(e, c) }) },
  'DELETE /api/v1/users/:id': { key: 'audit.s.userDelete', what: { types: ['user'], from: (e) => param(e, 'id') } },
  'POST /api/v1/users/:id/password': { key: 'audit.s.userPassword', what: { types: ['user'], from: (e) => param(e, 'id') } },
  'DELETE /api/v1/users/:id/totp': { key: 'audit.s.userTotp', what: { types: ['user'], from: (e) => param(e, 'id') } },
  'POST /api/v1/users/:id/unlock': { key: 'audit.s.userUnlock', what: { types: ['user'], from: (e) => param(e, 'id') } },
  'PATCH /api/v1/hosts/:id': { key: 'audit.s.hostChange', parts: (e, c) => ({ changes: changes(e, c) }) },
  'DELETE /api/v1/hosts/:id': { key: 'audit.s.hostDelete' },
  'POST /api/v1/hosts/:id/revoke': { key: 'audit.s.hostRevoke' },
  'POST /api/v1/hosts/:id/cron': { key: 'audit.s.cronAdd', what: { types: ['cron'], from: (e) => str(body(e).name) } },
  'PATCH /api/v1/hosts/:id/cron/:entry': { key: 'audit.s.cronChange', what: { types: ['cron'], from: (e) => param(e, 'entry') } },
  'DELETE /api/v1/hosts/:id/cron/:entry': { key: 'audit.s.cronDelete', what: { types: ['cron'], from: (e) => param(e, 'entry') } },
  'POST /api/v1/hosts/:id/docker/containers': { key: 'audit.s.containerAdd', what: { types: ['container'], from: (e) => str(body(e).name) ?? str(body(e).image) } },
  'DELETE /api/v1/hosts/:id/docker/containers/:cid': { key: 'audit.s.containerDelete', what: { types: ['container'], from: (e) => param(e, 'cid') } },
  'DELETE /api/v1/hosts/:id/docker/images': { key: 'audit.s.imageDelete', what: { types: ['image'], from: (e) => query(e, 'ref') ?? str(body(e).ref) } },
  'POST /api/v1/hosts/:id/docker/images/import': { key: 'audit.s.imageImport', what: { types: ['image'], from: (e) => str(body(e).ref) ?? str(body(e).image) } },
  'POST /api/v1/hosts/:id/docker/images/pull': { key: 'audit.s.imagePull', what: { types: ['image'], from: (e) => str(body(e).ref) ?? str(body(e).image) } },
  'POST /api/v1/hosts/:id/docker/prune': { key: 'audit.s.prune' },
  'DELETE /api/v1/hosts/:id/files': { key: 'audit.s.fileDelete', what: { types: ['path'], from: (e) => query(e, 'path') } },
  'PUT /api/v1/hosts/:id/files/content': { key: 'audit.s.fileUpload', what: { types: ['path'], from: (e) => query(e, 'path') } },
  'POST /api/v1/hosts/:id/files/fetch': { key: 'audit.s.fileFetch', what: { types: ['path'], from: (e) => str(body(e).path) ?? str(body(e).url) } },
  'POST /api/v1/hosts/:id/files/mkdir': { key: 'audit.s.mkdir', what: { types: ['path'], from: (e) => str(body(e).path) } },
  'PUT /api/v1/hosts/:id/hosts-file': { key: 'audit.s.hostsFile' },
  'POST /api/v1/hosts/:id/power': { key: 'audit.s.power', parts: (e, c) => ({ power: powerWord(c, body(e).action) }) },
  'POST /api/v1/hosts/:id/power/schedule': { key: 'audit.s.powerSchedule', parts: (e, c) => ({ power: powerWord(c, body(e).action), minutes: str(body(e).minutes) ?? '?' }) },
  'DELETE /api/v1/hosts/:id/power/schedule': { key: 'audit.s.powerCancel' },
  'POST /api/v1/hosts/:id/ps/:pid/signal': { key: 'audit.s.signal', what: { types: ['pid'], from: (e) => param(e, 'pid') }, parts: (e) => ({ signal: code(str(body(e).signal) ?? 'SIGTERM') }) },
  'POST /api/v1/hosts/:id/systemd/daemon-reload': { key: 'audit.s.daemonReload' },
  'POST /api/v1/alerts/channels': { key: 'audit.s.channelAdd', what: { types: ['channel'], from: (e) => str(body(e).name) } },
  'PATCH /api/v1/alerts/channels/:id': { key: 'audit.s.channelChange', what: { types: ['channel'], from: (e) => str(body(e).name) ?? param(e, 'id') } },
  'DELETE /api/v1/alerts/channels/:id': { key: 'audit.s.channelDelete', what: { types: ['channel'], from: (e) => param(e, 'id') } },
  'POST /api/v1/alerts/channels/:id/test': { key: 'audit.s.channelTest', what: { types: ['channel'], from: (e) => param(e, 'id') } },
  'POST /api/v1/alerts/rules': { key: 'audit.s.ruleAdd', what: { types: ['rule'], from: (e) => str(body(e).name) } },
  'PATCH /api/v1/alerts/rules/:id': { key: 'audit.s.ruleChange', what: { types: ['rule'], from: (e) => str(body(e).name) ?? param(e, 'id') }, parts: (e, c) => ({ changes: changes(e, c) }) },
  'DELETE /api/v1/alerts/rules/:id': { key: 'audit.s.ruleDelete', what: { types: ['rule'], from: (e) => param(e, 'id') } },
  'POST /api/v1/alerts/rules/reset-presets': { key: 'audit.s.presetsReset' },
  'POST /api/v1/alerts/silences': { key: 'audit.s.silenceAdd', what: { types: ['silence'], from: (e) => str(body(e).reason) } },
  'DELETE /api/v1/alerts/silences/:id': { key: 'audit.s.silenceEnd', what: { types: ['silence'], from: (e) => param(e, 'id') } },
  'terminal.open': { key: 'audit.s.terminalOpen', parts: (e, c) => ({ user: code(str(obj(e.params).user)) ?? c.i.t('audit.agentAccount') }) },
  'terminal.close': { key: 'audit.s.terminalClose', parts: (e, c) => ({ reason: endReason(c.i, str(obj(e.params).reason) ?? null) }) },
};
for (const v of ['start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'rename'])
  SENTENCES[`POST /api/v1/hosts/:id/docker/containers/:cid/${v}`] = { key: 'audit.s.container', what: { types: ['container'], from: (e) => param(e, 'cid') }, parts: (e, c) => ({ verb: c.i.tk('audit.verb.' + verbOf(e.action), verbOf(e.action)) }) };
for (const v of ['start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask'])
  SENTENCES[`POST /api/v1/hosts/:id/systemd/units/:unit/${v}`] = { key: 'audit.s.unit', what: { types: ['unit'], from: (e) => param(e, 'unit') }, parts: (e, c) => ({ verb: c.i.tk('audit.verb.' + verbOf(e.action), verbOf(e.action)) }) };

/** A dictionary sentence with its {placeholders} filled by page parts (links, names, code). */
function fillParts(template: string, parts: Record<string, ReactNode>): ReactNode[] {
  return template.split(/\{(\w+)\}/).map((s, n) => (n % 2 === 0 ? s : <Fragment key={n}>{parts[s] ?? '{' + s + '}'}</Fragment>));
}

const list = (c: Ctx, items: ReactNode[]): ReactNode => items.map((x, n) => <Fragment key={n}>{n > 0 && c.i.t('audit.and')}{x}</Fragment>);

function subjectView(s: Subject, c: Ctx): ReactNode {
  const label = s.name ?? s.id;
  switch (s.type) {
    case 'host':
      return <a href={href('/hosts/' + s.id)}>{s.name ?? c.hostName(s.id)}</a>;
    case 'job':
      // By its id, as the job page shows it: its name is the command, already in the sentence.
      return <a href={href('/jobs/' + s.id)}>{c.i.t('audit.job', { name: s.id })}</a>;
    case 'terminal':
      return <a href={href('/terminals/' + s.id)}>{c.i.t('audit.recording')}</a>;
    case 'user':
      return <strong>{label}</strong>;
    default:
      return <code>{label}</code>;
  }
}

/** The entry as a sentence: who did what to which, where, and what came of it. */
export function AuditSentence({ e, c }: { e: Entry; c: Ctx }) {
  const { i } = c;
  const s = SENTENCES[e.action];
  const subjects = e.subjects ?? [];
  const results = subjects.filter((x) => x.role === 'result');
  const named = subjects.filter((x) => x.role !== 'result');
  const hostSubjects = named.filter((x) => x.type === 'host');
  // Hosts: as named, else by id, else (a job's entry from before jobs named them) its target as asked.
  const target = obj(body(e).target);
  const asked = Array.isArray(target.hosts) ? (target.hosts as unknown[]).map(String) : [];
  const hosts: ReactNode[] = hostSubjects.length
    ? hostSubjects.map((x) => subjectView(x, c))
    : e.targets.length || asked.length
      ? (e.targets.length ? e.targets : asked).map((id) => subjectView({ type: 'host', id }, c))
      : [str(target.selector) ?? str(target.glob)].filter((x) => x !== undefined).map((x) => <code key="t">{x}</code>);
  let what: ReactNode[] = [];
  if (s?.what) {
    const own = named.filter((x) => s.what!.types.includes(x.type));
    const text = !own.length && s.what.from ? s.what.from(e) : undefined;
    what = own.length ? own.map((x) => subjectView(x, c)) : text ? [<code key="w">{text}</code>] : [];
  } else if (!s) what = named.filter((x) => x.type !== 'host').map((x) => subjectView(x, c));
  // A terminal session's recording, from entries that name it only in their parameters.
  const session = str(obj(e.params).sessionId);
  const made: ReactNode[] = results.map((x) => subjectView(x, c));
  if (!results.length && session && e.action.startsWith('terminal.')) made.push(subjectView({ type: 'terminal', id: session }, c));
  const parts: Record<string, ReactNode> = {
    actor: <strong>{e.actor ?? i.t('audit.someone')}</strong>,
    hosts: hosts.length ? list(c, hosts) : '—',
    what: what.length ? list(c, what) : '—',
    action: <code>{e.action}</code>,
    ...(s?.parts?.(e, c) ?? {}),
  };
  const key: Key = s ? s.key : hosts.length ? 'audit.s.fallbackOn' : 'audit.s.fallback';
  return (
    <span className="sentence">
      {fillParts(i.t(key), parts)}
      {!s && what.length > 0 && <> · {list(c, what)}</>}
      {made.length > 0 && <> → {list(c, made)}</>}
    </span>
  );
}

export function AuditPage() {
  const i = useI18n();
  const { t } = i;
  const empty = { actor: '', host: '', action: '', from: '', to: '' };
  const [form, setForm] = useState(empty);
  const [filter, setFilter] = useState(empty);
  const [before, setBefore] = useState<number[]>([]);
  const beforeSeq = before[before.length - 1];
  const entries = useAsync(() => get<{ entries: Entry[] }>('/api/v1/audit' + qs({ ...filter, limit: 100, beforeSeq })), [filter, beforeSeq]);
  // Host names for entries that name hosts by id only.
  const hosts = useAsync(() => get<{ hosts: { id: string; hostname: string }[] }>('/api/v1/hosts?limit=10000').then((r) => new Map(r.hosts.map((h) => [h.id, h.hostname]))), []);
  const ctx = useMemo<Ctx>(() => ({ i, hostName: (id) => hosts.data?.get(id) ?? id.slice(0, 10) }), [i, hosts.data]);
  const [verify, setVerify] = useState<{ ok: boolean; entries: number; problems: { seq: number; problem: string }[] }>();
  const [verr, setVerr] = useState<unknown>();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBefore([]);
    setFilter({ ...form });
  };
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm((f) => ({ ...f, [k]: e.target.value }));
  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">{t('audit.title')}</h1>
        <button
          type="button"
          onClick={() =>
            get<typeof verify>('/api/v1/audit/verify')
              .then((v) => setVerify(v))
              .catch(setVerr)
          }
        >
          {t('audit.verify')}
        </button>
        {verify && (
          <span className={verify.ok ? 'on' : 'off'} role="status">
            {verify.ok ? t('audit.verifyOk', { n: verify.entries }) : t('audit.verifyBad', { n: verify.problems.length })}
          </span>
        )}
      </div>
      {verr !== undefined && <ErrorBox error={verr} />}
      <form className="row wrap card filter-form" onSubmit={submit}>
        <Field label={t('audit.actor')}>
          <input value={form.actor} onChange={set('actor')} />
        </Field>
        <Field label={t('audit.host')}>
          <input value={form.host} onChange={set('host')} />
        </Field>
        <Field label={t('audit.action')} hint="POST /api/v1/exec*">
          <input value={form.action} onChange={set('action')} />
        </Field>
        <Field label={t('audit.since')} hint="-24h">
          <input value={form.from} onChange={set('from')} className="w10" />
        </Field>
        <Field label={t('audit.until')}>
          <input value={form.to} onChange={set('to')} className="w10" />
        </Field>
        <button type="submit" className="primary">
          {t('action.filter')}
        </button>
      </form>
      <View a={entries}>
        {(d) =>
          d.entries.length === 0 ? (
            <Empty>{t('audit.none')}</Empty>
          ) : (
            <>
              <ol className="audit-list" aria-label={t('audit.entries')} data-testid="audit-entries">
                {d.entries.map((e) => (
                  <li key={e.seq} data-seq={e.seq} data-action={e.action} data-outcome={e.outcome}>
                    <AuditSentence e={e} c={ctx} />
                    <div className="meta muted">
                      <time dateTime={new Date(e.ts).toISOString()}>{i.date(e.ts)}</time>
                      {e.authMethod !== 'none' && <> · {t('audit.via', { method: i.tk('auth.' + e.authMethod, e.authMethod) })}</>}
                      {e.ip && <> · {e.ip}</>}
                      {' · '}
                      <span className={'badge ' + (e.outcome === 'ok' || e.outcome === 'success' ? 'ok' : 'bad')}>
                        {i.tk('outcome.' + e.outcome, e.outcome)}
                        {e.status !== null && e.outcome !== 'ok' ? ` ${e.status}` : ''}
                      </span>
                      {' · '}
                      {t('audit.seq', { seq: e.seq })}
                    </div>
                    <details>
                      <summary>{t('audit.details')}</summary>
                      <pre className="cmd mono">{e.action + '\n' + JSON.stringify({ targets: e.targets, ...(e.subjects ? { subjects: e.subjects } : {}), params: e.params }, null, 2)}</pre>
                    </details>
                  </li>
                ))}
              </ol>
              <div className="row">
                {before.length > 0 && (
                  <button type="button" onClick={() => setBefore((b) => b.slice(0, -1))}>
                    {t('action.newer')}
                  </button>
                )}
                {d.entries.length === 100 && (
                  <button type="button" onClick={() => setBefore((b) => [...b, d.entries[d.entries.length - 1]!.seq])}>
                    {t('action.older')}
                  </button>
                )}
              </div>
            </>
          )
        }
      </View>
    </section>
  );
}
