/**
 * Reconnect delay: exponential (1 s, 2 s, 4 s, … up to a cap) with full jitter — a uniformly
 * random wait between 0 and the exponential bound — so that thousands of agents returning to a
 * restarted hub spread out instead of arriving in one instant.
 */
export function backoffBoundMs(attempt: number, capMs: number, baseMs = 1000): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

export function fullJitterMs(attempt: number, capMs: number, random: () => number = Math.random, baseMs = 1000): number {
  return Math.floor(random() * backoffBoundMs(attempt, capMs, baseMs));
}
