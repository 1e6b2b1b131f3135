/**
 * How a job walks its hosts. Every strategy reduces to three numbers per job: which batch each
 * host is in, how many tasks may run at once within a batch, and how many failures are tolerated
 * before the job stops starting new tasks.
 */
import Type, { type Static } from 'typebox';
import { ExecSpec } from '@tether/protocol';

export const STRATEGIES = ['parallel', 'sequence', 'evenodd', 'rolling'] as const;

export const StrategySchema = Type.Object(
  {
    kind: Type.Enum(STRATEGIES),
    /** parallel: tasks at once (default: all) */
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    /** rolling: hosts per batch, or a percentage of the hosts */
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    batchPercent: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
    /** stop starting tasks once failures exceed this many (rolling default 0; parallel default: never stop) */
    maxFailures: Type.Optional(Type.Integer({ minimum: 0 })),
    maxFailurePercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    /** sequence, evenodd and rolling stop at the first failure unless this is set */
    continueOnError: Type.Optional(Type.Boolean()),
    /** rolling: run on each batch's hosts after the batch; a failing check counts as a failure */
    health: Type.Optional(ExecSpec),
    /** a host that is not connected when its turn comes is waited for this long, then marked offline (default 0) */
    offlineWaitSec: Type.Optional(Type.Number({ minimum: 0, maximum: 86400 })),
  },
  { additionalProperties: false },
);
export type Strategy = Static<typeof StrategySchema>;

export interface Plan {
  /** batch of each host, by index */
  batchOf: (idx: number) => number;
  batches: number;
  /** tasks at once within a batch */
  concurrency: number;
  /** failures tolerated; more stops the job */
  maxFailures: number;
}

export class StrategyError extends Error {}

export function plan(s: Strategy, hosts: number): Plan {
  const never = Number.MAX_SAFE_INTEGER;
  const stopAtFirst = s.continueOnError ? never : 0;
  const threshold = (dflt: number) => s.maxFailures ?? (s.maxFailurePercent !== undefined ? Math.floor((hosts * s.maxFailurePercent) / 100) : dflt);
  switch (s.kind) {
    case 'parallel':
      if (s.batchSize || s.batchPercent || s.health) throw new StrategyError('batchSize, batchPercent and health belong to the rolling strategy');
      return { batchOf: () => 0, batches: 1, concurrency: s.concurrency ?? never, maxFailures: threshold(never) };
    case 'sequence':
      return { batchOf: () => 0, batches: 1, concurrency: 1, maxFailures: threshold(stopAtFirst) };
    case 'evenodd':
      // Two halves: hosts 1, 3, 5… (indexes 0, 2, 4…) first, then the others.
      return { batchOf: (i) => i % 2, batches: Math.min(2, hosts), concurrency: s.concurrency ?? never, maxFailures: threshold(stopAtFirst) };
    case 'rolling': {
      if (s.batchSize && s.batchPercent) throw new StrategyError('give batchSize or batchPercent, not both');
      const size = s.batchSize ?? (s.batchPercent ? Math.max(1, Math.ceil((hosts * s.batchPercent) / 100)) : 1);
      return { batchOf: (i) => Math.floor(i / size), batches: Math.ceil(hosts / size), concurrency: never, maxFailures: threshold(stopAtFirst) };
    }
  }
}
