/** systemd units on a host: filter, actions, journal (follow). */
import { useMemo, useState } from 'react';
import { get, post, qs } from '../../api';
import { useI18n } from '../../i18n';
import { Empty, useAsync, useConfirm } from '../../ui';
import { LogView, MView, hostApi, useAction, SLOW } from './common';

interface Unit {
  unit: string;
  load: string;
  active: string;
  sub: string;
  description: string;
}
const TYPES = ['service', 'socket', 'timer', 'target', 'mount', 'path', 'slice', 'scope'];
const ACTIONS = ['start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask'];

export function SystemdTab({ id, canAct }: { id: string; canAct: boolean }) {
  const { t } = useI18n();
  const confirm = useConfirm();
  const [type, setType] = useState('service');
  const [filter, setFilter] = useState('');
  const units = useAsync(() => get<{ units: Unit[] }>(hostApi(id, '/systemd/units' + qs({ type }))), [id, type]);
  const [open, setOpen] = useState<string>();
  const act = useAction();
  const shown = useMemo(() => (units.data?.units ?? []).filter((u) => !filter || (u.unit + ' ' + u.description).toLowerCase().includes(filter.toLowerCase())), [units.data, filter]);
  return (
    <div data-testid="systemd-tab">
      <div className="row wrap">
        <input type="search" aria-label={t('mgr.filter')} placeholder={t('mgr.filter')} value={filter} onChange={(e) => setFilter(e.target.value)} />
        <label className="inline">
          {t('systemd.type')}{' '}
          <select value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">{t('systemd.anyType')}</option>
            {TYPES.map((x) => (
              <option key={x} value={x}>{x}</option>
            ))}
          </select>
        </label>
        <button type="button" className="small" onClick={units.reload}>{t('action.refresh')}</button>
      </div>
      {act.note}
      {open && (
        <div className="card" data-testid="unit-detail">
          <div className="row wrap">
            <h3 className="mono">{open}</h3>
            {canAct &&
              ACTIONS.map((a) => (
                <button
                  key={a}
                  type="button"
                  className={'small' + (a === 'stop' || a === 'mask' || a === 'disable' ? ' danger' : '')}
                  disabled={act.busy}
                  onClick={async () => {
                    if (!(await confirm(t('systemd.confirm', { action: a, unit: open }), { okLabel: a }))) return;
                    await act.run(() => post(hostApi(id, `/systemd/units/${encodeURIComponent(open)}/${a}`), undefined, SLOW.unit), `systemctl ${a} ${open}`, units.reload);
                  }}
                >
                  {a}
                </button>
              ))}
            <button type="button" className="small" onClick={() => setOpen(undefined)}>{t('action.close')}</button>
          </div>
          <h4>{t('systemd.journal')}</h4>
          <LogView key={open} path={hostApi(id, `/systemd/units/${encodeURIComponent(open)}/journal?lines=200`)} testid="journal" />
        </div>
      )}
      <MView a={units}>
        {() =>
          shown.length === 0 ? (
            <Empty>{t('systemd.none')}</Empty>
          ) : (
            <div className="scroll-x">
              <table className="table" data-testid="units">
                <thead>
                  <tr>
                    <th>{t('systemd.unit')}</th>
                    <th>{t('systemd.load')}</th>
                    <th>{t('systemd.active')}</th>
                    <th>{t('systemd.sub')}</th>
                    <th>{t('systemd.description')}</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.slice(0, 500).map((u) => (
                    <tr key={u.unit} data-unit={u.unit} className={u.active === 'inactive' ? 'is-off' : undefined}>
                      <td>
                        <button type="button" className="link mono" onClick={() => setOpen(u.unit)}>{u.unit}</button>
                      </td>
                      <td>{u.load}</td>
                      <td><span className={'badge ' + (u.active === 'active' ? 'ok' : u.active === 'failed' ? 'bad' : '')}>{u.active}</span></td>
                      <td>{u.sub}</td>
                      <td>{u.description}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </MView>
    </div>
  );
}
