/** Power: uptime, reboot, shut down, hibernate or suspend now; reboot or shut down in N minutes, cancel. Every change is confirmed here and stepped up by the hub. */
import { useState } from 'react';
import { del, get, post } from '../../api';
import { useI18n } from '../../i18n';
import { useAsync, useConfirm } from '../../ui';
import { MView, hostApi, useAction, SLOW } from './common';

/** Hibernate and suspend: where the host supports them (the agent asks systemd first and refuses with its reason elsewhere). */
const ACTIONS = ['reboot', 'poweroff', 'hibernate', 'suspend'] as const;
type Action = (typeof ACTIONS)[number];

interface Status {
  uptimeSec: number;
  bootTime: number;
  scheduled?: { action: string; at: number };
}

export function PowerTab({ id, hostname, canAct }: { id: string; hostname: string; canAct: boolean }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const s = useAsync(() => get<Status>(hostApi(id, '/power')), [id]);
  const [action, setAction] = useState<Action>('reboot');
  const [minutes, setMinutes] = useState(5);
  const [message, setMessage] = useState('');
  const act = useAction();
  const label = (a: string) => i.tk('power.' + a, a);
  // shutdown +N schedules reboots and power-offs only
  const schedulable = action === 'reboot' || action === 'poweroff';
  return (
    <div data-testid="power-tab">
      <MView a={s}>
        {(d) => (
          <div className="card">
            <p data-testid="power-status">{t('power.uptime', { d: i.duration(d.uptimeSec), boot: i.date(d.bootTime) })}</p>
            <p data-testid="power-scheduled">{d.scheduled ? t('power.scheduled', { action: label(d.scheduled.action), at: i.date(d.scheduled.at) }) : t('power.noneScheduled')}</p>
            {canAct && d.scheduled && (
              <button
                type="button"
                disabled={act.busy}
                onClick={async () => {
                  if (!(await confirm(t('power.confirmCancel', { action: label(d.scheduled!.action) })))) return;
                  await act.run(() => del(hostApi(id, '/power/schedule'), SLOW.agent), t('power.cancel'), s.reload);
                }}
              >
                {t('power.cancel')}
              </button>
            )}
          </div>
        )}
      </MView>
      {act.note}
      {canAct && (
        <div className="card">
          <p className="muted">{t('power.note')}</p>
          <div className="row wrap">
            <div role="radiogroup" className="seg" aria-label={t('mgr.actions')}>
              {ACTIONS.map((a) => (
                <button key={a} type="button" role="radio" aria-checked={action === a} onClick={() => setAction(a)}>
                  {label(a)}
                </button>
              ))}
            </div>
            <button
              type="button"
              className="danger"
              disabled={act.busy}
              onClick={async () => {
                const question = schedulable ? 'power.confirmNow' : 'power.confirmSleep';
                if (!(await confirm(t(question, { action: label(action), host: hostname }), { danger: true, okLabel: label(action) }))) return;
                await act.run(() => post(hostApi(id, '/power'), { action }, SLOW.agent), `${label(action)} ${hostname}`);
              }}
            >
              {label(action)} · {t('power.now')}
            </button>
          </div>
          {schedulable && (
          <form
            className="row wrap"
            onSubmit={async (e) => {
              e.preventDefault();
              if (!(await confirm(t('power.confirmIn', { action: label(action), host: hostname, n: minutes }), { danger: true }))) return;
              await act.run(() => post(hostApi(id, '/power/schedule'), { action, minutes, ...(message.trim() ? { message: message.trim() } : {}) }, SLOW.agent), `${label(action)} +${minutes}`, s.reload);
            }}
          >
            <label className="inline">
              {t('power.in')} <input type="number" min={1} max={10080} value={minutes} onChange={(e) => setMinutes(Math.max(1, Number(e.target.value) || 1))} style={{ width: 80 }} />
            </label>
            <label className="inline">
              {t('power.message')} <input value={message} maxLength={256} onChange={(e) => setMessage(e.target.value)} />
            </label>
            <button type="submit" className="danger" disabled={act.busy}>
              {t('power.schedule')}
            </button>
          </form>
          )}
        </div>
      )}
    </div>
  );
}
