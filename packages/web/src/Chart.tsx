/** A uPlot time-series chart that follows its container's width and the theme's colours. */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

const PALETTE = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];

export interface ChartProps {
  title: string;
  /** x: seconds since the epoch */
  xs: number[];
  series: { label: string; values: (number | null)[] }[];
  fmt: (v: number) => string;
  height?: number;
  locale: string;
  /** the time under the cursor, when the chart is clicked (ms) */
  onPick?: (ms: number) => void;
  yMax?: number;
  /** the legend's label for the time under the cursor (translated) */
  timeLabel?: string;
}

export function Chart({ title, xs, series, fmt, height = 180, locale, onPick, yMax, timeLabel = 'Time' }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('\u0000');
  const fmtRef = useRef(fmt);
  fmtRef.current = fmt;
  const pickRef = useRef(onPick);
  pickRef.current = onPick;

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
    const opts: uPlot.Options = {
      width: el.clientWidth || 400,
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: yMax !== undefined ? { range: (_u, _min, max) => [0, Math.max(yMax, max)] } : { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
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
        { ...axis, size: 70, values: (_u, vals) => vals.map((v) => fmtRef.current(v)) },
      ],
      series: [
        { label: timeLabel, value: (_u, v) => (v === null ? '—' : dtf.format(v * 1000)) },
        ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length]!, width: 1.5, spanGaps: false, value: (_u: uPlot, v: number | null) => (v === null ? '—' : fmtRef.current(v)) })),
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
  }, [shape, height, locale, yMax, timeLabel]);

  useEffect(() => {
    plot.current?.setData([xs, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [xs, series]);

  return (
    <figure className="chart" data-points={xs.length} data-last={xs.length ? xs[xs.length - 1] : ''}>
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
