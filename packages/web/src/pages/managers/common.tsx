/** What the manager tabs share: plain words for `unavailable`/`refused`, actions with a result line, followed streams. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError, request } from '../../api';
import { useI18n } from '../../i18n';
import { ErrorBox, Loading, type Async } from '../../ui';

export const hostApi = (id: string, p: string) => `/api/v1/hosts/${encodeURIComponent(id)}${p}`;

/**
 * Answer deadlines for changes the hub waits on an engine for (the hub's own limit for each, and
 * a margin): a container stopping, an image pulling or a unit restarting may take longer than the
 * console's usual 15 s without anything being wrong.
 */
export const SLOW = {
  /** the hub's default agent round trip (cron, power, signals, image removal, the hosts file) */
  agent: { timeoutMs: 75_000 },
  container: { timeoutMs: 315_000 },
  image: { timeoutMs: 915_000 },
  unit: { timeoutMs: 135_000 },
};

/** An error, said plainly when the host lacks the thing (409 unavailable) or its agent refuses (403 refused). */
export function Problem({ error, retry }: { error: unknown; retry?: () => void }) {
  const { t } = useI18n();
  if (error instanceof ApiError && (error.code === 'unavailable' || error.code === 'refused'))
    return (
      <div className="state empty" data-testid={'mgr-' + error.code}>
        {t(error.code === 'unavailable' ? 'mgr.unavailable' : 'mgr.refused', { message: error.message })}
      </div>
    );
  return retry ? <ErrorBox error={error} retry={retry} /> : <ErrorBox error={error} />;
}

export function MView<T>({ a, children }: { a: Async<T>; children: (d: T) => ReactNode }) {
  if (a.data === undefined && a.error) return <Problem error={a.error} retry={a.reload} />;
  if (a.data === undefined) return <Loading />;
  return (
    <>
      {a.error && <Problem error={a.error} retry={a.reload} />}
      {children(a.data)}
    </>
  );
}

/** Runs one action at a time; shows what happened. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: string } | { error: unknown }>();
  const run = async (fn: () => Promise<unknown>, what: string, after?: () => void) => {
    setBusy(true);
    setResult(undefined);
    try {
      await fn();
      setResult({ ok: what });
      after?.();
    } catch (e) {
      setResult({ error: e });
    } finally {
      setBusy(false);
    }
  };
  const note = <ActionNote result={result} />;
  return { busy, run, note, clear: () => setResult(undefined) };
}

function ActionNote({ result }: { result: { ok: string } | { error: unknown } | undefined }) {
  const { t } = useI18n();
  if (!result) return null;
  if ('ok' in result)
    return (
      <p className="muted" role="status" data-testid="mgr-done">
        {t('mgr.done', { what: result.ok })}
      </p>
    );
  return <Problem error={result.error} />;
}

/** A log that can be read once or followed (the hub streams until we abort). ndjson: Docker's {stream, data} lines. */
export function LogView({ path, ndjson, testid }: { path: string; ndjson?: boolean; testid?: string }) {
  const { t } = useI18n();
  const [text, setText] = useState('');
  const [follow, setFollow] = useState(false);
  const [error, setError] = useState<unknown>();
  const [n, setN] = useState(0);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const ac = new AbortController();
    setError(undefined);
    setText('');
    const sep = path.includes('?') ? '&' : '?';
    const url = path + sep + (follow ? 'follow=true' + (ndjson ? '&format=ndjson' : '') : ndjson ? 'format=text' : '');
    (async () => {
      const r = await request('GET', url, { signal: ac.signal });
      if (!follow && !ndjson) {
        const j = (await r.json()) as { entries: { ts: number; message: string }[] };
        setText(j.entries.map((e) => `${new Date(e.ts).toISOString().slice(0, 19).replace('T', ' ')} ${e.message}\n`).join(''));
        return;
      }
      const reader = r.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const chunk = dec.decode(value, { stream: true });
        if (!ndjson || !follow) {
          setText((s) => (s + chunk).slice(-200_000));
          continue;
        }
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        const add = lines
          .filter(Boolean)
          .map((l) => {
            const o = JSON.parse(l) as { data?: string; error?: { message: string } };
            return o.data ?? `[${o.error?.message ?? ''}]\n`;
          })
          .join('');
        setText((s) => (s + add).slice(-200_000));
      }
    })().catch((e: Error) => {
      if (e.name !== 'AbortError') setError(e);
    });
    return () => ac.abort();
  }, [path, follow, n]);
  useEffect(() => {
    const p = pre.current;
    if (p) p.scrollTop = p.scrollHeight;
  }, [text]);
  return (
    <div>
      <div className="row">
        <label className="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> {t('mgr.follow')}
        </label>
        {!follow && (
          <button type="button" className="small" onClick={() => setN((x) => x + 1)}>
            {t('action.refresh')}
          </button>
        )}
      </div>
      {error !== undefined && <Problem error={error} />}
      <pre className="output" ref={pre} data-testid={testid ?? 'log'}>
        {text}
      </pre>
    </div>
  );
}
