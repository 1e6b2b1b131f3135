/** Tether's tagged cron entries on a host: add, edit, enable/disable, delete; schedule checked with its next runs; last runs and output. */
import { useEffect, useState } from 'react';
import { del, get, patch, post, qs } from '../../api';
import { useI18n } from '../../i18n';
import { Empty, Field, Modal, useAsync, useConfirm } from '../../ui';
import { MView, hostApi, useAction, SLOW } from './common';

interface Run {
  startedAt: number;
  endedAt?: number;
  exitCode?: number;
  output: string;
  truncated: boolean;
}
interface Entry {
  id: string;
  user: string;
  name: string;
  schedule: string;
  command: string;
  enabled: boolean;
  nextRuns: number[];
  lastRun?: Run;
}

export function CronTab({ id, canAct }: { id: string; canAct: boolean }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const [user, setUser] = useState('root');
  const list = useAsync(() => get<{ entries: Entry[]; untagged: number }>(hostApi(id, '/cron' + qs({ user }))), [id, user]);
  const [edit, setEdit] = useState<Partial<Entry> | undefined>();
  const [runs, setRuns] = useState<Entry>();
  const act = useAction();
  const path = (e: Entry) => hostApi(id, `/cron/${e.id}` + qs({ user }));
  return (
    <div data-testid="cron-tab">
      <div className="row wrap">
        <label className="inline">
          {t('mgr.user')} <input value={user} onChange={(e) => setUser(e.target.value.trim() || 'root')} size={12} />
        </label>
        {canAct && (
          <button type="button" onClick={() => setEdit({ schedule: '*/5 * * * *', command: '', name: '' })}>
            {t('cron.add')}
          </button>
        )}
        <button type="button" className="small" onClick={list.reload}>{t('action.refresh')}</button>
      </div>
      {act.note}
      <MView a={list}>
        {(d) => (
          <>
            {d.entries.length === 0 ? (
              <Empty>{t('cron.none')}</Empty>
            ) : (
              <div className="scroll-x">
                <table className="table" data-testid="cron-entries">
                  <thead>
                    <tr>
                      <th>{t('mgr.name')}</th>
                      <th>{t('cron.schedule')}</th>
                      <th>{t('mgr.command')}</th>
                      <th>{t('cron.nextRuns')}</th>
                      <th>{t('cron.lastRun')}</th>
                      <th>{t('mgr.actions')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.entries.map((e) => (
                      <tr key={e.id} data-entry={e.name || e.id} className={e.enabled ? undefined : 'is-off'}>
                        <td>{e.name || '—'}</td>
                        <td className="mono">{e.schedule}</td>
                        <td className="mono ellipsis" title={e.command}>{e.command}</td>
                        <td>{e.nextRuns.slice(0, 2).map((x) => i.date(x)).join(', ') || '—'}</td>
                        <td>
                          {e.lastRun ? (
                            <span className={'badge ' + (e.lastRun.exitCode === 0 ? 'ok' : e.lastRun.exitCode === undefined ? 'run' : 'bad')}>
                              {i.date(e.lastRun.startedAt)}{e.lastRun.exitCode !== undefined ? ' · ' + t('cron.exit', { code: e.lastRun.exitCode }) : ''}
                            </span>
                          ) : (
                            '—'
                          )}
                        </td>
                        <td>
                          <div className="row wrap" style={{ margin: 0 }}>
                            <button type="button" className="small" onClick={() => setRuns(e)}>{t('cron.runs')}</button>
                            {canAct && (
                              <>
                                <button type="button" className="small" onClick={() => setEdit(e)}>{t('cron.edit')}</button>
                                <button type="button" className="small" disabled={act.busy} onClick={() => void act.run(() => patch(path(e), { enabled: !e.enabled }, SLOW.agent), `${e.enabled ? t('cron.disable') : t('cron.enable')} ${e.name || e.id}`, list.reload)}>
                                  {e.enabled ? t('cron.disable') : t('cron.enable')}
                                </button>
                                <button
                                  type="button"
                                  className="small danger"
                                  disabled={act.busy}
                                  onClick={async () => {
                                    if (!(await confirm(t('cron.confirmDelete', { name: e.name || e.schedule + ' ' + e.command }), { danger: true, okLabel: t('action.delete') }))) return;
                                    await act.run(() => del(path(e), SLOW.agent), `${t('action.delete')} ${e.name || e.id}`, list.reload);
                                  }}
                                >
                                  {t('action.delete')}
                                </button>
                              </>
                            )}
                          </div>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {d.untagged > 0 && <p className="muted">{t('cron.untagged', { n: d.untagged })}</p>}
          </>
        )}
      </MView>
      {runs && <Runs id={id} user={user} entry={runs} onClose={() => setRuns(undefined)} />}
      {edit && (
        <EntryForm
          id={id}
          entry={edit}
          onClose={() => setEdit(undefined)}
          onSave={async (body) => {
            await act.run(() => (edit.id ? patch(path(edit as Entry), body, SLOW.agent) : post(hostApi(id, '/cron' + qs({ user })), body, SLOW.agent)), `${body.schedule} ${body.command}`, list.reload);
            setEdit(undefined);
          }}
        />
      )}
    </div>
  );
}

function EntryForm({ id, entry, onClose, onSave }: { id: string; entry: Partial<Entry>; onClose: () => void; onSave: (b: { schedule: string; command: string; name: string }) => Promise<void> }) {
  const i = useI18n();
  const { t } = i;
  const [f, setF] = useState({ schedule: entry.schedule ?? '', command: entry.command ?? '', name: entry.name ?? '' });
  const [check, setCheck] = useState<{ valid: boolean; nextRuns: number[]; message?: string }>();
  useEffect(() => {
    const s = f.schedule.trim();
    if (!s) return setCheck(undefined);
    const timer = setTimeout(() => {
      get<{ valid: boolean; nextRuns: number[]; message?: string }>(hostApi(id, '/cron/validate' + qs({ schedule: s })))
        .then(setCheck)
        .catch((e: Error) => setCheck({ valid: false, nextRuns: [], message: e.message }));
    }, 300);
    return () => clearTimeout(timer);
  }, [f.schedule, id]);
  return (
    <Modal title={entry.id ? t('cron.edit') : t('cron.add')} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (check?.valid && f.command.trim()) void onSave({ schedule: f.schedule.trim(), command: f.command.trim(), name: f.name.trim() });
        }}
      >
        <Field label={t('mgr.name')}>
          <input value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} />
        </Field>
        <Field label={t('cron.schedule')}>
          <input className="mono" value={f.schedule} onChange={(e) => setF({ ...f, schedule: e.target.value })} required />
        </Field>
        <p className={check?.valid ? 'muted' : 'bad'} data-testid="cron-check" role="status">
          {check && (check.valid ? t('cron.valid', { runs: check.nextRuns.slice(0, 3).map((x) => i.date(x)).join(', ') || '—' }) : t('cron.invalid', { message: check.message ?? '' }))}
        </p>
        <Field label={t('mgr.command')}>
          <input className="mono" value={f.command} onChange={(e) => setF({ ...f, command: e.target.value })} required />
        </Field>
        <div className="row end">
          <button type="button" onClick={onClose}>{t('action.cancel')}</button>
          <button type="submit" disabled={!check?.valid || !f.command.trim()}>{t('action.save')}</button>
        </div>
      </form>
    </Modal>
  );
}

function Runs({ id, user, entry, onClose }: { id: string; user: string; entry: Entry; onClose: () => void }) {
  const i = useI18n();
  const { t } = i;
  const a = useAsync(() => get<{ runs: Run[] }>(hostApi(id, `/cron/${entry.id}/runs` + qs({ user }))), [id, entry.id, user]);
  return (
    <div className="card" data-testid="cron-runs">
      <div className="row">
        <h3>{t('cron.runs')} · {entry.name || entry.schedule}</h3>
        <button type="button" className="small" onClick={onClose}>{t('action.close')}</button>
      </div>
      <MView a={a}>
        {(d) =>
          d.runs.length === 0 ? (
            <Empty>{t('cron.noRuns')}</Empty>
          ) : (
            <>
              {d.runs.map((r) => (
                <details key={r.startedAt}>
                  <summary>
                    {i.date(r.startedAt)} {r.exitCode !== undefined ? '· ' + t('cron.exit', { code: r.exitCode }) : ''}
                  </summary>
                  <pre className="output">{r.output}</pre>
                </details>
              ))}
            </>
          )
        }
      </MView>
    </div>
  );
}
