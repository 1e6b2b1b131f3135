// Hand-made samples against the metrics wire schemas: what a conforming agent sends passes, and
// what a faulty or hostile one could send (unknown fields, unbounded strings and lists, negative
// rates) is rejected. Real agent output is validated in packages/agent/test/collectors/schema.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  metricsErrors, metricsReportErrors, type AgentSelf, type GpuSummary, type HostUsage, type ProcessSummary,
} from '../src/metrics.js';

const cpu = { user: 10, nice: 0, system: 5, idle: 84, iowait: 1, irq: 0, softirq: 0, steal: 0, busy: 15 };

const usage: HostUsage = {
  ts: 1_795_000_000_000,
  intervalMs: 5000,
  cpu: { total: cpu, perCore: [cpu, cpu] },
  load: { one: 0.5, five: 0.4, fifteen: 0.3 },
  memory: { totalBytes: 8e9, usedBytes: 2e9, freeBytes: 5e9, availableBytes: 6e9, buffersBytes: 1e8, cachedBytes: 9e8, slabBytes: 2e8, usedPercent: 25 },
  swap: { totalBytes: 0, usedBytes: 0, freeBytes: 0 },
  filesystems: [{
    mount: '/', device: '/dev/vda1', fsType: 'ext4', sizeBytes: 1e11, usedBytes: 4e10, availableBytes: 5.5e10, usedPercent: 42.11,
    inodesTotal: 6_553_600, inodesUsed: 400_000, inodesFree: 6_153_600,
    io: { device: 'vda1', readBytesTotal: 1e9, writeBytesTotal: 2e9, readsTotal: 1000, writesTotal: 2000, inProgress: 0, readBytesPerSec: 4096, writeBytesPerSec: 0, readIops: 1, writeIops: 0, busyPercent: 0.2 },
  }],
  interfaces: [{ name: 'eth0', rxBytesTotal: 1e6, txBytesTotal: 2e6, rxPacketsTotal: 100, txPacketsTotal: 200, rxErrorsTotal: 0, txErrorsTotal: 0, rxDropsTotal: 0, txDropsTotal: 0, rxBytesPerSec: 120.5 }],
};

const processes: ProcessSummary = {
  ts: 1_795_000_000_000,
  totals: { processes: 2, threads: 3, running: 1, sleeping: 1, blocked: 0, zombie: 0, stopped: 0, other: 0, cpuPercent: 150, rssBytes: 1e8 },
  processes: [{
    pid: 42, ppid: 1, uid: 0, user: 'root', state: 'R', name: 'node', command: 'node busy.js', startTime: 1_794_999_000_000,
    cpuPercent: 150, rssBytes: 5e7, vmsBytes: 1e9, swapBytes: 0, memPercent: 0.6, threads: 2, listenPorts: [8080], connections: 3,
  }],
  truncated: true,
};

const self: AgentSelf = {
  ts: 1, pid: 7, uptimeSec: 60, rssBytes: 3e7, heapUsedBytes: 1e7, cpuPercent: 0.1,
  eventLoopLagMs: { mean: 0.1, p99: 1.2, max: 3 }, counters: { queueLength: 0, reconnects: 2 },
};

const gpu: GpuSummary = {
  ts: 1, source: 'nvidia-smi',
  gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', vendor: 'nvidia', uuid: 'GPU-1', driver: 'nvidia', utilizationPercent: 97, memoryTotalBytes: 85e9, memoryUsedBytes: 1e9, temperatureCelsius: 41, powerWatts: 310.5 }],
};

test('conforming samples of usage, processes, self and gpu pass, alone and as one report', () => {
  assert.deepEqual(metricsErrors('usage', usage), []);
  assert.deepEqual(metricsErrors('processes', processes), []);
  assert.deepEqual(metricsErrors('self', self), []);
  assert.deepEqual(metricsErrors('gpu', gpu), []);
  assert.deepEqual(metricsReportErrors({ usage, processes, self, gpu }), []);
  assert.deepEqual(metricsReportErrors({}), [], 'a report may be empty');
});

test('the first usage reading, without CPU percentages or rates, passes', () => {
  const { cpu: _cpu, intervalMs: _i, ...first } = usage;
  const fs = usage.filesystems[0]!;
  const { readBytesPerSec: _r, writeBytesPerSec: _w, readIops: _ri, writeIops: _wi, busyPercent: _b, ...io } = fs.io!;
  const { rxBytesPerSec: _rx, ...iface } = usage.interfaces[0]!;
  assert.deepEqual(metricsErrors('usage', { ...first, filesystems: [{ ...fs, io }], interfaces: [iface] }), []);
});

test('an unknown property is rejected, at the top and nested', () => {
  assert.notDeepEqual(metricsErrors('self', { ...self, extra: 1 }), []);
  assert.notDeepEqual(metricsErrors('usage', { ...usage, load: { ...usage.load, ten: 1 } }), []);
  assert.notDeepEqual(metricsReportErrors({ usage, disks: {} }), []);
});

test('strings and lists beyond their bounds are rejected', () => {
  const p = processes.processes[0]!;
  assert.notDeepEqual(metricsErrors('processes', { ...processes, processes: [{ ...p, command: 'x'.repeat(5000) }] }), []);
  assert.notDeepEqual(metricsErrors('processes', { ...processes, processes: Array.from({ length: 1001 }, () => p) }), []);
  assert.notDeepEqual(metricsErrors('self', { ...self, counters: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, i])) }), []);
});

test('a negative rate or an out-of-range percentage is rejected', () => {
  assert.notDeepEqual(metricsErrors('usage', { ...usage, interfaces: [{ ...usage.interfaces[0], rxBytesPerSec: -5 }] }), []);
  assert.notDeepEqual(metricsErrors('usage', { ...usage, memory: { ...usage.memory, usedPercent: 140 } }), []);
  assert.notDeepEqual(metricsErrors('processes', { ...processes, processes: [{ ...processes.processes[0]!, listenPorts: [70000] }] }), []);
});

test('a gpu source other than nvidia-smi, drm or none is rejected', () => {
  assert.notDeepEqual(metricsErrors('gpu', { ...gpu, source: 'rocm-smi' }), []);
});
