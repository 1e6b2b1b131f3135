// Failed systemd units (only with the `systemd` capability, and only where systemd is the init
// system): one `systemctl list-units --failed` per collection, with an argument array. The list is
// what the hub needs for the systemd_unit_failed anomaly; a unit that leaves it has recovered.
import { existsSync } from 'node:fs';
import { run } from '../managers/common.js';
import { parseUnitList } from '../managers/systemd.js';
import type { Collector, FailedUnit, UnitsSummary } from './types.js';

export interface UnitsOptions {
  /** where systemd keeps its runtime state: absent means systemd is not running here */
  runDir?: string;
  /** failed units reported at most (default 200, at most 500) */
  maxUnits?: number;
  /** the systemctl binary (tests point it at a fake) */
  systemctl?: string;
  timeoutMs?: number;
}

export const FAILED_UNITS_ARGS = ['--no-pager', 'list-units', '--failed', '--all', '--plain', '--no-legend', '--full'] as const;

/** `systemctl list-units --failed --plain --no-legend` output → failed units, bounded. */
export function parseFailedUnits(text: string, max = 500): { failed: FailedUnit[]; truncated: boolean } {
  const all = parseUnitList(text).filter((u) => u.active === 'failed');
  return { failed: all.slice(0, max), truncated: all.length > max };
}

export function unitsCollector(opts: UnitsOptions = {}): Collector<UnitsSummary> {
  const runDir = opts.runDir ?? '/run/systemd/system';
  const max = Math.min(500, Math.max(1, opts.maxUnits ?? 200));
  return {
    name: 'units',
    defaultIntervalMs: 30_000,
    async collect(now) {
      // systemd as the init system leaves /run/systemd/system behind (what sd_booted() checks).
      if (!existsSync(runDir)) return undefined;
      const r = await run(opts.systemctl ?? 'systemctl', FAILED_UNITS_ARGS, { timeoutMs: opts.timeoutMs ?? 10_000, maxBytes: 2 * 1024 * 1024 }).catch(() => undefined);
      if (!r || r.code !== 0) return undefined;
      return { ts: now, ...parseFailedUnits(r.stdout, max) };
    },
  };
}
