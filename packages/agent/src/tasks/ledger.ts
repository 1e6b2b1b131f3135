/**
 * What this agent knows about tasks, on disk so that it survives restarts:
 *
 * - `tasks.journal`: one JSON line per event (`start`, `done`, `acked`) per task id, fsync'd before
 *   a command starts, so that an id is never run twice even if the agent dies a moment later;
 * - `outbox/<id>.json`: a result not yet acknowledged by the hub, written before it is sent.
 *
 * Bounded: the journal is rewritten when it grows (acknowledged ids older than the dedupe window
 * are forgotten), and the outbox has a byte budget: past it, the oldest results lose their output
 * (marked) before any result would be lost.
 */
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskResultBody } from '@tether/protocol';

export type TaskState = 'running' | 'done' | 'acked';
interface Entry {
  state: TaskState;
  t: number;
}

const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

export interface LedgerOptions {
  /** bytes of results the outbox may hold (default 64 MiB) */
  outboxMaxBytes?: number;
  /** how long acknowledged ids are remembered, so that a re-sent task is recognised (default 7 days) */
  dedupeWindowMs?: number;
  now?: () => number;
}

export class TaskLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly journalFile: string;
  private readonly outboxDir: string;
  private fd: number;
  private lines = 0;
  private readonly outboxSizes = new Map<string, number>();
  private outboxBytes = 0;
  readonly stats = { outputDropped: 0, resultsDropped: 0 };

  constructor(
    stateDir: string,
    private readonly o: LedgerOptions = {},
  ) {
    this.journalFile = join(stateDir, 'tasks.journal');
    this.outboxDir = join(stateDir, 'outbox');
    mkdirSync(this.outboxDir, { recursive: true, mode: 0o700 });
    if (existsSync(this.journalFile)) {
      for (const line of readFileSync(this.journalFile, 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const e = JSON.parse(line) as { id: string; s: TaskState; t: number };
          if (typeof e.id === 'string' && ID_RE.test(e.id) && (e.s === 'running' || e.s === 'done' || e.s === 'acked')) this.entries.set(e.id, { state: e.s, t: e.t });
        } catch {
          /* a torn last line after a crash: ignore it */
        }
        this.lines++;
      }
    }
    for (const f of readdirSync(this.outboxDir)) {
      if (!f.endsWith('.json')) {
        rmSync(join(this.outboxDir, f), { force: true }); // a write torn by a crash
        continue;
      }
      const id = f.slice(0, -5);
      const size = statSync(join(this.outboxDir, f)).size;
      this.outboxSizes.set(id, size);
      this.outboxBytes += size;
      if (this.entries.get(id)?.state !== 'done') this.entries.set(id, { state: 'done', t: this.now() });
    }
    this.fd = openSync(this.journalFile, 'a', 0o600);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  state(id: string): TaskState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Ids recorded as started whose end this agent never saw (it stopped while they ran). */
  interrupted(): string[] {
    return [...this.entries].filter(([, e]) => e.state === 'running').map(([id]) => id);
  }

  private closed = false;

  private append(id: string, s: TaskState, sync: boolean): void {
    if (this.closed) return;
    const t = this.now();
    this.entries.set(id, { state: s, t });
    writeSync(this.fd, JSON.stringify({ id, s, t }) + '\n');
    if (sync) fdatasyncSync(this.fd);
    if (++this.lines > 20_000 && this.lines > 4 * this.entries.size) this.compact();
  }

  /** Records that a task starts now; durable before the command runs. */
  markStarted(id: string): void {
    this.append(id, 'running', true);
  }

  /** Puts the result in the outbox (durably), then records the task as done. */
  putResult(result: TaskResultBody): void {
    const id = result.taskId;
    const body = JSON.stringify(result);
    this.makeRoom(Buffer.byteLength(body));
    const file = join(this.outboxDir, `${id}.json`);
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, body);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const prev = this.outboxSizes.get(id) ?? 0;
    this.outboxSizes.set(id, Buffer.byteLength(body));
    this.outboxBytes += Buffer.byteLength(body) - prev;
    this.append(id, 'done', false);
  }

  /** Results waiting for the hub's ack, oldest first. */
  pending(): string[] {
    return [...this.outboxSizes.keys()].sort((a, b) => (this.entries.get(a)?.t ?? 0) - (this.entries.get(b)?.t ?? 0));
  }

  readResult(id: string): TaskResultBody | undefined {
    try {
      return JSON.parse(readFileSync(join(this.outboxDir, `${id}.json`), 'utf8')) as TaskResultBody;
    } catch {
      return undefined;
    }
  }

  /** The hub committed the result: forget it (the id stays known for the dedupe window). */
  acked(id: string): void {
    if (!this.outboxSizes.has(id)) return;
    rmSync(join(this.outboxDir, `${id}.json`), { force: true });
    this.outboxBytes -= this.outboxSizes.get(id)!;
    this.outboxSizes.delete(id);
    this.append(id, 'acked', false);
  }

  get outboxCount(): number {
    return this.outboxSizes.size;
  }

  /** Over budget: strip the output of the oldest results first; drop whole results only as a last resort. */
  private makeRoom(incoming: number): void {
    const max = this.o.outboxMaxBytes ?? 64 * 1024 * 1024;
    if (this.outboxBytes + incoming <= max) return;
    for (const id of this.pending()) {
      const r = this.readResult(id);
      if (!r || (r.stdout === '' && r.stderr === '')) continue;
      const slim: TaskResultBody = { ...r, stdout: '', stderr: '', truncated: true, error: `${r.error ? r.error + '; ' : ''}output dropped: the agent's outbox was full while the hub was unreachable` };
      const body = JSON.stringify(slim);
      writeFileSync(join(this.outboxDir, `${id}.json`), body, { mode: 0o600 });
      this.outboxBytes += Buffer.byteLength(body) - this.outboxSizes.get(id)!;
      this.outboxSizes.set(id, Buffer.byteLength(body));
      this.stats.outputDropped++;
      if (this.outboxBytes + incoming <= max) return;
    }
    for (const id of this.pending()) {
      if (this.outboxBytes + incoming <= max) return;
      rmSync(join(this.outboxDir, `${id}.json`), { force: true });
      this.outboxBytes -= this.outboxSizes.get(id)!;
      this.outboxSizes.delete(id);
      this.stats.resultsDropped++;
    }
  }

  /** Rewrites the journal with one line per id still worth knowing. */
  compact(): void {
    const cutoff = this.now() - (this.o.dedupeWindowMs ?? 7 * 86400_000);
    for (const [id, e] of this.entries) if (e.state === 'acked' && e.t < cutoff) this.entries.delete(id);
    const tmp = `${this.journalFile}.tmp`;
    writeFileSync(tmp, [...this.entries].map(([id, e]) => JSON.stringify({ id, s: e.state, t: e.t }) + '\n').join(''), { mode: 0o600 });
    closeSync(this.fd);
    renameSync(tmp, this.journalFile);
    this.fd = openSync(this.journalFile, 'a', 0o600);
    this.lines = this.entries.size;
  }

  close(): void {
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
