// Last-resort teardown. Tests stop their fleets in `after` hooks; this covers a test process that
// exits early (an uncaught error, Ctrl-C, the runner's SIGTERM). What even this misses (SIGKILL)
// is removed by the next `setup.sh`, which finds resources labelled with a dead pid.
type SyncCleanup = () => void;

const pending = new Set<SyncCleanup>();
let installed = false;

function runAll(): void {
  for (const fn of [...pending]) {
    pending.delete(fn);
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

/** Registers a synchronous cleanup; returns the function that unregisters it. */
export function onExit(fn: SyncCleanup): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.kill(process.pid, sig);
      });
    }
  }
  pending.add(fn);
  return () => pending.delete(fn);
}
