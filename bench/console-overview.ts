/**
 * The console's fleet overview with N simulated hosts (real protocol, real signatures), each sending
 * a real usage sample every 5 s, in headless Chromium (playwright-core, /usr/bin/chromium):
 *   - first render: navigation start → the first host row is in the DOM and painted
 *   - interactive: first render, then the end of the last long task (> 50 ms) before a 500 ms quiet
 *     window — after it a keystroke is answered at once; also measured directly: a search typed
 *     into the box until the filtered list is painted
 *   - scrolling the virtualised list from top to bottom: frame times
 *   - the page's main-thread time (CDP TaskDuration) and samples received per second while live
 *     updates flow
 *
 * Usage: node bench/dist/console-overview.js [N=10000] [seconds=30]
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ADMIN_PASSWORD, TestHub, simFacts, newSimIdentity, simConnect, type RawAgent } from '@tether/testkit';
import { realUsage } from './lib/sample.js';
import { encodeFrame, newMessageId } from '@tether/protocol';
import { RESULTS, nodeFlags, cpuSec, machine, percentile, pool } from './lib/util.js';

const SIMS = process.argv[2] === '--sims';
const N = Number(process.argv[SIMS ? 3 : 2] ?? 10000);
const SECONDS = Number(process.argv[3] ?? 30);
const INTERVAL = 5000;
const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];

/** Runs in the page before its own scripts: marks the first painted host row, long tasks, live messages. */
const PROBE = `
window.__b = { firstRow: 0, longTasks: [], liveMsgs: 0 };
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__b.longTasks.push([e.startTime, e.duration]); }).observe({ entryTypes: ['longtask'] });
const mo = new MutationObserver(() => {
  if (!window.__b.firstRow && document.querySelector('[role=row][data-host]')) {
    mo.disconnect();
    requestAnimationFrame(() => setTimeout(() => { window.__b.firstRow = performance.now(); }, 0));
  }
});
document.addEventListener('DOMContentLoaded', () => mo.observe(document.body, { childList: true, subtree: true }));
const WS = window.WebSocket;
window.WebSocket = class extends WS {
  constructor(...a) { super(...a); if (String(a[0]).includes('/api/v1/live')) this.addEventListener('message', () => window.__b.liveMsgs++); }
};
`;


/** The child process: N agents that enrol, then each send a usage report every 5 s. */
async function runSims(): Promise<void> {
  const sample = await realUsage();
  const sockets: RawAgent[] = [];
  const timers: NodeJS.Timeout[] = [];
  const token = process.env.ENROLL_TOKEN!;
    await pool(Array.from({ length: N }, (_, i) => i), 256, async (i) => {
      const a = await simConnect(process.env.HUB_URL!, newSimIdentity(), { token, facts: simFacts(`sim-${String(i).padStart(5, '0')}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) });
      a.keep = false;
      sockets[i] = a;
    });
    // Every host reports every 5 s, spread over the interval, so live updates flow at N/5 per second.
    const send = (i: number) => sockets[i]!.sendRaw(encodeFrame('report.usage', { ...sample, ts: Date.now(), cpu: sample.cpu ? { ...sample.cpu, total: { ...sample.cpu.total, busy: (i * 7 + Date.now() / 1000) % 100 } } : undefined, load: { one: (i % 100) / 10, five: 1, fifteen: 1 } }, { id: newMessageId() }));
    for (let i = 0; i < N; i++) send(i);
    for (let i = 0; i < N; i++) {
      timers.push(
        setTimeout(() => {
          send(i);
          timers.push(setInterval(() => send(i), INTERVAL));
        }, (i / N) * INTERVAL),
      );
    }
  process.stdout.write('ready\n');
  await new Promise(() => {});
}

async function main(): Promise<void> {
  const hub = await TestHub.start({ db: 'sqlite', heartbeat: '10s', env: { TETHER_LOG_LEVEL: 'info' } });
  let sims: ChildProcess | undefined;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const token = await hub.enrollToken({ expiresInSec: 3600 });
    // The simulated agents run in their own process: Playwright's commands share the event loop of
    // the process that drives the browser, and 10,000 sockets would delay them.
    const t0 = performance.now();
    sims = spawn(process.execPath, [fileURLToPath(import.meta.url), '--sims', String(N)], { env: { ...process.env, HUB_URL: hub.url, ENROLL_TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      sims!.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && res());
      sims!.on('exit', (c) => rej(new Error(`simulators exited with ${c}`)));
    });
    const connectSec = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 3000));

    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // Log in once (the session cookie), then measure fresh page loads.
    const login = await ctx.newPage();
    await login.goto(hub.url + '/');
    await login.getByLabel('Password').fill(ADMIN_PASSWORD);
    await login.getByRole('button', { name: 'Log in' }).click();
    await login.locator('[role=row][data-host]').first().waitFor({ timeout: 60_000 });
    await login.close();

    const runs: { firstRenderMs: number; interactiveMs: number; overviewBytes: number; split: Record<string, [number, number]> }[] = [];
    const page = await ctx.newPage();
    await page.addInitScript(PROBE);
    for (let r = 0; r < 3; r++) {
      let overviewBytes = 0;
      const onResp = (res: import('playwright-core').Response) => {
        if (res.url().includes('/api/v1/metrics/overview')) void res.body().then((b) => (overviewBytes = b.length)).catch(() => {});
      };
      page.on('response', onResp);
      await page.goto(hub.url + '/?run=' + r);
      await page.waitForFunction(() => ((globalThis as unknown as { __b?: { firstRow: number } }).__b?.firstRow ?? 0) > 0, undefined, { timeout: 60_000 });
      // Interactive: the first 500 ms without a long task after the first render.
      await page.waitForTimeout(2500);
      const b = (await page.evaluate('window.__b')) as { firstRow: number; longTasks: [number, number][] };
      let tti = b.firstRow;
      for (const [start, dur] of b.longTasks.sort((x, y) => x[0] - y[0])) {
        if (start > tti + 500) break;
        tti = Math.max(tti, start + dur);
      }
      // Where the time to first render goes: when each request the page makes started and ended.
      const split = (await page.evaluate(`(() => {
        const out = {};
        const nav = performance.getEntriesByType('navigation')[0];
        if (nav) out.html = [0, Math.round(nav.responseEnd)];
        for (const e of performance.getEntriesByType('resource')) {
          const u = new URL(e.name);
          const k = u.pathname.startsWith('/assets/') ? u.pathname.replace(/-[A-Za-z0-9_-]+\\./, '.').slice(8) : u.pathname.replace('/api/v1/', '');
          if (!(k in out)) out[k] = [Math.round(e.startTime), Math.round(e.responseEnd)];
        }
        return out;
      })()`)) as Record<string, [number, number]>;
      runs.push({ firstRenderMs: Math.round(b.firstRow), interactiveMs: Math.round(tti), overviewBytes, split });
      page.off('response', onResp);
    }
    const rows = await page.locator('[role=row][data-host]').count();

    // A search typed while updates flow, until the filtered list is painted.
    const searchMs: number[] = [];
    for (const q of [N - 1, Math.floor(N / 2), 7].map((i) => `sim-${String(i).padStart(5, '0')}`)) {
      await page.getByLabel('Search name, IP or MAC').fill('');
      await page.waitForTimeout(300);
      const ms = (await page.evaluate(`new Promise((done) => {
        const box = document.querySelector('input[type=search]');
        const t = performance.now();
        const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
        setter.call(box, ${JSON.stringify(q)});
        box.dispatchEvent(new Event('input', { bubbles: true }));
        const check = () => {
          const first = document.querySelector('[role=row][data-host]');
          if (first && first.getAttribute('data-host').startsWith(${JSON.stringify(q)})) requestAnimationFrame(() => done(performance.now() - t));
          else requestAnimationFrame(check);
        };
        check();
      })`)) as number;
      searchMs.push(Math.round(ms));
    }
    await page.getByLabel('Search name, IP or MAC').fill('');
    await page.waitForTimeout(500);

    // Scroll the virtualised list from top to bottom, 120 px per frame… in 400 px steps, timing frames.
    const frames = (await page.evaluate(`new Promise((done) => {
      const el = document.querySelector('[data-testid=host-scroller]');
      const times = [];
      let last = performance.now();
      const step = () => {
        const now = performance.now();
        times.push(now - last);
        last = now;
        if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1 || times.length > 2000) return done(times.slice(1));
        el.scrollTop += 400;
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    })`)) as number[];
    frames.sort((a, b) => a - b);

    // Main-thread time while live updates flow.
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    const metric = async () => Object.fromEntries(((await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] }).metrics.map((m) => [m.name, m.value]));
    const m0 = await metric();
    const msgs0 = (await page.evaluate('window.__b.liveMsgs')) as number;
    const hubCpu0 = cpuSec(hub.proc.pid);
    const w0 = Date.now();
    await page.waitForTimeout(SECONDS * 1000);
    const m1 = await metric();
    const wall = (Date.now() - w0) / 1000;
    const msgs = ((await page.evaluate('window.__b.liveMsgs')) as number) - msgs0;
    const hubCpuPct = ((cpuSec(hub.proc.pid) - hubCpu0) / wall) * 100;
    const mainThreadPct = ((m1.TaskDuration! - m0.TaskDuration!) / wall) * 100;
    const scriptPct = ((m1.ScriptDuration! - m0.ScriptDuration!) / wall) * 100;
    const heapMiB = Math.round(m1.JSHeapUsedSize! / 2 ** 20);

    const best = (k: 'firstRenderMs' | 'interactiveMs') => Math.min(...runs.map((x) => x[k]));
    const worst = (k: 'firstRenderMs' | 'interactiveMs') => Math.max(...runs.map((x) => x[k]));
    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      hubNodeFlags: nodeFlags(hub.proc.pid),
      hosts: N,
      connectSec: +connectSec.toFixed(1),
      rowsInDom: rows,
      loads: runs,
      firstRenderMs: { best: best('firstRenderMs'), worst: worst('firstRenderMs') },
      interactiveMs: { best: best('interactiveMs'), worst: worst('interactiveMs') },
      searchToPaintMs: searchMs,
      scrollFrameMs: { p50: +percentile(frames, 50).toFixed(1), p95: +percentile(frames, 95).toFixed(1), max: +(frames[frames.length - 1] ?? 0).toFixed(1), frames: frames.length },
      live: { measuredSec: Math.round(wall), samplesPerSec: Math.round(msgs / wall), pageMainThreadPercent: +mainThreadPct.toFixed(1), pageScriptPercent: +scriptPct.toFixed(1), jsHeapMiB: heapMiB, hubCpuPercent: +hubCpuPct.toFixed(1) },
    };
    const md = [
      `## Console overview: ${N} hosts in Chromium — ${result.date}`,
      ``,
      `Machine: ${result.machine}. Hub, ${N} simulated agents (one real usage sample each, re-sent every ${INTERVAL / 1000} s: ${Math.round(N / (INTERVAL / 1000))} samples/s) and headless Chromium share the cores; the hub runs with node flags ${result.hubNodeFlags}. Page loads with a logged-in session; times from navigation start.`,
      ``,
      `| figure | value | target |`,
      `|---|---|---|`,
      `| first render (first host row painted), best / worst of 3 loads | ${result.firstRenderMs.best} / ${result.firstRenderMs.worst} ms | < 1 s |`,
      `| interactive (first render, then no long task for 500 ms), best / worst | ${result.interactiveMs.best} / ${result.interactiveMs.worst} ms | < 1 s |`,
      `| overview snapshot (GET /api/v1/metrics/overview) | ${Math.round((runs[0]?.overviewBytes ?? 0) / 1024)} KiB | |`,
      `| host rows in the DOM (virtualised) | ${rows} of ${N} | |`,
      `| search typed → filtered list painted | ${searchMs.join(' / ')} ms | |`,
      `| scrolling top to bottom, 400 px a frame: frame time p50 / p95 / max | ${result.scrollFrameMs.p50} / ${result.scrollFrameMs.p95} / ${result.scrollFrameMs.max} ms (${frames.length} frames) | 16.7 ms a frame |`,
      `| live samples received by the page | ${result.live.samplesPerSec} /s over ${result.live.measuredSec} s | |`,
      `| page main thread busy (CDP TaskDuration) / of it script | ${result.live.pageMainThreadPercent} % / ${result.live.pageScriptPercent} % | |`,
      `| page JS heap | ${heapMiB} MiB | |`,
      `| hub CPU meanwhile (ingest + live push) | ${result.live.hubCpuPercent} % of one core | |`,
      ``,
      `Requests of each load (ms from navigation start, start → end) and the first render:`,
      ``,
      ...runs.map((r, i) => `- load ${i + 1}: ${Object.entries(r.split).map(([k, [a, b]]) => `${k} ${a}→${b}`).join(', ')}; first row ${r.firstRenderMs}`),
      ``,
    ].join('\n');
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, `console-overview-${N}.json`), JSON.stringify(result, null, 2) + '\n');
    appendFileSync(join(RESULTS, 'console-overview.md'), md + '\n');
    process.stdout.write(md + '\n');
  } finally {
    sims?.kill('SIGKILL');
    await browser.close().catch(() => {});
    await hub.cleanup();
  }
}

(SIMS ? runSims() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
