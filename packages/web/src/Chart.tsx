/** A uPlot time-series chart that follows its container's width and the theme's colours. */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

const PALETTE = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];

/** Tick steps for byte axes: powers of two of each 1024-based unit, so ticks land on whole B, KiB, MiB… */
const BINARY_INCRS = [0, 1, 2, 3, 4, 5].flatMap((k) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** k));

export interface ChartProps {
  title: string;
  /** names the chart in the page (data-chart) */
  name?: string;
  /** x: seconds since the epoch */
  xs: number[];
  series: { label: string; values: (number | null)[] }[];
  /** a value, for the legend and (with `digits`) for the axis */
  fmt: (v: number, digits?: number) => string;
  height?: number;
  locale: string;
  /** the time under the cursor, when the chart is clicked (ms) */
  onPick?: (ms: number) => void;
  yMax?: number;
  /** the values are bytes: ticks on whole 1024-based units, and an axis of 1 KiB when all are 0 */
  binary?: boolean;
  /** the time span the axis shows (seconds), whatever part of it has data; default: the data's */
  xRange?: [number, number];
  /** the legend's label for the time under the cursor (translated) */
  timeLabel?: string;
}

const lastValue = (col: ArrayLike<number | null | undefined>): number | null => {
  for (let k = col.length - 1; k >= 0; k--) if (col[k] !== null && col[k] !== undefined) return col[k] as number;
  return null;
};

/** Tick labels with the fewest fraction digits (up to 2) that write every tick exactly (one more digit changes none), else distinctly. */
function tickLabels(vals: number[], fmt: (v: number, digits: number) => string): string[] {
  const at = (d: number) => vals.map((v) => fmt(v, d));
  for (let d = 0; d <= 2; d++) {
    const l = at(d);
    const next = at(d + 1);
    if (new Set(l).size === l.length && l.every((x, k) => x === next[k])) return l;
  }
  for (let d = 0; d <= 2; d++) {
    const l = at(d);
    if (new Set(l).size === l.length) return l;
  }
  return at(2);
}

export function Chart({ title, name, xs, series, fmt, height = 180, locale, onPick, yMax, binary, xRange, timeLabel = 'Time' }: ChartProps) {
  const fig = useRef<HTMLElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('\u0000');
  const fmtRef = useRef(fmt);
  fmtRef.current = fmt;
  const pickRef = useRef(onPick);
  pickRef.current = onPick;
  const rangeRef = useRef(xRange);
  rangeRef.current = xRange;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#888';
    const grid = css.getPropertyValue('--grid').trim() || '#eee';
    const dtf = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const tickSec = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const tickMin = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
    const tickDay = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric' });
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    let yTicks: string[] = [];
    const opts: uPlot.Options = {
      width: el.clientWidth || 400,
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // The range asked for, not only the part of it with data (a new host has minutes of a "24 h" chart).
        x: { time: true, range: (_u, min, max) => rangeRef.current ?? [min, max] },
        y:
          yMax !== undefined
            ? { range: (_u, _min, max) => [0, Math.max(yMax, max)] }
            : binary
              ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1024] }
              : { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          ...axis,
          // Seconds for short spans, dates for long ones.
          values: (u, vals) => {
            const span = (u.scales.x!.max ?? 0) - (u.scales.x!.min ?? 0);
            const f = span < 1800 ? tickSec : span > 2 * 86400 ? tickDay : tickMin;
            return vals.map((v) => f.format(v * 1000));
          },
        },
        {
          ...axis,
          size: 70,
          ...(binary ? { incrs: BINARY_INCRS } : {}),
          values: (_u, vals) => (yTicks = tickLabels(vals, (v, d) => fmtRef.current(v, d))),
        },
      ],
      series: [
        // Away from the plot the legend shows the latest values (and their time), not dashes.
        { label: timeLabel, value: (u, v, _s, idx) => ((v ?? (idx === null ? lastValue(u.data[0]) : null)) === null ? '—' : dtf.format((v ?? lastValue(u.data[0]))! * 1000)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length]!,
          width: 1.5,
          spanGaps: false,
          value: (u: uPlot, v: number | null, sidx: number, idx: number | null) => {
            const x = idx === null ? lastValue(u.data[sidx]!) : v;
            return x === null || x === undefined ? '—' : fmtRef.current(x);
          },
        })),
      ],
      hooks: {
        ready: [
          (u) =>
            u.over.addEventListener('click', () => {
              const idx = u.cursor.idx;
              const x = idx !== null && idx !== undefined ? u.data[0][idx] : undefined;
              if (x !== undefined && pickRef.current) pickRef.current(x * 1000);
            }),
        ],
        // What the chart shows, for tests and for anyone inspecting the page.
        draw: [
          (u) => {
            const f = fig.current;
            if (!f) return;
            f.dataset.xMin = String(u.scales.x!.min ?? '');
            f.dataset.xMax = String(u.scales.x!.max ?? '');
            f.dataset.yTicks = JSON.stringify(yTicks);
          },
        ],
      },
    };
    const u = new uPlot(opts, [xs, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt when the series set, the height or the locale change; data alone goes through setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, height, locale, yMax, binary, timeLabel]);

  useEffect(() => {
    plot.current?.setData([xs, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [xs, series]);

  // A new span with the same data (a range picked while the answer loads): the axis follows.
  useEffect(() => {
    if (xRange) plot.current?.setScale('x', { min: xRange[0], max: xRange[1] });
  }, [xRange?.[0], xRange?.[1]]);

  return (
    <figure className="chart" ref={fig} data-chart={name} data-points={xs.length} data-last={xs.length ? xs[xs.length - 1] : ''}>
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
