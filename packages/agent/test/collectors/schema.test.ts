// The agent's collector output types and the wire schemas in @tether/protocol describe the same
// shapes: checked at compile time (the types are identical, key for key) and at run time (real
// output from this machine validates against the schemas, which reject unknown properties).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectOnce, createCollectors, type CollectorOutputs } from '../../src/collectors/index.js';
import * as wire from '@tether/protocol';
import type * as Wire from '@tether/protocol';

type Norm<T> = T extends readonly (infer E)[] ? Norm<E>[] : T extends object ? { [K in keyof T]: Norm<T[K]> } : T;
type Equal<A, B> = (<X>() => X extends Norm<A> ? 1 : 2) extends (<X>() => X extends Norm<B> ? 1 : 2) ? true : false;
function same<_ extends true>(): void {}

same<Equal<CollectorOutputs['static'], Wire.HostStatic>>();
same<Equal<CollectorOutputs['usage'], Wire.HostUsage>>();
same<Equal<CollectorOutputs['processes'], Wire.ProcessSummary>>();
same<Equal<CollectorOutputs['connections'], Wire.ConnectionsSummary>>();
same<Equal<CollectorOutputs['sensors'], Wire.SensorsSummary>>();
same<Equal<CollectorOutputs['gpu'], Wire.GpuSummary>>();
same<Equal<CollectorOutputs['self'], Wire.AgentSelf>>();
same<Equal<CollectorOutputs['containers'], Wire.ContainersSummary>>();
same<Equal<CollectorOutputs['units'], Wire.UnitsSummary>>();
same<Equal<Partial<CollectorOutputs>, Wire.MetricsReport>>();


test('real output of every collector on this machine conforms to the wire schemas', async () => {
  const collectors = createCollectors({ selfStats: () => ({ queueLength: 3, reconnects: 1 }) });
  const first = await collectOnce(collectors, Date.now());
  await new Promise((r) => setTimeout(r, 300));
  const second = await collectOnce(collectors, Date.now());
  assert.deepEqual(first.errors, {});
  assert.deepEqual(second.errors, {});
  // the first report has everything, without rates; the second has the rates
  assert.deepEqual(Object.keys(first.report).sort(), ['connections', 'gpu', 'processes', 'self', 'sensors', 'static', 'usage']);
  for (const report of [first.report, second.report]) {
    for (const [kind, value] of Object.entries(report)) {
      assert.deepEqual(wire.metricsErrors(kind as Wire.MetricsKind, value), [], kind);
    }
    assert.deepEqual(wire.metricsReportErrors(report), []);
  }
  assert.ok(second.report.usage?.cpu, 'second usage reading has CPU percentages');
});

test('a property the schema does not know is rejected', () => {
  assert.notDeepEqual(wire.metricsErrors('self', { ts: 1, pid: 1, uptimeSec: 1, rssBytes: 1, heapUsedBytes: 1, eventLoopLagMs: { mean: 0, p99: 0, max: 0 }, counters: {}, extra: 1 }), []);
});
