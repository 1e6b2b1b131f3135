import { HOUR } from './codec.js';
import type { MetricStore, Point } from './store.js';
import type { RetentionConfig } from './service.js';
import { parseKey } from './series.js';

export type Tier = 'raw' | '1m' | '1h';

/**
 * The tier that answers a range: raw for up to 6 hours, 1-minute for up to 31 days, 1-hour beyond,
 * always within what each tier still holds.
 */
export function pickTier(from: number, to: number, now: number, r: RetentionConfig): Tier {
  const span = to - from;
  if (span <= 6 * HOUR && from >= now - r.rawSec * 1000) return 'raw';
  if (span <= 31 * 24 * HOUR && from >= now - r.m1Sec * 1000) return '1m';
  return '1h';
}

/** `cpu_percent` selects every dimension of a family; `cpu_percent|busy` one series. */
export function keyMatcher(wanted: string[]): (key: string) => boolean {
  const exact = new Set(wanted.filter((w) => w.includes('|')));
  const families = new Set(wanted.filter((w) => !w.includes('|')));
  return (key) => exact.has(key) || families.has(parseKey(key).family);
}

export async function querySeries(store: MetricStore, hostId: string, wanted: string[], from: number, to: number, tier: Tier): Promise<Map<string, Point[]>> {
  const match = keyMatcher(wanted);
  if (tier === 'raw') {
    const rows = await store.readRaw(hostId, from, to, match);
    const out = new Map<string, Point[]>();
    for (const r of rows) {
      for (const [k, v] of Object.entries(r.values)) {
        let a = out.get(k);
        if (!a) out.set(k, (a = []));
        a.push([r.ts, v, v, v]);
      }
    }
    return out;
  }
  if (tier === '1m') {
    // Families expand to the host's exact keys, so chunks are fetched by primary key.
    const keys = (await store.hostKeys(hostId)).filter(match);
    return store.read1m(hostId, from, to, keys);
  }
  return store.read1h(hostId, from, to, match);
}
