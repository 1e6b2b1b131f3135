// Shared by the collector tests: independent readings from the usual command-line tools, and a
// fake /proc tree for the parser tests that need successive synthetic readings.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** A temporary directory tree; write(relPath, text) creates parents. */
export function fakeTree(prefix = 'tether-collectors-'): { root: string; write: (rel: string, text: string | Buffer) => void; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return {
    root,
    write(rel, text) {
      const p = join(root, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Is `value` within [min(a, b) − slack, max(a, b) + slack]: a reading taken between two of ours. */
export function between(value: number, a: number, b: number, slack = 0): boolean {
  return value >= Math.min(a, b) - slack && value <= Math.max(a, b) + slack;
}
