/**
 * The CLI's client against a real hub process frozen with SIGSTOP (it keeps its socket: the kernel
 * still accepts connections, nothing answers): requests, WebSocket openings and flowing streams
 * all end within the request timeout with "hub not responding", never hang.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { TestHub } from '@tether/testkit';
import { Client, HubNotResponding, setRequestTimeout } from '../src/client.js';

const TIMEOUT_MS = 1000;
let hub: TestHub;
before(async () => {
  hub = await TestHub.start();
  setRequestTimeout(TIMEOUT_MS);
});
after(async () => {
  setRequestTimeout(undefined);
  try {
    process.kill(hub.proc.pid, 'SIGCONT');
  } catch {
    /* gone */
  }
  await hub.cleanup();
});

const frozen = async <T>(fn: () => Promise<T>): Promise<T> => {
  process.kill(hub.proc.pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(hub.proc.pid, 'SIGCONT');
  }
};

const timed = async (p: Promise<unknown>): Promise<{ err: Error; ms: number }> => {
  const t0 = Date.now();
  try {
    await p;
  } catch (err) {
    return { err: err as Error, ms: Date.now() - t0 };
  }
  assert.fail('expected a failure');
};

test('a request to a frozen hub fails after the request timeout with "hub not responding … at URL"', async () => {
  const c = new Client(hub.url, hub.token);
  assert.ok(Array.isArray((await c.call<{ hosts: unknown[] }>('GET', '/api/v1/hosts')).hosts), 'answers while running');
  const { err, ms } = await frozen(() => timed(c.call('GET', '/api/v1/hosts')));
  assert.ok(err instanceof HubNotResponding, String(err));
  assert.equal(err.message, `hub not responding (no answer in 1 s) at ${hub.url}`);
  assert.ok(ms >= TIMEOUT_MS - 50 && ms < TIMEOUT_MS + 3000, `${ms} ms`);
});

test('a call that may wait on a host keeps waiting only while the hub answers its health check', async () => {
  const c = new Client(hub.url, hub.token);
  c.patienceMs = 60_000;
  const { err, ms } = await frozen(() => timed(c.call('GET', '/api/v1/hosts')));
  assert.ok(err instanceof HubNotResponding, String(err));
  assert.ok(ms < 3 * TIMEOUT_MS + 3000, `ended after the health check went unanswered: ${ms} ms`);
});

test('opening a WebSocket to a frozen hub fails after the request timeout the same way', async () => {
  const c = new Client(hub.url, hub.token);
  const { err, ms } = await frozen(() =>
    timed(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(hub.url.replace(/^http/, 'ws') + '/api/v1/live', c.wsOptions());
        ws.once('open', resolve);
        ws.once('error', (e) => reject(c.wsError(e)));
      }),
    ),
  );
  assert.ok(err instanceof HubNotResponding, String(err));
  assert.ok(ms < TIMEOUT_MS + 3000, `${ms} ms`);
});

test('an open WebSocket whose hub stops answering is cut by the heartbeat within two timeouts', async () => {
  const c = new Client(hub.url, hub.token);
  const ws = new WebSocket(hub.url.replace(/^http/, 'ws') + '/api/v1/live', c.wsOptions());
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  let dead: Error | undefined;
  const deadNow = () => dead;
  c.heartbeat(ws, (e) => (dead = e));
  // Alive: pings are answered, nothing happens for three timeouts.
  await new Promise((r) => setTimeout(r, 3 * TIMEOUT_MS));
  assert.equal(deadNow(), undefined);
  const { ms } = await frozen(async () => {
    const t0 = Date.now();
    await new Promise((r) => ws.once('close', r));
    return { ms: Date.now() - t0 };
  });
  assert.ok(deadNow() instanceof HubNotResponding, String(deadNow()));
  assert.ok(ms <= 2 * TIMEOUT_MS + 2000, `${ms} ms`);
});

test('a flowing stream is watched: a frozen hub is reported within two timeouts, a live one never', async () => {
  const c = new Client(hub.url, hub.token);
  let dead: Error | undefined;
  const deadNow = () => dead;
  const stop = c.watch((e) => (dead = e));
  try {
    await new Promise((r) => setTimeout(r, 3 * TIMEOUT_MS));
    assert.equal(deadNow(), undefined);
    const ms = await frozen(async () => {
      const t0 = Date.now();
      while (!deadNow() && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      return Date.now() - t0;
    });
    assert.ok(deadNow() instanceof HubNotResponding, String(deadNow()));
    assert.ok(ms <= 2 * TIMEOUT_MS + 2000, `${ms} ms`);
  } finally {
    stop();
  }
});
