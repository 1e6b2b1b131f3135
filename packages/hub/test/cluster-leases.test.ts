/**
 * Leases on PostgreSQL, the way the hubs of a cluster use them: one holder at a time, renewal keeps
 * the epoch, a change of holder raises it (the fencing token), an expired lease is taken over, a
 * released one at once, and the fencing check refuses a holder whose epoch has passed.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ClusterStore } from '../src/cluster/store.js';
import { ClusterLeases } from '../src/cluster/leases.js';
import { testDb } from './db.js';
import type { DbHandle } from '../src/db/database.js';

const waitFor = async <T>(fn: () => T | undefined | false, what: string, ms = 5000): Promise<T> => {
  const end = performance.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('cluster leases on postgres', () => {
  let h: DbHandle;
  let cleanup: () => Promise<void>;
  let store: ClusterStore;
  before(async () => {
    ({ h, cleanup } = await testDb('postgres'));
    store = new ClusterStore(h.db);
  });
  after(async () => cleanup());

  test('one holder; renewal keeps the epoch; expiry hands over with a higher epoch; release hands over at once', async () => {
    assert.equal(await store.acquire('x', 'hub-a', 300), 1);
    assert.equal(await store.acquire('x', 'hub-b', 300), undefined, 'held by hub-a');
    assert.equal(await store.acquire('x', 'hub-a', 300), 1, 'renewal keeps the epoch');
    assert.equal(await ClusterStore.stillHolds(h.db, 'x', 'hub-a', 1), true);
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(await ClusterStore.stillHolds(h.db, 'x', 'hub-a', 1), false, 'expired');
    assert.equal(await store.acquire('x', 'hub-b', 300), 2, 'taken over after expiry, epoch raised');
    assert.equal(await ClusterStore.stillHolds(h.db, 'x', 'hub-a', 1), false, 'the old holder is fenced off');
    await store.release('x', 'hub-b');
    assert.equal(await store.acquire('x', 'hub-a', 300), 3, 'released: taken at once');
  });

  test('two keepers racing: never both holders, and the survivor takes over when the holder stops renewing', async () => {
    const log = pino({ level: 'silent' });
    const o = { ttlMs: 600, renewMs: 150, names: ['alerts' as const] };
    const k1 = new ClusterLeases(store, 'k1', log, o);
    const k2 = new ClusterLeases(store, 'k2', log, o);
    await Promise.all([k1.start(), k2.start()]);
    let both = 0;
    const sampler = setInterval(() => {
      if (k1.holds('alerts') && k2.holds('alerts')) both++;
    }, 5);
    try {
      const first = await waitFor(() => (k1.holds('alerts') ? k1 : k2.holds('alerts') ? k2 : undefined), 'a holder');
      const other = first === k1 ? k2 : k1;
      const e1 = first.epoch('alerts')!;
      // The holder dies without releasing (its timer stops): the other takes over after expiry.
      clearInterval((first as unknown as { timer: NodeJS.Timeout }).timer);
      const t0 = performance.now();
      await waitFor(() => other.holds('alerts'), 'hand-over', 3000);
      const took = performance.now() - t0;
      assert.ok(took < o.ttlMs + 2 * o.renewMs + 200, `handed over in ${Math.round(took)} ms`);
      assert.ok(other.epoch('alerts')! > e1, 'the new holder has a higher epoch');
      assert.equal(first.holds('alerts'), false, 'the silent holder stepped down on its own');
      assert.equal(both, 0, 'never two holders at once');
    } finally {
      clearInterval(sampler);
      await k1.stop();
      await k2.stop();
    }
  });
});
