/** Small shared pieces: async loading, states, dialogs, labels, sparklines. */
import { Component, createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode, type RefObject } from 'react';
import { ApiError } from './api';
import { useI18n } from './i18n';

export interface Async<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload(): void;
  set(v: T): void;
}

/** Runs `fn` when `deps` change; keeps the last data while reloading. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let gone = false;
    setLoading(true);
    fnRef
      .current()
      .then((v) => {
        if (gone) return;
        setData(v);
        setError(undefined);
      })
      .catch((e: Error) => !gone && setError(e))
      .finally(() => !gone && setLoading(false));
    return () => {
      gone = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { data, error, loading, reload: () => setN((x) => x + 1), set: setData };
}

export function Loading() {
  const { t } = useI18n();
  return (
    <div className="state loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {t('state.loading')}
    </div>
  );
}

export function errorText(t: ReturnType<typeof useI18n>, e: unknown): string {
  if (e instanceof ApiError) return t.tk('error.' + e.code, e.message);
  return (e as Error)?.message ?? String(e);
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const i = useI18n();
  return (
    <div className="state error" role="alert">
      <strong>{i.t('state.error')}</strong> {errorText(i, error)}
      {retry && (
        <button type="button" onClick={retry}>
          {i.t('action.retry')}
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

/**
 * A list as a table: loading / error / empty states, headers, and a last header cell for the
 * row actions (named for screen readers only).
 */
export function TableView<T>({ a, empty, testid, head, actions, children }: { a: Async<T[]>; empty: ReactNode; testid: string; head: ReactNode[]; actions?: ReactNode; children: (rows: T[]) => ReactNode }) {
  return (
    <View a={a}>
      {(d) =>
        d.length === 0 ? (
          <Empty>{empty}</Empty>
        ) : (
          <div className="scroll-x">
            <table className="table" data-testid={testid}>
              <thead>
                <tr>
                  {head.map((h, i) => (
                    <th key={i}>{h}</th>
                  ))}
                  {actions !== undefined && (
                    <th data-label="">
                      <span className="sr-only">{actions}</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>{children(d)}</tbody>
            </table>
          </div>
        )
      }
    </View>
  );
}

/**
 * On a phone a table becomes a stack of cards (styles.css), each cell preceded by its column's
 * name. The names are the table's own header cells, copied into the body cells' `data-label` for
 * the stylesheet to show, so every table has them without each page repeating its headings. A
 * header cell's own `data-label` wins (empty: no name, as for a column of buttons).
 */
export function useCardLabels(root: RefObject<HTMLElement | null>): void {
  useEffect(() => {
    const el = root.current;
    if (!el) return;
    let frame = 0;
    const label = () => {
      frame = 0;
      for (const table of el.querySelectorAll<HTMLTableElement>('table.table')) labelCells(table);
    };
    // Setting attributes is not among what is observed, so labelling does not wake it again.
    const mo = new MutationObserver(() => {
      if (!frame) frame = requestAnimationFrame(label);
    });
    mo.observe(el, { childList: true, subtree: true, characterData: true });
    label();
    return () => {
      mo.disconnect();
      cancelAnimationFrame(frame);
    };
  }, [root]);
}

function labelCells(table: HTMLTableElement): void {
  const head = table.tHead?.rows[0];
  if (!head) return;
  const names: string[] = [];
  for (const th of head.cells) {
    const name = th.dataset.label ?? (th.textContent ?? '').replace(/[▲▼]/g, '').trim();
    for (let k = 0; k < th.colSpan; k++) names.push(name);
  }
  for (const body of table.tBodies)
    for (const row of body.rows) {
      let col = 0;
      for (const td of row.cells) {
        const name = td.colSpan > 1 ? '' : (names[col] ?? '');
        if (td.getAttribute('data-label') !== name) td.setAttribute('data-label', name);
        col += td.colSpan;
      }
    }
}

/** Shows loading / error / the content, for one Async. */
export function View<T>({ a, children }: { a: Async<T>; children: (d: T) => ReactNode }) {
  if (a.data === undefined && a.error) return <ErrorBox error={a.error} retry={a.reload} />;
  if (a.data === undefined) return <Loading />;
  return (
    <>
      {a.error && <ErrorBox error={a.error} retry={a.reload} />}
      {children(a.data)}
    </>
  );
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      className="modal"
      aria-label={title}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2>{title}</h2>
      {children}
    </dialog>
  );
}

// ---- confirmation of destructive actions ----

type ConfirmFn = (message: string, opts?: { danger?: boolean; okLabel?: string }) => Promise<boolean>;
const ConfirmCtx = createContext<ConfirmFn>(async () => false);
export const useConfirm = () => useContext(ConfirmCtx);

export function ConfirmProvider({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const [ask, setAsk] = useState<{ message: string; okLabel?: string | undefined; resolve: (v: boolean) => void }>();
  const confirm = useCallback<ConfirmFn>((message, opts) => new Promise((resolve) => setAsk({ message, okLabel: opts?.okLabel, resolve })), []);
  const done = (v: boolean) => {
    ask?.resolve(v);
    setAsk(undefined);
  };
  return (
    <ConfirmCtx.Provider value={confirm}>
      {children}
      {ask && (
        <Modal title={t('confirm.title')} onClose={() => done(false)}>
          <p>{ask.message}</p>
          <div className="row end">
            <button type="button" onClick={() => done(false)}>
              {t('action.cancel')}
            </button>
            <button type="button" className="danger" autoFocus onClick={() => done(true)}>
              {ask.okLabel ?? t('action.confirm')}
            </button>
          </div>
        </Modal>
      )}
    </ConfirmCtx.Provider>
  );
}

export function Labels({ labels, onPick }: { labels: Record<string, string>; onPick?: (k: string, v: string) => void }) {
  const entries = Object.entries(labels);
  if (!entries.length) return null;
  return (
    <span className="labels">
      {entries.map(([k, v]) =>
        onPick ? (
          <button type="button" key={k} className="chip" onClick={() => onPick(k, v)}>
            {k}={v}
          </button>
        ) : (
          <span key={k} className="chip">
            {k}={v}
          </span>
        ),
      )}
    </span>
  );
}

/** A tiny inline chart: the last values of one series, 0..max. */
export function Sparkline({ values, max = 100, label }: { values: readonly number[]; max?: number; label: string }) {
  const w = 64;
  const h = 18;
  if (values.length < 2) return <svg className="spark" width={w} height={h} role="img" aria-label={label} />;
  const n = values.length;
  const pts = values.map((v, i) => `${((i / (n - 1)) * w).toFixed(1)},${(h - (Math.min(max, Math.max(0, v)) / max) * (h - 2) - 1).toFixed(1)}`).join(' ');
  return (
    <svg className="spark" width={w} height={h} role="img" aria-label={label}>
      <polyline points={pts} fill="none" stroke="currentColor" strokeWidth="1.2" />
    </svg>
  );
}

export function Bar({ value }: { value: number | null }) {
  const v = value ?? 0;
  return (
    <span className={'bar' + (v > 90 ? ' hot' : v > 75 ? ' warm' : '')} aria-hidden="true">
      <span style={{ width: `${Math.min(100, Math.max(0, v))}%` }} />
    </span>
  );
}

/**
 * A command line cut to its cell with an ellipsis: the whole of it on hover (title) and, where there
 * is no hover (a phone), unfolded by a tap.
 */
export function CommandText({ text }: { text: string }) {
  const [open, setOpen] = useState(false);
  return (
    <button type="button" className={'cmdline mono' + (open ? ' open' : '')} title={text} aria-expanded={open} onClick={() => setOpen((o) => !o)}>
      {text}
    </button>
  );
}

/**
 * Copies `text`. navigator.clipboard exists only in secure contexts (HTTPS, localhost), and a hub
 * on plain HTTP by its address is not one: there the text is copied through a hidden textarea and
 * execCommand, and when even that is refused, `selectIn` (the element showing the text) is selected
 * so that Ctrl+C does it.
 */
export function CopyButton({ text, selectIn }: { text: string; selectIn?: RefObject<HTMLElement | null> }) {
  const { t } = useI18n();
  const [done, setDone] = useState<'copied' | 'selected'>();
  const flash = (what: 'copied' | 'selected') => {
    setDone(what);
    setTimeout(() => setDone(undefined), what === 'copied' ? 1500 : 4000);
  };
  const fallback = () => {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    const el = selectIn?.current;
    if (!ok && el) {
      const range = document.createRange();
      range.selectNodeContents(el);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
    }
    if (ok || el) flash(ok ? 'copied' : 'selected');
  };
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        if (navigator.clipboard?.writeText) void navigator.clipboard.writeText(text).then(() => flash('copied'), fallback);
        else fallback();
      }}
    >
      {done === 'copied' ? t('action.copied') : done === 'selected' ? t('action.selectedCopy') : t('action.copy')}
    </button>
  );
}

export function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  // The hint sits outside the label, so a control's accessible name is the label alone.
  return (
    <div className="field">
      <label>
        <span>{label}</span>
        {children}
      </label>
      {hint && <small>{hint}</small>}
    </div>
  );
}

/** Keeps one broken section from blanking the whole console. */
export class Boundary extends Component<{ children: ReactNode; resetKey?: string }, { error: Error | null; key: string | undefined }> {
  override state = { error: null as Error | null, key: undefined as string | undefined };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  static getDerivedStateFromProps(p: { resetKey?: string }, s: { error: Error | null; key: string | undefined }) {
    return p.resetKey !== s.key ? { error: null, key: p.resetKey } : null;
  }
  override render() {
    return this.state.error ? <ErrorBox error={this.state.error} /> : this.props.children;
  }
}

/** A danger button that asks first, then revokes; a failure goes to `onError`, and `done` runs after either. */
export function RevokeButton({ question, revoke, onError, done }: { question: string; revoke: () => Promise<unknown>; onError: (e: unknown) => void; done: () => void }) {
  const { t } = useI18n();
  const confirm = useConfirm();
  return (
    <button
      type="button"
      className="small danger"
      onClick={async () => {
        if (!(await confirm(question, { okLabel: t('action.revoke') }))) return;
        await revoke().catch(onError);
        done();
      }}
    >
      {t('action.revoke')}
    </button>
  );
}
