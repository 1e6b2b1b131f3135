/**
 * Web terminals (issue 10): a live terminal on a host (xterm.js over the hub's terminal WebSocket,
 * fit to its box, copy/paste, search, a clear ended state with reconnect, step-up asked before
 * opening), the admin's list of recorded sessions, and a player for their asciicast v2 recordings
 * (1×/2×, seek). Loaded on demand (pages/TerminalRoutes.tsx) so xterm stays out of the main bundle.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import '@xterm/xterm/css/xterm.css';
import { ensureStepUp, get, request, wsUrl, type Host, type Me } from '../api';
import { useI18n } from '../i18n';
import { endReason } from '../terminal-reasons';
import { href } from '../router';
import { Empty, Field, View, useAsync } from '../ui';

const THEME: ITheme = { background: '#111418', foreground: '#e6e6e6', cursor: '#e6e6e6', selectionBackground: '#3a5a80' };
const FONT = '"DejaVu Sans Mono", "Noto Sans Mono", Menlo, Consolas, monospace';
const FONT_SIZE = 14;

type State = { kind: 'connecting' } | { kind: 'open' } | { kind: 'ended'; reason: string; code?: number | null; refused: boolean };

function useXterm(opts: { cols?: number; rows?: number; fit: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const [term, setTerm] = useState<{ term: Terminal; fit: FitAddon; search: SearchAddon }>();
  useEffect(() => {
    const term = new Terminal({ fontFamily: FONT, fontSize: FONT_SIZE, theme: THEME, scrollback: 5000, cursorBlink: opts.fit, ...(opts.cols ? { cols: opts.cols, rows: opts.rows } : {}) });
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
  return <View a={host}>{(h) => (h.capabilities.includes('terminal') ? <TerminalChooser key={h.id} host={h} /> : <Empty>{t('term.noCapability')}</Empty>)}</View>;
}

/**
 * Visiting a terminal's address opens nothing: the page asks which account (the agent's
 * terminal_users when it reports them, else a field holding the agent's own account) and opens a
 * shell only when that is confirmed, since every session is a login on the host, recorded.
 */
/** The page's heading: the host (a link to it) and the word terminal. */
function TerminalTitle({ host }: { host: Host }) {
  const { t } = useI18n();
  return (
    <h1 id="term-title">
      <a href={href('/hosts/' + host.id)}>{host.hostname}</a> · {t('host.terminal')}
    </h1>
  );
}

function TerminalChooser({ host }: { host: Host }) {
  const { t } = useI18n();
  const access = host.facts.access;
  const offered = access?.terminalUsers ?? [];
  const [user, setUser] = useState(offered[0] ?? access?.user ?? '');
  const [opened, setOpened] = useState<{ user: string; n: number }>();
  if (opened) return <TerminalView key={opened.n} host={host} user={opened.user} again={() => setOpened(undefined)} />;
  const who = user.trim() || t('term.agentAccount');
  return (
    <section aria-labelledby="term-title" className="terminal-page">
      <div className="page-head">
        <TerminalTitle host={host} />
      </div>
      <form
        className="card term-start"
        data-testid="term-start"
        onSubmit={(e) => {
          e.preventDefault();
          setOpened({ user: user.trim(), n: Date.now() });
        }}
      >
        {offered.length > 0 ? (
          <Field label={t('term.user')} hint={t('term.usersFromAgent')}>
            <select value={user} onChange={(e) => setUser(e.target.value)}>
              {offered.map((u) => (
                <option key={u} value={u}>
                  {u}
                </option>
              ))}
            </select>
          </Field>
        ) : (
          <Field label={t('term.user')} hint={t('term.userHint')}>
            <input value={user} onChange={(e) => setUser(e.target.value)} placeholder={access?.user ?? ''} size={16} autoComplete="off" spellCheck={false} />
          </Field>
        )}
        <p>{t('term.confirm', { host: host.hostname, user: who })}</p>
        <button type="submit" className="primary" autoFocus>
          {t('term.openAs', { user: who })}
        </button>
      </form>
    </section>
  );
}

/** The keys a phone's keyboard lacks, for the shell: Ctrl (held for the next key), Esc, Tab and the arrows. */
function KeyBar({ term, send, ctrl, setCtrl }: { term: Terminal | undefined; send: (data: string) => void; ctrl: boolean; setCtrl: (on: boolean) => void }) {
  const { t } = useI18n();
  // Arrows as the shell asked for them (application cursor mode: vim, less).
  const arrow = (c: string) => (term?.modes.applicationCursorKeysMode ? '\x1bO' : '\x1b[') + c;
  const keys: [string, string, () => void][] = [
    ['Esc', t('term.key.esc'), () => send('\x1b')],
    ['Tab', t('term.key.tab'), () => send('\t')],
    ['←', t('term.key.left'), () => send(arrow('D'))],
    ['↑', t('term.key.up'), () => send(arrow('A'))],
    ['↓', t('term.key.down'), () => send(arrow('B'))],
    ['→', t('term.key.right'), () => send(arrow('C'))],
  ];
  // mousedown's default would take the focus from the terminal (and close a phone's keyboard)
  const keep = (e: React.MouseEvent) => e.preventDefault();
  return (
    <div className="keybar" role="toolbar" aria-label={t('term.keys')} data-testid="keybar">
      <button type="button" aria-pressed={ctrl} onMouseDown={keep} onClick={() => (setCtrl(!ctrl), term?.focus())}>
        Ctrl
      </button>
      {keys.map(([label, name, fn]) => (
        <button key={label} type="button" aria-label={name} onMouseDown={keep} onClick={() => (fn(), term?.focus())}>
          {label}
        </button>
      ))}
    </div>
  );
}

/** One key typed while Ctrl is held from the key bar: its control character (Ctrl+C is 0x03). */
function withCtrl(data: string): string {
  if (data.length !== 1) return data;
  const c = data.toUpperCase().charCodeAt(0);
  if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
  if (data === ' ') return '\x00';
  if (data === '?') return '\x7f';
  return data;
}

function TerminalView({ host, user, again }: { host: Host; user: string; again: () => void }) {
  const i = useI18n();
  const { t } = i;
  const { box, x } = useXterm({ fit: true });
  const ws = useRef<WebSocket | null>(null);
  const [state, setState] = useState<State>({ kind: 'connecting' });
  const [size, setSize] = useState<{ cols: number; rows: number }>();
  const [note, setNote] = useState('');
  const [ctrl, setCtrl] = useState(false);
  const ctrlRef = useRef(false);
  ctrlRef.current = ctrl;
  const tRef = useRef(t);
  tRef.current = t;

  const send = (m: object) => {
    if (ws.current?.readyState === WebSocket.OPEN) ws.current.send(JSON.stringify(m));
  };

  const connect = useCallback(
    async (term: Terminal, fit: FitAddon) => {
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
      if (user) q.set('user', user);
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
          setState({ kind: 'ended', reason: m.reason ?? '', code: m.exitCode ?? null, refused: m.refused === true });
        }
      };
      s.onclose = (ev) => {
        if (ws.current === s) ws.current = null;
        if (ended) return;
        setState({ kind: 'ended', reason: ev.reason || 'the connection was closed', refused: false });
      };
    },
    [host.id, user],
  );

  // Wire the terminal once: keys to the socket, size changes to resize frames, the box's size to fit.
  useEffect(() => {
    if (!x) return;
    const { term, fit } = x;
    const d1 = term.onData((data) => {
      if (ctrlRef.current) {
        setCtrl(false);
        data = withCtrl(data);
      }
      send({ type: 'input', data });
    });
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
    void connect(term, fit);
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
  const reconnect = () => {
    if (!x) return;
    x.term.write('\r\n');
    void connect(x.term, x.fit);
  };
  const ended = state.kind === 'ended' ? (state.refused ? t('term.refused', { reason: endReason(i, state.reason) }) : t('term.ended', { reason: endReason(i, state.reason) + (state.code ? ` (${state.code})` : '') })) : '';

  return (
    <section aria-labelledby="term-title" className="terminal-page">
      <div className="page-head">
        <TerminalTitle host={host} />
        <span className="muted" data-testid="term-user">{user || t('term.agentAccount')}</span>
        <span data-testid="term-state" data-state={state.kind} role="status" className={state.kind === 'open' ? 'on' : state.kind === 'ended' ? 'off' : ''}>
          {state.kind === 'connecting' && t('term.connecting')}
          {state.kind === 'open' && t('term.open')}
          {ended}
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
      <SearchBar search={x?.search} />
      {note && <p className="error-text" role="alert">{note}</p>}
      {state.kind === 'ended' && (
        <div className="banner" role="alert" data-testid="term-ended">
          {ended}{' '}
          <button type="button" className="small" onClick={reconnect}>
            {t('term.reconnect')}
          </button>{' '}
          <button type="button" className="small" onClick={again}>
            {t('term.otherAccount')}
          </button>
        </div>
      )}
      <div className="term-box" ref={box} data-testid="terminal" />
      <KeyBar term={x?.term} send={(data) => send({ type: 'input', data: ctrlRef.current ? (setCtrl(false), withCtrl(data)) : data })} ctrl={ctrl} setCtrl={setCtrl} />
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
                    <td>{endReason(i, s.reason)}</td>
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

  // A recording keeps the width it was made at: on a narrower screen (a phone) its font is made
  // smaller until it fits, rather than the player being wider than the screen.
  useEffect(() => {
    if (!x) return;
    const el = box.current!;
    let frame = 0;
    const fit = (tries = 6) => {
      cancelAnimationFrame(frame);
      const screen = el.querySelector<HTMLElement>('.xterm-screen');
      const room = (el.parentElement?.clientWidth ?? 0) - (el.offsetWidth - el.clientWidth) - 12;
      if (!screen || room <= 0) return;
      const size = x.term.options.fontSize ?? FONT_SIZE;
      const natural = (screen.offsetWidth * FONT_SIZE) / size;
      let want = natural > room ? Math.max(5, Math.floor(((FONT_SIZE * room) / natural) * 10) / 10) : FONT_SIZE;
      // Cell widths round to whole pixels, so a size that should fit may not: then only smaller.
      if (tries < 6) want = Math.min(want, size);
      if (want === size && screen.offsetWidth > room) want = Math.max(5, size - 0.5);
      if (want !== size) {
        x.term.options.fontSize = want;
        if (tries > 0) frame = requestAnimationFrame(() => fit(tries - 1));
      }
    };
    fit();
    const ro = new ResizeObserver(() => fit());
    if (el.parentElement) ro.observe(el.parentElement);
    const d = x.term.onResize(() => (frame = requestAnimationFrame(() => fit())));
    return () => {
      ro.disconnect();
      d.dispose();
      cancelAnimationFrame(frame);
    };
  }, [x, box]);

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
