/**
 * Web terminals (issue 10): a live terminal on a host (xterm.js over the hub's terminal WebSocket,
 * fit to its box, copy/paste, search, a clear ended state with reconnect, step-up asked before
 * opening), the admin's list of recorded sessions, and a player for their asciicast v2 recordings
 * (1×/2×, seek). Loaded on demand (pages/TerminalRoutes.tsx) so xterm stays out of the main bundle.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import '@xterm/xterm/css/xterm.css';
import { ensureStepUp, get, request, wsUrl, type Host, type Me } from '../api';
import { useI18n } from '../i18n';
import { href } from '../router';
import { Empty, View, useAsync } from '../ui';

const THEME: ITheme = { background: '#111418', foreground: '#e6e6e6', cursor: '#e6e6e6', selectionBackground: '#3a5a80' };
const FONT = '"DejaVu Sans Mono", "Noto Sans Mono", Menlo, Consolas, monospace';

type State = { kind: 'connecting' } | { kind: 'open' } | { kind: 'ended'; reason: string; refused: boolean };

function useXterm(opts: { cols?: number; rows?: number; fit: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const [term, setTerm] = useState<{ term: Terminal; fit: FitAddon; search: SearchAddon }>();
  useEffect(() => {
    const term = new Terminal({ fontFamily: FONT, fontSize: 14, theme: THEME, scrollback: 5000, cursorBlink: opts.fit, ...(opts.cols ? { cols: opts.cols, rows: opts.rows } : {}) });
    const fit = new FitAddon();
    const search = new SearchAddon();
    term.loadAddon(fit);
    term.loadAddon(search);
    term.open(box.current!);
    if (opts.fit) fit.fit();
    setTerm({ term, fit, search });
    return () => term.dispose();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return { box, x: term };
}

function SearchBar({ search }: { search: SearchAddon | undefined }) {
  const { t } = useI18n();
  const [q, setQ] = useState('');
  const find = (back: boolean) => q && search && (back ? search.findPrevious(q) : search.findNext(q));
  return (
    <form
      className="row"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        find(false);
      }}
    >
      <input type="search" aria-label={t('term.search')} placeholder={t('term.search')} value={q} onChange={(e) => setQ(e.target.value)} />
      <button type="submit" className="small">{t('term.findNext')}</button>
      <button type="button" className="small" onClick={() => find(true)}>{t('term.findPrev')}</button>
    </form>
  );
}

export function TerminalPage({ hostId }: { hostId: string; me: Me }) {
  const host = useAsync(() => get<Host>(`/api/v1/hosts/${encodeURIComponent(hostId)}`), [hostId]);
  const { t } = useI18n();
  return <View a={host}>{(h) => (h.capabilities.includes('terminal') ? <TerminalView host={h} /> : <Empty>{t('term.noCapability')}</Empty>)}</View>;
}

function TerminalView({ host }: { host: Host }) {
  const i = useI18n();
  const { t } = i;
  const { box, x } = useXterm({ fit: true });
  const ws = useRef<WebSocket | null>(null);
  const [state, setState] = useState<State>({ kind: 'connecting' });
  const [size, setSize] = useState<{ cols: number; rows: number }>();
  const [user, setUser] = useState('');
  const [note, setNote] = useState('');
  const tRef = useRef(t);
  tRef.current = t;

  const send = (m: object) => {
    if (ws.current?.readyState === WebSocket.OPEN) ws.current.send(JSON.stringify(m));
  };

  const connect = useCallback(
    async (term: Terminal, fit: FitAddon, asUser: string) => {
      ws.current?.close();
      ws.current = null;
      setState({ kind: 'connecting' });
      let ok: boolean;
      try {
        ok = await ensureStepUp();
      } catch (e) {
        setState({ kind: 'ended', reason: (e as Error).message, refused: true });
        return;
      }
      if (!ok) {
        setState({ kind: 'ended', reason: tRef.current('term.stepUpCancelled'), refused: true });
        return;
      }
      fit.fit();
      const q = new URLSearchParams({ cols: String(term.cols), rows: String(term.rows) });
      if (asUser) q.set('user', asUser);
      const s = new WebSocket(wsUrl(`/api/v1/hosts/${encodeURIComponent(host.id)}/terminal?${q}`));
      ws.current = s;
      let ended = false;
      s.onmessage = (ev) => {
        const m = JSON.parse(String(ev.data)) as { type: string; data?: string; reason?: string; refused?: boolean; exitCode?: number | null };
        if (m.type === 'opened') {
          setState({ kind: 'open' });
          term.focus();
          // the box may have changed while connecting
          send({ type: 'resize', cols: term.cols, rows: term.rows });
        } else if (m.type === 'output' && m.data) term.write(m.data);
        else if (m.type === 'exit') {
          ended = true;
          const why = (m.reason ?? '') + (m.exitCode !== null && m.exitCode !== undefined && m.exitCode !== 0 ? ` (${m.exitCode})` : '');
          setState({ kind: 'ended', reason: why, refused: m.refused === true });
        }
      };
      s.onclose = (ev) => {
        if (ws.current === s) ws.current = null;
        if (ended) return;
        setState({ kind: 'ended', reason: ev.reason || tRef.current('term.lost'), refused: false });
      };
    },
    [host.id],
  );

  // Wire the terminal once: keys to the socket, size changes to resize frames, the box's size to fit.
  useEffect(() => {
    if (!x) return;
    const { term, fit } = x;
    const d1 = term.onData((data) => send({ type: 'input', data }));
    const d2 = term.onResize(({ cols, rows }) => {
      setSize({ cols, rows });
      send({ type: 'resize', cols, rows });
    });
    setSize({ cols: term.cols, rows: term.rows });
    term.attachCustomKeyEventHandler((e) => {
      // Ctrl+Shift+C copies, Ctrl+Shift+V pastes (plain Ctrl+C stays an interrupt)
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyC') {
        const sel = term.getSelection();
        if (sel) void navigator.clipboard?.writeText(sel).catch(() => {});
        return false;
      }
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyV') return false; // the browser's paste event follows
      return true;
    });
    let frame = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        try {
          fit.fit();
        } catch {
          /* not laid out */
        }
      });
    });
    ro.observe(box.current!);
    void connect(term, fit, '');
    return () => {
      d1.dispose();
      d2.dispose();
      ro.disconnect();
      cancelAnimationFrame(frame);
      ws.current?.close();
      ws.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [x, connect]);

  const copy = () => {
    const sel = x?.term.getSelection();
    if (sel) void navigator.clipboard?.writeText(sel).catch(() => {});
    x?.term.focus();
  };
  const paste = async () => {
    try {
      const text = await navigator.clipboard.readText();
      if (text) x?.term.paste(text);
      setNote('');
    } catch {
      setNote(t('term.pasteFailed'));
    }
    x?.term.focus();
  };
  const reconnect = (e?: FormEvent) => {
    e?.preventDefault();
    if (!x) return;
    x.term.write('\r\n');
    void connect(x.term, x.fit, user.trim());
  };

  return (
    <section aria-labelledby="term-title" className="terminal-page">
      <div className="page-head">
        <h1 id="term-title">
          <a href={href('/hosts/' + host.id)}>{host.hostname}</a> · {t('host.terminal')}
        </h1>
        <span data-testid="term-state" data-state={state.kind} role="status" className={state.kind === 'open' ? 'on' : state.kind === 'ended' ? 'off' : ''}>
          {state.kind === 'connecting' && t('term.connecting')}
          {state.kind === 'open' && t('term.open')}
          {state.kind === 'ended' && (state.refused ? t('term.refused', { reason: state.reason }) : t('term.ended', { reason: state.reason }))}
        </span>
        {size && <span className="muted" data-testid="term-size">{t('term.size', size)}</span>}
        <div className="actions">
          <button type="button" className="small" onClick={copy}>{t('term.copy')}</button>
          <button type="button" className="small" onClick={() => void paste()} disabled={state.kind !== 'open'}>{t('term.paste')}</button>
          {state.kind === 'open' && (
            <button type="button" className="small" onClick={() => ws.current?.close(1000, 'closed by the user')}>
              {t('term.disconnect')}
            </button>
          )}
        </div>
      </div>
      <div className="row wrap">
        <SearchBar search={x?.search} />
        <form className="row" onSubmit={reconnect}>
          <label className="inline">
            {t('term.user')}{' '}
            <input value={user} onChange={(e) => setUser(e.target.value)} placeholder={t('term.userHint')} size={14} autoComplete="off" />
          </label>
          {state.kind === 'ended' && (
            <button type="submit" className="primary">
              {t('term.reconnect')}
            </button>
          )}
        </form>
      </div>
      {note && <p className="error-text" role="alert">{note}</p>}
      {state.kind === 'ended' && (
        <div className="banner" role="alert" data-testid="term-ended">
          {state.refused ? t('term.refused', { reason: state.reason }) : t('term.ended', { reason: state.reason })}{' '}
          <button type="button" className="small" onClick={() => reconnect()}>
            {t('term.reconnect')}
          </button>
        </div>
      )}
      <div className="term-box" ref={box} data-testid="terminal" />
    </section>
  );
}

// ---- sessions and their recordings (admin) ----

interface Session {
  id: string;
  hostId: string;
  hostname: string;
  username: string;
  runAs: string | null;
  startedAt: number;
  endedAt: number | null;
  exitCode: number | null;
  reason: string | null;
  bytesOut: number;
  bytesIn: number;
  recordingBytes: number;
  recordingTruncated: boolean;
  cols: number;
  rows: number;
}

export function TerminalSessionsPage() {
  const i = useI18n();
  const { t } = i;
  const list = useAsync(() => get<{ sessions: Session[] }>('/api/v1/terminal/sessions?limit=200'), []);
  return (
    <section aria-labelledby="terms-title">
      <div className="page-head">
        <h1 id="terms-title">{t('terms.title')}</h1>
      </div>
      <View a={list}>
        {({ sessions }) =>
          sessions.length === 0 ? (
            <Empty>{t('terms.none')}</Empty>
          ) : (
            <table className="table" data-testid="sessions">
              <thead>
                <tr>
                  <th scope="col">{t('terms.host')}</th>
                  <th scope="col">{t('terms.user')}</th>
                  <th scope="col">{t('terms.started')}</th>
                  <th scope="col" className="num">{t('terms.duration')}</th>
                  <th scope="col" className="num">{t('terms.bytes')}</th>
                  <th scope="col">{t('terms.reason')}</th>
                  <th scope="col"><span className="sr-only">{t('terms.replay')}</span></th>
                </tr>
              </thead>
              <tbody>
                {sessions.map((s) => (
                  <tr key={s.id} data-session={s.id}>
                    <td><a href={href('/hosts/' + s.hostId)}>{s.hostname}</a></td>
                    <td>
                      {s.username}
                      {s.runAs && <span className="muted"> → {s.runAs}</span>}
                    </td>
                    <td>{i.date(s.startedAt)}</td>
                    <td className="num">{s.endedAt === null ? t('terms.live') : i.duration((s.endedAt - s.startedAt) / 1000)}</td>
                    <td className="num">{i.bytes(s.bytesOut)} / {i.bytes(s.bytesIn)}</td>
                    <td>{s.reason ?? '—'}</td>
                    <td>
                      <a href={href('/terminals/' + s.id)}>{t('terms.replay')}</a>
                    </td>
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

export interface Cast {
  width: number;
  height: number;
  /** output and resize events, times in seconds with idle gaps capped */
  events: { at: number; kind: 'o' | 'r'; data: string }[];
  duration: number;
}

/** Parses asciicast v2: a JSON header line, then [time, code, data] lines; input is left out (the pty echoes it). */
export function parseCast(text: string, idleCap = 2): Cast {
  const lines = text.split('\n').filter((l) => l.trim());
  const head = JSON.parse(lines[0] ?? '{}') as { width?: number; height?: number };
  const events: Cast['events'] = [];
  let last = 0;
  let at = 0;
  for (const line of lines.slice(1)) {
    let e: [number, string, string];
    try {
      e = JSON.parse(line) as [number, string, string];
    } catch {
      continue; // a recording cut mid-line
    }
    if (!Array.isArray(e) || typeof e[0] !== 'number' || (e[1] !== 'o' && e[1] !== 'r')) continue;
    at += Math.min(Math.max(0, e[0] - last), idleCap);
    last = e[0];
    events.push({ at, kind: e[1], data: String(e[2]) });
  }
  return { width: head.width ?? 80, height: head.height ?? 24, events, duration: at };
}

export function ReplayPage({ id }: { id: string }) {
  const data = useAsync(async () => {
    const [s, r] = await Promise.all([get<Session>(`/api/v1/terminal/sessions/${encodeURIComponent(id)}`), request('GET', `/api/v1/terminal/sessions/${encodeURIComponent(id)}/recording`)]);
    return { s, cast: parseCast(await r.text()) };
  }, [id]);
  return <View a={data}>{({ s, cast }) => <Player s={s} cast={cast} />}</View>;
}

function Player({ s, cast }: { s: Session; cast: Cast }) {
  const i = useI18n();
  const { t } = i;
  const { box, x } = useXterm({ cols: cast.width, rows: cast.height, fit: false });
  const [pos, setPos] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const applied = useRef({ n: 0 });
  const posRef = useRef(0);

  /** Brings the screen to time `to`: forward by applying the next events, backward by replaying from the start. */
  const seek = useCallback(
    (to: number) => {
      if (!x) return;
      const { term } = x;
      if (to < posRef.current) {
        term.reset();
        term.resize(cast.width, cast.height);
        applied.current.n = 0;
      }
      let out = '';
      const flush = () => {
        if (out) term.write(out);
        out = '';
      };
      const ev = cast.events;
      while (applied.current.n < ev.length && ev[applied.current.n]!.at <= to) {
        const e = ev[applied.current.n++]!;
        if (e.kind === 'o') out += e.data;
        else {
          const m = /^(\d+)x(\d+)$/.exec(e.data);
          if (m) {
            flush();
            term.resize(Math.max(2, Number(m[1])), Math.max(2, Number(m[2])));
          }
        }
      }
      flush();
      posRef.current = to;
      setPos(to);
    },
    [x, cast],
  );

  useEffect(() => {
    if (x) setPlaying(true);
  }, [x]);

  useEffect(() => {
    if (!playing || !x) return;
    let prev = performance.now();
    let frame = requestAnimationFrame(function tick(now) {
      const next = Math.min(cast.duration, posRef.current + ((now - prev) / 1000) * speed);
      prev = now;
      seek(next);
      if (next >= cast.duration) setPlaying(false);
      else frame = requestAnimationFrame(tick);
    });
    return () => cancelAnimationFrame(frame);
  }, [playing, speed, x, cast, seek]);

  const fmt = useMemo(() => (sec: number) => `${Math.floor(sec / 60)}:${String(Math.floor(sec % 60)).padStart(2, '0')}`, []);
  const ended = pos >= cast.duration;

  return (
    <section aria-labelledby="replay-title">
      <div className="page-head">
        <h1 id="replay-title">{t('replay.title', { user: s.username, host: s.hostname })}</h1>
        <span className="muted">{i.date(s.startedAt)}</span>
        <div className="actions">
          <a className="button" href={href('/terminals')}>{t('replay.back')}</a>
          <a className="button" href={`/api/v1/terminal/sessions/${encodeURIComponent(s.id)}/recording`} download={`${s.id}.cast`}>
            {t('replay.download')}
          </a>
        </div>
      </div>
      {s.recordingTruncated && <p className="muted">{t('replay.truncated')}</p>}
      <div className="row wrap player">
        <button
          type="button"
          className="primary small"
          onClick={() => {
            if (ended) seek(0);
            setPlaying((p) => !p || ended);
          }}
        >
          {playing ? t('replay.pause') : t('replay.play')}
        </button>
        <button type="button" className="small" onClick={() => seek(0)}>{t('replay.restart')}</button>
        <span role="radiogroup" aria-label={t('replay.speed')} className="row">
          {[1, 2].map((n) => (
            <label key={n} className="inline">
              <input type="radio" name="speed" checked={speed === n} onChange={() => setSpeed(n)} /> {n}×
            </label>
          ))}
        </span>
        <input
          type="range"
          aria-label={t('replay.seek')}
          min={0}
          max={cast.duration}
          step="any"
          value={pos}
          onChange={(e) => seek(Number(e.target.value))}
          style={{ flex: 1, minWidth: 200 }}
          data-testid="seek"
        />
        <span data-testid="replay-pos" data-ended={ended ? 'true' : 'false'}>
          {fmt(pos)} / {fmt(cast.duration)}
        </span>
      </div>
      <div className="term-box replay" ref={box} data-testid="replay" />
    </section>
  );
}
