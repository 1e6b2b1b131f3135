/**
 * A live subscriber that cannot keep up is disconnected, not buffered without bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import pino from 'pino';
import { createHub } from '../src/server.js';
import { loadHubConfig } from '../src/config.js';
import { LIVE_MAX_BUFFERED } from '../src/modules/metrics/live.js';

test('a slow live client is dropped once its buffer passes the bound; a fast one keeps receiving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-live-'));
  const hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir }, { TETHER_ADMIN_PASSWORD: 'pw-live-test' }), { log: pino({ level: 'silent' }) });
  try {
    const { token } = (await (await fetch(hub.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'pw-live-test' }) })).json()) as { token: string };
    const open = async () => {
      const ws = new WebSocket(hub.url.replace('http', 'ws') + '/api/v1/live', { headers: { authorization: `Bearer ${token}` } });
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ op: 'subscribe', hosts: '*' }));
      await new Promise((r) => ws.once('message', r));
      return ws;
    };
    const slow = await open();
    const fast = await open();
    let fastGot = 0;
    fast.on('message', () => fastGot++);
    let slowCode = 0;
    slow.on('close', (c) => (slowCode = c));
    // The slow client stops reading: its TCP window fills, then the hub's send buffer grows.
    (slow as unknown as { _socket: Socket })._socket.pause();
    const series: Record<string, number> = {};
    for (let i = 0; i < 500; i++) series[`cpu_core_busy_percent|${i}`] = i;
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 4000 && hub.live.stats.droppedSlow === 0; i++) {
      hub.metrics.ingest('h-flood', 'usage', Date.now(), series);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(hub.live.stats.droppedSlow, 1, 'the slow client was dropped');
    assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory stayed bounded');
    (slow as unknown as { _socket: Socket })._socket.resume();
    for (const deadline = Date.now() + 5000; slowCode === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal(slowCode, 4429);
    assert.ok(fastGot > 100, `the fast client kept receiving (${fastGot})`);
    assert.equal(hub.live.clientCount, 1);
    assert.ok(LIVE_MAX_BUFFERED <= 1024 * 1024);
    fast.close();
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
