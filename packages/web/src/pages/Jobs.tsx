import { useEffect, useMemo, useRef, useState } from 'react';
import { get, post, qs, wsUrl, type Job, type Me, type Task } from '../api';
import { useI18n, type Key } from '../i18n';
import { go, href } from '../router';
import { CopyButton, Empty, ErrorBox, Loading, View, errorText, useAsync, useConfirm } from '../ui';
import { StateBadge } from './Host';

export function JobsPage() {
  const i = useI18n();
  const { t } = i;
  const [state, setState] = useState('');
  const jobs = useAsync(() => get<{ jobs: Job[] }>('/api/v1/jobs' + qs({ state, limit: 200 })), [state]);
  return (
    <section aria-labelledby="jobs-title">
      <div className="page-head">
        <h1 id="jobs-title">{t('jobs.title')}</h1>
        <select aria-label={t('jobs.state')} value={state} onChange={(e) => setState(e.target.value)}>
          <option value="">{t('jobs.allStates')}</option>
          {['running', 'succeeded', 'failed', 'cancelled'].map((s) => (
            <option key={s} value={s}>
              {i.tk('state.' + s, s)}
            </option>
          ))}
        </select>
        <button type="button" onClick={jobs.reload}>
          {t('action.refresh')}
        </button>
      </div>
      <View a={jobs}>
        {(d) =>
          d.jobs.length === 0 ? (
            <Empty>{t('jobs.none')}</Empty>
          ) : (
            <table className="table" data-testid="jobs-table">
              <thead>
                <tr>
                  <th>{t('jobs.job')}</th>
                  <th>{t('jobs.state')}</th>
                  <th className="num">{t('jobs.hosts')}</th>
                  <th>{t('jobs.progress')}</th>
                  <th>{t('jobs.by')}</th>
                  <th>{t('jobs.started')}</th>
                </tr>
              </thead>
              <tbody>
                {d.jobs.map((j) => (
                  <tr key={j.id}>
                    <td>
                      <a href={href('/jobs/' + j.id)}>{j.name}</a>
                    </td>
                    <td>
                      <StateBadge state={j.state} />
                    </td>
                    <td className="num">{j.hostCount}</td>
                    <td>{j.counts ? <Counts counts={j.counts} /> : '—'}</td>
                    <td>{j.createdBy}</td>
                    <td>{i.date(j.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </View>
    </section>
  );
}

function Counts({ counts }: { counts: Record<string, number> }) {
  const i = useI18n();
  return (
    <span className="muted">
      {Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${i.tk('state.' + k, k)} ${n}`)
        .join(' · ')}
    </span>
  );
}

export function JobPage({ id, me }: { id: string; me: Me }) {
  const { t } = useI18n();
  return (
    <section aria-labelledby="job-title">
      <p>
        <a href={href('/jobs')}>← {t('jobs.title')}</a>
      </p>
      <JobLive id={id} me={me} />
    </section>
  );
}

interface Out {
  stdout: string;
  stderr: string;
  seq: { stdout: number; stderr: number };
}

/** A job's tasks and output, streamed from /api/v1/jobs/:id/stream while it runs. */
export function JobLive({ id, me, compact }: { id: string; me: Me; compact?: boolean }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const [job, setJob] = useState<Job>();
  const [tasks, setTasks] = useState<Map<string, Task>>(new Map());
  const [out, setOut] = useState<Map<string, Out>>(new Map());
  const [error, setError] = useState<unknown>();
  const [actionErr, setActionErr] = useState<unknown>();
  const [open, setOpen] = useState<Set<string>>(new Set());
  const outRef = useRef(new Map<string, Out>());

  useEffect(() => {
    let gone = false;
    let ws: WebSocket | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    outRef.current = new Map();
    setOut(new Map());
    const connect = () => {
      ws = new WebSocket(wsUrl(`/api/v1/jobs/${encodeURIComponent(id)}/stream`));
      let pending = false;
      const flush = () => {
        pending = false;
        setOut(new Map(outRef.current));
      };
      ws.onmessage = (m) => {
        const e = JSON.parse(m.data as string) as { type: 'task'; task: Task } | { type: 'job'; job: Job } | { type: 'output'; taskId: string; stream: 'stdout' | 'stderr'; data: string; seq: number };
        if (e.type === 'task') setTasks((old) => new Map(old).set(e.task.id, e.task));
        else if (e.type === 'job') setJob((old) => ({ ...old, ...e.job }));
        else if (e.type === 'output') {
          let o = outRef.current.get(e.taskId);
          if (!o) outRef.current.set(e.taskId, (o = { stdout: '', stderr: '', seq: { stdout: -1, stderr: -1 } }));
          // The stream replays from the start after a reconnect: a chunk already shown is skipped.
          if (e.seq <= o.seq[e.stream]) return;
          o.seq[e.stream] = e.seq;
          o[e.stream] += e.data;
          if (!pending) {
            pending = true;
            requestAnimationFrame(flush);
          }
        }
      };
      ws.onclose = (ev) => {
        if (gone || ev.code === 1000 || ev.code === 4404 || ev.code === 4403) return;
        retry = setTimeout(connect, 1000 + Math.random() * 2000);
      };
    };
    get<{ job: Job; tasks: Task[] }>(`/api/v1/jobs/${encodeURIComponent(id)}`)
      .then((r) => {
        if (gone) return;
        setJob(r.job);
        setTasks(new Map(r.tasks.map((x) => [x.id, x])));
        if (r.tasks.length <= 3) setOpen(new Set(r.tasks.map((x) => x.id)));
        if (r.job.state === 'running') connect();
      })
      .catch((e) => !gone && setError(e));
    return () => {
      gone = true;
      clearTimeout(retry);
      ws?.close(1000);
    };
  }, [id]);

  const list = useMemo(() => [...tasks.values()].sort((a, b) => a.index - b.index), [tasks]);
  if (error) return <ErrorBox error={error} />;
  if (!job) return <Loading />;
  const done = list.filter((x) => x.state === 'done' || x.endedAt !== null).length;
  const failed = list.filter((x) => x.ok === false).length;
  const running = job.state === 'running';
  const canAct = me.role !== 'viewer';

  const cancel = async () => {
    if (!(await confirm(t('jobs.cancelConfirm', { name: job.name })))) return;
    try {
      await post(`/api/v1/jobs/${job.id}/cancel`);
    } catch (e) {
      setActionErr(e);
    }
  };
  const rerun = async () => {
    try {
      // Env values and stdin come back redacted: a re-run sends the command and its options only.
      const spec = Object.fromEntries(Object.entries(job.spec).filter(([k]) => ['command', 'shell', 'cwd', 'timeoutSec', 'user', 'runAs', 'maxOutput'].includes(k)));
      const r = await post<{ job: Job }>('/api/v1/exec', { ...spec, target: job.target, ...(job.strategy ? { strategy: job.strategy } : {}), name: job.name, mode: 'async' });
      go('/jobs/' + r.job.id);
    } catch (e) {
      setActionErr(e);
    }
  };
  const textOf = (x: Task) => {
    const o = out.get(x.id);
    const stdout = x.stdout ?? o?.stdout ?? '';
    const stderr = x.stderr ?? o?.stderr ?? '';
    return { stdout, stderr };
  };

  return (
    <div className="job" data-testid="job" data-state={job.state}>
      <div className="page-head">
        {compact ? <h2 id="job-title">{job.name}</h2> : <h1 id="job-title">{job.name}</h1>}
        <StateBadge state={job.state} />
        <span className="muted">
          {t('jobs.meta', { by: job.createdBy, when: i.date(job.createdAt) })}
          {job.endedAt ? ' · ' + i.duration((job.endedAt - job.createdAt) / 1000) : ''}
        </span>
        <div className="actions">
          {compact && <a href={href('/jobs/' + job.id)}>{t('jobs.open')}</a>}
          {canAct && running && (
            <button type="button" className="danger" onClick={cancel}>
              {t('jobs.cancel')}
            </button>
          )}
          {canAct && !running && job.kind === 'exec' && (
            <button type="button" onClick={rerun}>
              {t('jobs.rerun')}
            </button>
          )}
        </div>
      </div>
      {job.spec.command && (
        <pre className="cmd mono" data-testid="job-command">
          $ {job.spec.command.join(' ')}
        </pre>
      )}
      {job.message && <p className="muted">{job.message}</p>}
      {actionErr !== undefined && <ErrorBox error={actionErr} />}
      <div className="progress" role="progressbar" aria-label={t('jobs.progress')} aria-valuemin={0} aria-valuemax={list.length} aria-valuenow={done}>
        <span className="ok" style={{ width: `${((done - failed) / Math.max(1, list.length)) * 100}%` }} />
        <span className="bad" style={{ width: `${(failed / Math.max(1, list.length)) * 100}%` }} />
      </div>
      <p className="muted">{t('jobs.doneOf', { done, total: list.length, failed })}</p>
      <div className="tasks">
        {list.map((x) => {
          const o = textOf(x);
          const isOpen = open.has(x.id);
          return (
            <div key={x.id} className="task" data-testid="task" data-host={x.hostname} data-state={x.status ?? x.state}>
              <div className="task-head">
                <button
                  type="button"
                  className="link"
                  aria-expanded={isOpen}
                  onClick={() =>
                    setOpen((s) => {
                      const n = new Set(s);
                      if (n.has(x.id)) n.delete(x.id);
                      else n.add(x.id);
                      return n;
                    })
                  }
                >
                  {isOpen ? '▾' : '▸'} {x.hostname}
                </button>
                <StateBadge state={x.status ?? x.state} ok={x.ok} />
                <span className="muted">
                  {x.exitCode !== null ? t('task.exitCode', { code: x.exitCode }) : ''}
                  {x.signal ? ' ' + x.signal : ''}
                  {x.startedAt && x.endedAt ? ' · ' + i.num((x.endedAt - x.startedAt) / 1000, 2) + ' s' : ''}
                  {x.error ? ' · ' + i.tk('error.' + x.error, x.error) : ''}
                </span>
                <span className="spacer" />
                {(o.stdout || o.stderr) && <CopyButton text={o.stdout + o.stderr} />}
              </div>
              {isOpen && (
                <pre className="output mono" aria-label={t('task.output', { host: x.hostname })} data-testid="output">
                  {o.stdout}
                  {o.stderr && <span className="stderr">{o.stderr}</span>}
                  {!o.stdout && !o.stderr && <span className="muted">{x.endedAt ? t('task.noOutput') : t('task.waiting')}</span>}
                  {x.truncated && <span className="muted">{'\n'}{t('task.truncated', { out: i.bytes(x.stdoutBytes), err: i.bytes(x.stderrBytes) })}</span>}
                </pre>
              )}
            </div>
          );
        })}
      </div>
    </div>
  );
}

export function useErr() {
  const i = useI18n();
  return (e: unknown) => errorText(i, e);
}
export type { Key };
