/** Docker on a host: containers (state, actions, logs, inspect, stats) and images. */
import { useState } from 'react';
import { del, get, post, qs } from '../../api';
import { useI18n, type Key } from '../../i18n';
import { Empty, useAsync, useConfirm } from '../../ui';
import { LogView, MView, Problem, hostApi, useAction, SLOW } from './common';

interface Container {
  id: string;
  names: string[];
  image: string;
  command: string;
  created: number;
  state: string;
  status: string;
  ports: { containerPort: number; hostPort?: number; hostIp?: string; protocol: string }[];
  labels: Record<string, string>;
}
interface Image {
  id: string;
  tags: string[];
  created: number;
  size: number;
}
interface Stats {
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  netRxBytes: number;
  netTxBytes: number;
  blockReadBytes: number;
  blockWriteBytes: number;
  pids: number;
}

const ACTIONS: Record<string, string[]> = {
  running: ['stop', 'restart', 'pause', 'kill'],
  paused: ['unpause', 'kill'],
  restarting: ['stop', 'kill'],
};
const cname = (c: Container) => (c.names[0] ?? c.id.slice(0, 12)).replace(/^\//, '');

export function DockerTab({ id, canAct }: { id: string; canAct: boolean }) {
  const i = useI18n();
  const { t } = i;
  const confirm = useConfirm();
  const info = useAsync(() => get<{ version: { Version?: string; ApiVersion?: string; Components?: { Name: string }[] }; readOnly: boolean }>(hostApi(id, '/docker')), [id]);
  const [all, setAll] = useState(true);
  const list = useAsync(() => get<{ containers: Container[] }>(hostApi(id, '/docker/containers' + qs({ all }))), [id, all]);
  const images = useAsync(() => get<{ images: Image[] }>(hostApi(id, '/docker/images')), [id]);
  const [open, setOpen] = useState<{ ref: string; name: string; view: 'logs' | 'inspect' | 'stats' }>();
  const act = useAction();
  const ro = info.data?.readOnly ?? false;

  const doAction = async (c: Container, action: string) => {
    const label = t(('docker.act.' + action) as Key);
    if (!(await confirm(t('docker.confirm', { action: label, name: cname(c) }), { danger: true, okLabel: label }))) return;
    await act.run(
      () => (action === 'remove' ? del(hostApi(id, `/docker/containers/${c.id}?force=true`), SLOW.container) : post(hostApi(id, `/docker/containers/${c.id}/${action}`), undefined, SLOW.container)),
      `${label} ${cname(c)}`,
      list.reload,
    );
  };

  if (info.error) return <Problem error={info.error} retry={info.reload} />;
  return (
    <div data-testid="docker-tab">
      {info.data && (
        <p className="muted">
          {t('docker.engine', { name: info.data.version.Components?.[0]?.Name ?? 'Docker', version: info.data.version.Version ?? '?', api: info.data.version.ApiVersion ?? '?' })}
          {ro && ' · ' + t('docker.readOnly')}
        </p>
      )}
      <div className="row">
        <h3>{t('docker.containers')}</h3>
        <label className="inline">
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> {t('mgr.all')}
        </label>
        <button type="button" className="small" onClick={list.reload}>
          {t('action.refresh')}
        </button>
      </div>
      {act.note}
      <MView a={list}>
        {(d) =>
          d.containers.length === 0 ? (
            <Empty>{t('docker.none')}</Empty>
          ) : (
            <div className="scroll-x">
              <table className="table" data-testid="containers">
                <thead>
                  <tr>
                    <th>{t('mgr.name')}</th>
                    <th>{t('docker.image')}</th>
                    <th>{t('mgr.state')}</th>
                    <th>{t('docker.status')}</th>
                    <th>{t('docker.ports')}</th>
                    <th>{t('mgr.actions')}</th>
                  </tr>
                </thead>
                <tbody>
                  {d.containers.map((c) => (
                    <tr key={c.id} data-testid="container" data-name={cname(c)} data-state={c.state}>
                      <td>
                        <strong>{cname(c)}</strong> <span className="muted mono">{c.id.slice(0, 12)}</span>
                      </td>
                      <td className="mono ellipsis" title={c.image}>{c.image}</td>
                      <td>
                        <span className={'badge ' + (c.state === 'running' ? 'ok' : c.state === 'exited' || c.state === 'dead' ? 'bad' : 'run')} data-testid="container-state">
                          {c.state}
                        </span>
                      </td>
                      <td>{c.status}</td>
                      <td className="mono">{c.ports.map((p) => (p.hostPort ? `${p.hostPort}→` : '') + `${p.containerPort}/${p.protocol}`).join(', ')}</td>
                      <td>
                        <div className="row wrap" style={{ margin: 0 }}>
                          {(['logs', 'inspect', 'stats'] as const).map((v) => (
                            <button key={v} type="button" className="small" onClick={() => setOpen({ ref: c.id, name: cname(c), view: v })}>
                              {t(('docker.' + v) as Key)}
                            </button>
                          ))}
                          {canAct &&
                            !ro &&
                            [...(ACTIONS[c.state] ?? ['start']), 'remove'].map((a) => (
                              <button key={a} type="button" className={'small' + (a === 'remove' || a === 'kill' ? ' danger' : '')} disabled={act.busy} onClick={() => void doAction(c, a)}>
                                {t(('docker.act.' + a) as Key)}
                              </button>
                            ))}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </MView>
      {open && (
        <div className="card" data-testid="container-detail">
          <div className="row">
            <h3>
              {open.name} · {t(('docker.' + open.view) as Key)}
            </h3>
            <button type="button" className="small" onClick={() => setOpen(undefined)}>
              {t('action.close')}
            </button>
          </div>
          {open.view === 'logs' && <LogView key={open.ref} path={hostApi(id, `/docker/containers/${open.ref}/logs?tail=500`)} ndjson testid="container-logs" />}
          {open.view === 'inspect' && <Inspect id={id} cref={open.ref} />}
          {open.view === 'stats' && <StatsView id={id} cref={open.ref} />}
        </div>
      )}
      <h3>{t('docker.images')}</h3>
      {canAct && !ro && <ImageForm id={id} busy={act.busy} run={act.run} done={images.reload} />}
      <MView a={images}>
        {(d) =>
          d.images.length === 0 ? (
            <Empty>{t('docker.noImages')}</Empty>
          ) : (
            <table className="table" data-testid="images">
              <thead>
                <tr>
                  <th>{t('docker.tags')}</th>
                  <th>ID</th>
                  <th>{t('docker.created')}</th>
                  <th className="num">{t('docker.size')}</th>
                  {canAct && !ro && <th>{t('mgr.actions')}</th>}
                </tr>
              </thead>
              <tbody>
                {d.images.map((im) => {
                  const ref = im.tags[0] && im.tags[0] !== '<none>:<none>' ? im.tags[0] : im.id.replace(/^sha256:/, '').slice(0, 12);
                  return (
                    <tr key={im.id}>
                      <td className="mono">{im.tags.join(', ') || '—'}</td>
                      <td className="mono">{im.id.replace(/^sha256:/, '').slice(0, 12)}</td>
                      <td>{i.date(im.created * 1000)}</td>
                      <td className="num">{i.bytes(im.size)}</td>
                      {canAct && !ro && (
                        <td>
                          <button
                            type="button"
                            className="small danger"
                            disabled={act.busy}
                            onClick={async () => {
                              if (!(await confirm(t('docker.confirmImage', { name: ref }), { danger: true, okLabel: t('docker.act.remove') }))) return;
                              await act.run(() => del(hostApi(id, '/docker/images' + qs({ ref })), SLOW.agent), `${t('docker.act.remove')} ${ref}`, images.reload);
                            }}
                          >
                            {t('docker.act.remove')}
                          </button>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </MView>
    </div>
  );
}

/** Pull an image by name, or import one from a root filesystem tarball already on the host. */
function ImageForm({ id, busy, run, done }: { id: string; busy: boolean; run: ReturnType<typeof useAction>['run']; done: () => void }) {
  const { t } = useI18n();
  const [ref, setRef] = useState('');
  const [path, setPath] = useState('');
  return (
    <form className="row" data-testid="image-form" onSubmit={(e) => e.preventDefault()}>
      <label className="inline">
        {t('docker.imageRef')} <input value={ref} onChange={(e) => setRef(e.target.value)} placeholder="localhost/app:1" required />
      </label>
      <button type="button" className="small" disabled={busy || !ref} onClick={() => void run(() => post(hostApi(id, '/docker/images/pull'), { ref }, SLOW.image), `${t('docker.act.pull')} ${ref}`, done)}>
        {t('docker.act.pull')}
      </button>
      <label className="inline">
        {t('docker.tarPath')} <input value={path} onChange={(e) => setPath(e.target.value)} placeholder="/srv/rootfs.tar" title={t('docker.importHint')} />
      </label>
      <button type="button" className="small" disabled={busy || !ref || !path.startsWith('/')} onClick={() => void run(() => post(hostApi(id, '/docker/images/import'), { ref, path }, SLOW.image), `${t('docker.act.import')} ${ref}`, done)}>
        {t('docker.act.import')}
      </button>
    </form>
  );
}

function Inspect({ id, cref }: { id: string; cref: string }) {
  const a = useAsync(() => get<unknown>(hostApi(id, `/docker/containers/${cref}`)), [id, cref]);
  return <MView a={a}>{(d) => <pre className="output" data-testid="container-inspect">{JSON.stringify(d, null, 2)}</pre>}</MView>;
}

function StatsView({ id, cref }: { id: string; cref: string }) {
  const i = useI18n();
  const { t } = i;
  const a = useAsync(() => get<Stats>(hostApi(id, `/docker/containers/${cref}/stats`)), [id, cref]);
  return (
    <MView a={a}>
      {(s) => (
        <div>
          <dl className="facts" data-testid="container-stats">
            <div><dt>{t('docker.cpu')}</dt><dd>{i.pct(s.cpuPercent)}</dd></div>
            <div><dt>{t('docker.mem')}</dt><dd>{i.bytes(s.memoryBytes)}{s.memoryLimitBytes ? ` / ${i.bytes(s.memoryLimitBytes)}` : ''}</dd></div>
            <div><dt>{t('docker.net')}</dt><dd>{i.bytes(s.netRxBytes)} / {i.bytes(s.netTxBytes)}</dd></div>
            <div><dt>{t('docker.block')}</dt><dd>{i.bytes(s.blockReadBytes)} / {i.bytes(s.blockWriteBytes)}</dd></div>
            <div><dt>{t('docker.pids')}</dt><dd>{s.pids}</dd></div>
          </dl>
          <button type="button" className="small" onClick={a.reload}>{t('action.refresh')}</button>
        </div>
      )}
    </MView>
  );
}
