/**
 * SQLite checkpoints run in a worker thread: the hub's own connection never copies the log into the
 * database file, the worker does, resets the log once it is long, and the last close leaves no log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { waitFor } from '@tether/testkit';
import { openDatabase } from '../src/db/database.js';

test('WAL checkpoints happen in the background worker, the log is reset, and close leaves a complete database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-ckpt-'));
  const file = join(dir, 'c.db');
  const h = await openDatabase(`sqlite:${file}`, dir, { checkpointIntervalMs: 50, checkpointRestartFrames: 64 });
  let closed = false;
  try {
    const db = h.sqlite!;
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, "the hub's connection does not checkpoint itself");
    assert.ok(h.wal?.background);
    db.exec('create table t (id integer primary key, data blob not null)');
    const ins = db.prepare('insert into t (data) values (?)');
    const blob = Buffer.alloc(3000, 1);
    const tx = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) ins.run(blob);
    });
    const before = statSync(file).size;
    // ~1,000 pages in the log: far past the autocheckpoint default, which is off.
    for (let i = 0; i < 20; i++) tx(50);
    await waitFor(() => statSync(file).size > before + 2_000_000, 'a checkpoint that copied pages into the database file', 10_000, 20);
    await waitFor(() => h.wal!.restarts > 0, 'a log reset', 10_000, 20);
    assert.ok(h.wal!.passes > 0);
    assert.equal(h.wal!.errors, 0, h.wal!.lastError);
    // Commits go on after a reset and the log starts from its beginning again: 1,200 more pages
    // leave the file at the size it had (about 1,000 pages), where without resets it would grow to
    // 2,200 pages, about 9 MB.
    for (let i = 0; i < 8; i++) {
      tx(150);
      const passes = h.wal!.passes;
      await waitFor(() => h.wal!.passes > passes, 'the next checkpoint pass', 10_000, 20);
    }
    assert.ok(statSync(`${file}-wal`).size < 6_000_000, `log of ${statSync(`${file}-wal`).size} bytes`);
    await h.close();
    closed = true;
    assert.ok(!existsSync(`${file}-wal`), 'the last connection to close checkpoints and removes the log');
    const check = new SQLite(file, { readonly: true });
    assert.equal((check.prepare('select count(*) n from t').get() as { n: number }).n, 2200);
    assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
    check.close();
  } finally {
    if (!closed) await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an in-memory database has no checkpointer', async () => {
  const h = await openDatabase('sqlite::memory:', tmpdir());
  assert.equal(h.wal, undefined);
  await h.close();
});
