// Leftovers of earlier test runs that died without teardown (SIGKILL, a crashed runner): every
// fleet resource carries the pid of the test process that made it, and a dead pid means nobody
// will clean it up. setup.sh does the same sweep; doing it here too keeps re-runs on a developer's
// machine clean without re-running setup.
import { run } from './exec.js';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let containersSwept: Promise<void> | undefined;
let netnsSwept: Promise<void> | undefined;

/** Removes fleet containers whose test process is gone (once per process). */
export function sweepStaleContainers(): Promise<void> {
  containersSwept ??= (async () => {
    const r = await run('podman', ['ps', '-a', '--filter', 'label=tether.fleet=1', '--format', '{{.ID}} {{index .Labels "tether.fleet.pid"}}'], { allowFailure: true });
    const dead = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([id, pid]) => id && !alive(Number(pid))).map(([id]) => id!);
    if (dead.length) await run('podman', ['rm', '-f', '-t', '0', ...dead], { allowFailure: true });
  })();
  return containersSwept;
}

/** Removes namespaces (tft<pid>-…), bridges (tfbr<pid>-…) and veths (tfv<pid>-…) of dead test processes. */
export function sweepStaleNetns(): Promise<void> {
  netnsSwept ??= (async () => {
    const ns = await run('ip', ['netns', 'list'], { allowFailure: true });
    for (const line of ns.stdout.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const m = /^tft(\d+)-/.exec(name);
      if (m && !alive(Number(m[1]))) {
        const pids = await run('ip', ['netns', 'pids', name], { allowFailure: true });
        for (const p of pids.stdout.split('\n').map(Number).filter((p) => p > 0)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await run('ip', ['netns', 'delete', name], { allowFailure: true });
      }
    }
    const links = await run('ip', ['-o', 'link', 'show'], { allowFailure: true });
    for (const line of links.stdout.split('\n')) {
      const name = line.split(': ')[1]?.split('@')[0] ?? '';
      const m = /^tf(?:br|v)(\d+)-/.exec(name);
      if (m && !alive(Number(m[1]))) await run('ip', ['link', 'delete', name], { allowFailure: true });
    }
  })();
  return netnsSwept;
}
