/**
 * The audit log: every mutating call and every action sent to an agent, in a hash chain. Owns
 * `audit_log` and `audit_head`.
 *
 * Entry n stores sha256(canonical JSON of its fields + the hash of entry n-1). Editing an entry
 * breaks its own hash; deleting one leaves a gap in the sequence and a dangling link; deleting the
 * newest ones is caught by `audit_head`, which every append updates in the same transaction. Whoever
 * can rewrite the whole table and the head can forge a consistent history: export the log (or just
 * the head hash) elsewhere to pin it.
 *
 * Appends are serialised in-process and, on PostgreSQL, across hubs with an advisory lock held by the
 * transaction, so the chain never forks; the primary key on `seq` makes a fork impossible anyway.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { ModuleMigrations } from '../../db/migrate.js';
import { isPostgres } from '../../db/dialect.js';
import { systemClock, type Clock } from '../../clock.js';

interface AuditTable {
  seq: number;
  ts: number;
  actor: string | null;
  auth_method: string;
  ip: string | null;
  action: string;
  targets: string;
  params: string;
  outcome: string;
  status: number | null;
  prev_hash: string;
  hash: string;
  /** JSON AuditSubject[]; null on entries written before subjects existed */
  subjects: string | null;
}
interface HeadTable {
  id: number;
  seq: number;
  hash: string;
}
interface Tables {
  audit_log: AuditTable;
  audit_head: HeadTable;
}

export const auditMigrations: ModuleMigrations = {
  '0101_audit_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'varchar(64)')
        .addColumn('auth_method', 'varchar(32)', (c) => c.notNull())
        .addColumn('ip', 'varchar(64)')
        .addColumn('action', 'varchar(256)', (c) => c.notNull())
        .addColumn('targets', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
        .addColumn('status', 'integer')
        .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('hash', 'varchar(64)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_ts').on('audit_log').column('ts').execute();
      await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor', 'ts']).execute();
      await db.schema.createIndex('audit_log_action').on('audit_log').columns(['action', 'ts']).execute();
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'varchar(64)', (c) => c.notNull())
        .execute();
    },
  },
  '0102_audit_subjects': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('audit_log').addColumn('subjects', 'text').execute();
    },
  },
};

/**
 * What an action touched, in the operator's words: a host (id, and its hostname as `name`), a user,
 * a path, a unit, a container, a pid, a token… Things that live on a host carry its id in `host`.
 * `role: 'result'` marks what the action made (the job an exec started, the token a call created).
 */
export interface AuditSubject {
  type: string;
  id: string;
  name?: string;
  host?: string;
  role?: 'result';
}

/** Subjects kept per entry, and the longest id or name kept. */
const MAX_SUBJECTS = 200;
const MAX_SUBJECT_TEXT = 512;

function cleanSubjects(list: readonly AuditSubject[]): AuditSubject[] {
  const cut = (v: string) => (v.length > MAX_SUBJECT_TEXT ? v.slice(0, MAX_SUBJECT_TEXT) + '…' : v);
  const byKey = new Map<string, AuditSubject>();
  for (const x of list) {
    const e: AuditSubject = { type: String(x.type).slice(0, 32), id: cut(String(x.id)) };
    if (x.host !== undefined && x.host !== null) e.host = cut(String(x.host));
    if (x.role === 'result') e.role = 'result';
    const key = JSON.stringify([e.type, e.id, e.host ?? '', e.role ?? '']);
    const name = x.name !== undefined && x.name !== null && String(x.name) !== e.id ? cut(String(x.name)) : undefined;
    const seen = byKey.get(key);
    if (seen) {
      if (name && !seen.name) seen.name = name;
      continue;
    }
    if (name) e.name = name;
    byKey.set(key, e);
    if (byKey.size >= MAX_SUBJECTS) break;
  }
  return [...byKey.values()];
}

export type AuditOutcome = 'ok' | 'denied' | 'failed' | 'error';

export interface AuditInput {
  /** user name, or e.g. `job:<id>` for actions a job sends; null when nobody was authenticated */
  actor: string | null;
  /** session-cookie, session-bearer, api-token, none, job, system… */
  authMethod: string;
  ip?: string | null;
  /** what was done: `POST /api/v1/hosts/:id/revoke`, `agent.exec`… */
  action: string;
  /** host ids acted on (what the host filter of a query matches); hosts among `subjects` are added */
  targets?: string[];
  /** everything the action touched or made, named */
  subjects?: AuditSubject[];
  /** the request's parameters; secrets are redacted before storing */
  params?: unknown;
  outcome: AuditOutcome;
  /** HTTP status, when there is one */
  status?: number | null;
  /** defaults to now */
  ts?: number;
}

export interface AuditEntry {
  seq: number;
  ts: number;
  actor: string | null;
  authMethod: string;
  ip: string | null;
  action: string;
  targets: string[];
  /** absent on entries written before subjects were recorded */
  subjects?: AuditSubject[];
  params: unknown;
  outcome: AuditOutcome;
  status: number | null;
  prevHash: string;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  headSeq: number | null;
  problems: { seq: number; problem: string }[];
}

export const GENESIS = '0'.repeat(64);
/** Parameter names whose values never reach the log (matched case-insensitively, also as a suffix: newPassword, apiToken). */
const SECRET_KEY = /(password|passphrase|secret|token|cookie|authorization|privatekey|credential)$|^(code|totp|otp|recoverycode|key_pem)$/i;
const MAX_STRING = 1024;

/**
 * Values of a class instance other than a plain record: a stream being uploaded, a socket. Records
 * made without Object's prototype (route params and query strings are `Object.create(null)`-like
 * objects in Fastify) are data and are kept: recording them as "[object]" lost what 517 of 794
 * entries touched (issue 21).
 */
function isRecord(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === null || proto === Object.prototype) return true;
  const ctor = (v as { constructor?: unknown }).constructor;
  return ctor === undefined || ctor === Object;
}

/** A copy with secret-named values replaced and long strings cut, for storing. */
export function redact(v: unknown, depth = 0): unknown {
  if (depth > 8) return '[too deep]';
  if (typeof v === 'string') return v.length > MAX_STRING ? `${v.slice(0, 200)}…[${v.length} chars]` : v;
  if (Array.isArray(v)) return v.slice(0, 200).map((x) => redact(x, depth + 1));
  // Uploads (archives, file contents) are recorded by size only.
  if (ArrayBuffer.isView(v)) return `[binary, ${v.byteLength} bytes]`;
  if (v && typeof v === 'object' && !isRecord(v)) return `[${(v as object).constructor?.name ?? 'object'}]`;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(x, depth + 1);
    return out;
  }
  return v;
}

/** JSON with object keys sorted at every level: one byte string per value, whatever the insertion order or the database. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  // `subjects` is left out of the hashed body when absent, so entries written before it verify as they did.
  const body = canonicalJson({ seq: e.seq, ts: e.ts, actor: e.actor, authMethod: e.authMethod, ip: e.ip, action: e.action, targets: e.targets, subjects: e.subjects, params: e.params, outcome: e.outcome, status: e.status, prevHash: e.prevHash });
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

function toEntry(r: AuditTable): AuditEntry {
  return {
    seq: Number(r.seq),
    ts: Number(r.ts),
    actor: r.actor,
    authMethod: r.auth_method,
    ip: r.ip,
    action: r.action,
    targets: JSON.parse(r.targets) as string[],
    ...(r.subjects !== null && r.subjects !== undefined ? { subjects: JSON.parse(r.subjects) as AuditSubject[] } : {}),
    params: JSON.parse(r.params) as unknown,
    outcome: r.outcome as AuditOutcome,
    status: r.status,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditQuery {
  actor?: string;
  host?: string;
  /** exact, or a prefix ending in `*` */
  action?: string;
  from?: number;
  to?: number;
  /** entries after this sequence number (paging forwards) */
  afterSeq?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

const LOCK_KEY = 0x7e7e_a0d1;

export class AuditLog {
  private readonly db: Kysely<Tables>;
  private readonly pg: boolean;
  private tail: Promise<unknown> = Promise.resolve();
  constructor(
    db: Kysely<any>,
    private readonly clock: Clock = systemClock,
  ) {
    this.db = db as Kysely<Tables>;
    this.pg = isPostgres(db);
  }

  /** Appends one entry (after every append queued before it) and returns it as stored. */
  record(input: AuditInput): Promise<AuditEntry> {
    const run = this.tail.then(() => this.append(input));
    this.tail = run.catch(() => {});
    return run;
  }

  private async append(input: AuditInput): Promise<AuditEntry> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (tx) => {
          if (this.pg) await sql`select pg_advisory_xact_lock(${LOCK_KEY})`.execute(tx);
          const head = await tx.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
          const e: Omit<AuditEntry, 'hash'> = {
            seq: head ? Number(head.seq) + 1 : 1,
            ts: input.ts ?? this.clock.now(),
            actor: input.actor?.slice(0, 64) ?? null,
            authMethod: input.authMethod.slice(0, 32),
            ip: input.ip?.slice(0, 64) ?? null,
            action: input.action.slice(0, 256),
            targets: [...new Set([...(input.targets ?? []), ...(input.subjects ?? []).flatMap((x) => (x.type === 'host' ? [x.id] : x.host ? [x.host] : []))])].slice(0, 1000),
            subjects: cleanSubjects(input.subjects ?? []),
            // Stored and hashed as the JSON round trip gives it back, so verify sees the same value.
            params: JSON.parse(JSON.stringify(redact(input.params ?? {}) ?? {})) as unknown,
            outcome: input.outcome,
            status: input.status ?? null,
            prevHash: head?.hash ?? GENESIS,
          };
          const entry: AuditEntry = { ...e, hash: entryHash(e) };
          await tx
            .insertInto('audit_log')
            .values({
              seq: entry.seq,
              ts: entry.ts,
              actor: entry.actor,
              auth_method: entry.authMethod,
              ip: entry.ip,
              action: entry.action,
              targets: JSON.stringify(entry.targets),
              subjects: JSON.stringify(entry.subjects),
              params: JSON.stringify(entry.params),
              outcome: entry.outcome,
              status: entry.status,
              prev_hash: entry.prevHash,
              hash: entry.hash,
            })
            .execute();
          if (head) await tx.updateTable('audit_head').set({ seq: entry.seq, hash: entry.hash }).where('id', '=', 1).execute();
          else await tx.insertInto('audit_head').values({ id: 1, seq: entry.seq, hash: entry.hash }).execute();
          return entry;
        });
      } catch (err) {
        // Another writer on the same SQLite file took the sequence number first: read the head again.
        if (attempt < 5 && /unique|constraint|busy|locked/i.test((err as Error).message)) continue;
        throw err;
      }
    }
  }

  async query(q: AuditQuery = {}): Promise<AuditEntry[]> {
    let s = this.db.selectFrom('audit_log').selectAll();
    if (q.actor) s = s.where('actor', '=', q.actor);
    if (q.action) s = q.action.endsWith('*') ? s.where(sql<boolean>`action like ${likeEscape(q.action.slice(0, -1)) + '%'} escape '\\'`) : s.where('action', '=', q.action);
    // targets is a JSON array of strings: a quoted id matches exactly one element.
    if (q.host) s = s.where(sql<boolean>`targets like ${'%' + likeEscape(JSON.stringify(q.host)) + '%'} escape '\\'`);
    if (q.from !== undefined) s = s.where('ts', '>=', q.from);
    if (q.to !== undefined) s = s.where('ts', '<', q.to);
    if (q.afterSeq !== undefined) s = s.where('seq', '>', q.afterSeq);
    const rows = await s
      .orderBy('seq', q.order ?? 'desc')
      .limit(q.limit ?? 100)
      .execute();
    return rows.map(toEntry);
  }

  /** Walks the whole chain: every hash recomputed, every link and sequence number checked, the head compared. */
  async verify(): Promise<VerifyResult> {
    const problems: VerifyResult['problems'] = [];
    let prev = GENESIS;
    let expect = 1;
    let entries = 0;
    let last = 0;
    for (;;) {
      const rows = await this.db.selectFrom('audit_log').selectAll().where('seq', '>', last).orderBy('seq', 'asc').limit(2000).execute();
      if (!rows.length) break;
      for (const r of rows) {
        const e = toEntry(r);
        entries++;
        if (e.seq !== expect) problems.push({ seq: e.seq, problem: e.seq > expect ? `entries ${expect}–${e.seq - 1} are missing (deleted)` : `sequence number out of order (expected ${expect})` });
        if (e.prevHash !== prev) problems.push({ seq: e.seq, problem: 'link to the previous entry does not match (an entry before it was deleted or altered)' });
        const { hash: _h, ...rest } = e;
        if (entryHash(rest) !== e.hash) problems.push({ seq: e.seq, problem: 'entry was altered after it was written (hash does not match its content)' });
        prev = e.hash;
        expect = e.seq + 1;
        last = e.seq;
      }
    }
    const head = await this.db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
    const headSeq = head ? Number(head.seq) : null;
    if (headSeq !== null && headSeq > last) problems.push({ seq: headSeq, problem: `entries ${last + 1}–${headSeq} are missing at the end (deleted)` });
    else if (headSeq !== null && headSeq === last && head!.hash !== prev) problems.push({ seq: headSeq, problem: 'the newest entry does not match the recorded head (altered or replaced)' });
    else if (headSeq === null && entries > 0) problems.push({ seq: last, problem: 'the chain head record is missing' });
    else if (headSeq !== null && headSeq < last) problems.push({ seq: last, problem: `entries after ${headSeq} were added outside the audit log` });
    return { ok: problems.length === 0, entries, headSeq, problems };
  }

  /** Waits for every append queued so far. */
  async flush(): Promise<void> {
    await this.tail;
  }
}
