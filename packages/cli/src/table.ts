/**
 * Plain aligned columns for terminals; --json gives the raw data instead.
 *
 * Lines are cut to the width of the output, as `ps` does: on a terminal its width; otherwise
 * COLUMNS when set, else no limit (a pipe into grep or a file gets whole lines). `--wide` never
 * cuts. The widest columns give way first, never below their heading, and a cut cell ends in `…`;
 * identifiers (ids, names, pids) are never cut.
 */

let wide = false;
/** Set once by the CLI from the global `--wide` flag. */
export function setWide(on: boolean): void {
  wide = on;
}

/** The width lines are cut to (Infinity: not cut). */
export function outputWidth(out: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  if (wide) return Infinity;
  const fromEnv = /^\d+$/.test(env.COLUMNS ?? '') && Number(env.COLUMNS) > 0 ? Number(env.COLUMNS) : undefined;
  if (out.isTTY) return out.columns || fromEnv || 80;
  return fromEnv ?? Infinity;
}

const GAP = 2;

/** Column widths that fit `max`: the widest column shrinks first, none below its minimum. */
export function fitWidths(natural: number[], minimum: number[], max: number): number[] {
  const w = [...natural];
  let total = w.reduce((a, b) => a + b, 0) + GAP * Math.max(0, w.length - 1);
  while (total > max) {
    let widest = -1;
    for (let i = 0; i < w.length; i++) if (w[i]! > minimum[i]! && (widest < 0 || w[i]! > w[widest]!)) widest = i;
    if (widest < 0) break; // everything at its minimum: longer than the terminal, as ps is then
    let second = 0;
    for (let i = 0; i < w.length; i++) if (i !== widest) second = Math.max(second, w[i]!);
    const step = Math.min(total - max, w[widest]! - Math.max(minimum[widest]!, second - 1));
    w[widest]! -= Math.max(1, step);
    total -= Math.max(1, step);
  }
  return w;
}

/** What users type into the next command (`job show ID`, `proc kill HOST PID`) is never cut. */
const WHOLE = new Set(['ID', 'TASK', 'JOB', 'PID', 'SEQ', 'HOST', 'HOSTNAME', 'UNIT', 'NAME']);

const cut = (s: string, n: number) => (s.length <= n ? s : n <= 1 ? s.slice(0, n) : s.slice(0, n - 1) + '…');

export function table(headers: string[], rows: string[][], maxWidth = outputWidth()): string {
  const natural = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const widths = fitWidths(natural, headers.map((h, i) => (WHOLE.has(h) ? natural[i]! : Math.min(natural[i]!, Math.max(h.length, 3)))), maxWidth);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const text = cut(c, widths[i]!);
        return i === cells.length - 1 ? text : text.padEnd(widths[i]!);
      })
      .join(' '.repeat(GAP))
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function ago(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
