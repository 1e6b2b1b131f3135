/**
 * SQLite WAL checkpoints off the event loop.
 *
 * With `synchronous = NORMAL` a commit in WAL mode writes to the log and does not sync; the syncs
 * come at checkpoints, when the log's pages are copied into the database file. SQLite runs those in
 * whichever connection commits past `wal_autocheckpoint` pages — on the hub that is the event loop,
 * and one checkpoint (copy, then two fsyncs) took 30–40 ms on this machine's disk, every 1.5 s under
 * 10,000 agents. The hub's own connection therefore never checkpoints (`wal_autocheckpoint = 0`) and
 * this worker thread, with a connection of its own, does:
 *
 *  - every `intervalMs` a PASSIVE checkpoint, which takes no lock a writer needs, so commits go on
 *    while it copies and syncs;
 *  - when the log has grown past `restartFrames` pages (a passive checkpoint can never catch a log
 *    that is written to while it runs, so the log is never reset by one), a RESTART checkpoint: it
 *    holds writers back only while it copies what the passive one left (a few ms), then the next
 *    commit starts the log from its beginning again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

export interface CheckpointerOptions {
  path: string;
  intervalMs: number;
  restartFrames: number;
}

/** What the worker posts after each pass. */
export interface CheckpointReport {
  /** pages in the log when the pass began, and how many of them are in the database file now */
  log: number;
  checkpointed: number;
  /** the pass ended with a RESTART checkpoint (the next commit starts a fresh log) */
  restarted: boolean;
  ms: number;
}

type Row = { busy: number; log: number; checkpointed: number };

if (parentPort && workerData && (workerData as { tetherCheckpointer?: unknown }).tetherCheckpointer) {
  const port = parentPort;
  const o = (workerData as { tetherCheckpointer: CheckpointerOptions }).tetherCheckpointer;
  const db = new SQLite(o.path, { fileMustExist: true });
  // Waits for the hub's commit in progress, which is short; the hub waits the same way for us.
  db.pragma('busy_timeout = 5000');
  const pass = (): void => {
    const t = performance.now();
    const r = (db.pragma('wal_checkpoint(PASSIVE)') as Row[])[0]!;
    let restarted = false;
    if (r.log > o.restartFrames) {
      const r2 = (db.pragma('wal_checkpoint(RESTART)') as Row[])[0]!;
      restarted = r2.busy === 0;
    }
    port.postMessage({ log: r.log, checkpointed: r.checkpointed, restarted, ms: performance.now() - t } satisfies CheckpointReport);
  };
  const timer = setInterval(() => {
    try {
      pass();
    } catch (err) {
      // Busy past the timeout or an I/O error: the next pass tries again. The hub sees the message.
      port.postMessage({ error: (err as Error).message });
    }
  }, o.intervalMs);
  port.on('message', (m) => {
    if (m !== 'stop') return;
    clearInterval(timer);
    // Closing the last connection checkpoints what is left and removes the log.
    db.close();
    port.close();
  });
}
