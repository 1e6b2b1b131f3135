/**
 * The audit hook (every mutating API call, recorded before its answer leaves) and the audit routes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuditLog, AuditOutcome, AuditSubject } from './log.js';
import { requestSubjects } from './subjects.js';
import { access, errors } from '../../http.js';
import { parseTime } from '../metrics/routes.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  if (status === 401 || status === 403 || status === 423 || status === 429) return 'denied';
  if (status < 500) return 'failed';
  return 'error';
}

export function authMethodOf(req: FastifyRequest): string {
  const a = req.auth;
  if (!a) return 'none';
  return a.kind === 'token' ? 'api-token' : `session-${a.via}`;
}

/** Looks up the names the log shows beside ids (a host's hostname, a user's name). */
export interface AuditNames {
  hostname(id: string): Promise<string | undefined>;
  username(id: string): Promise<string | undefined>;
}

/** Fills in names: read before the handler runs, so a deleted host or user is still named. */
async function named(subjects: AuditSubject[], names: AuditNames): Promise<AuditSubject[]> {
  return Promise.all(
    subjects.map(async (x) => {
      if (x.name !== undefined) return x;
      const name = x.type === 'host' ? await names.hostname(x.id).catch(() => undefined) : x.type === 'user' ? await names.username(x.id).catch(() => undefined) : undefined;
      return name === undefined ? x : { ...x, name };
    }),
  );
}

const isAudited = (req: FastifyRequest) => MUTATING.has(req.method) && (req.routeOptions.url?.startsWith('/api/') ?? false);

/**
 * The audit hooks: every POST/PUT/PATCH/DELETE under /api/ with its outcome and everything it
 * touched. `preHandler` reads the subjects the request names (path ids, paths, images, the caller
 * for calls on their own account) and their names, before the handler can delete them; `onSend`
 * adds what the route noted (`noteAudit`: resolved hosts, what it created) and records the entry
 * before the answer leaves, so a client that got an answer can find it. Calls that no credential
 * backs are left out (except logging in and stepping up, which are the point), so that anyone on
 * the network cannot grow the log; the login history has every attempt.
 */
export function auditHooks(audit: AuditLog, names: AuditNames) {
  const pending = new WeakMap<FastifyRequest, Promise<AuditSubject[]>>();
  return {
    preHandler: async (req: FastifyRequest): Promise<void> => {
      if (!isAudited(req)) return;
      const p = named(requestSubjects(req), names);
      p.catch(() => {});
      pending.set(req, p);
    },
    onSend: async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
      if (!isAudited(req)) return payload;
      const url = req.routeOptions.url!;
      const publicAuth = req.routeOptions.config.public !== undefined;
      if (!req.user && !publicAuth) return payload;
      const params = (req.params ?? {}) as Record<string, string>;
      const body = req.body as Record<string, unknown> | undefined;
      try {
        // A request refused before its handler (validation, access) never ran preHandler.
        const before = (await pending.get(req)) ?? (await named(requestSubjects(req), names).catch(() => []));
        const added = await named(req.auditSubjects ?? [], names);
        await audit.record({
          actor: req.user?.username ?? (typeof body?.username === 'string' ? body.username : null),
          authMethod: authMethodOf(req),
          ip: req.ip,
          action: req.routeOptions.config.auditAction ?? `${req.method} ${url}`,
          subjects: [...before, ...added],
          params: { ...(Object.keys(params).length ? { params } : {}), ...(req.query && Object.keys(req.query).length ? { query: req.query } : {}), ...(body !== undefined ? { body } : {}) },
          outcome: outcomeOf(reply.statusCode),
          status: reply.statusCode,
        });
      } catch (err) {
        req.log.error({ err }, 'audit log write failed');
      }
      return payload;
    },
  };
}

const EntryView = Type.Object({
  seq: Type.Number(),
  ts: Type.Number(),
  actor: Type.Union([Type.String(), Type.Null()]),
  authMethod: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  targets: Type.Array(Type.String()),
  subjects: Type.Optional(Type.Array(Type.Object({ type: Type.String(), id: Type.String(), name: Type.Optional(Type.String()), host: Type.Optional(Type.String()), role: Type.Optional(Type.Literal('result')) }))),
  params: Type.Unknown(),
  outcome: Type.String(),
  status: Type.Union([Type.Number(), Type.Null()]),
  prevHash: Type.String(),
  hash: Type.String(),
});
const Filter = Type.Object({
  actor: Type.Optional(Type.String({ maxLength: 64 })),
  host: Type.Optional(Type.String({ maxLength: 64 })),
  action: Type.Optional(Type.String({ maxLength: 256, description: 'exact, or a prefix ending in *' })),
  from: Type.Optional(Type.String({ maxLength: 40, description: 'epoch ms, ISO 8601, now or -24h' })),
  to: Type.Optional(Type.String({ maxLength: 40 })),
});

export function auditRoutes(audit: AuditLog) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const range = (q: { from?: string; to?: string }) => {
      const now = app.clock.now();
      return { ...(q.from ? { from: parseTime(q.from, now, 0) } : {}), ...(q.to ? { to: parseTime(q.to, now, now) } : {}) };
    };

    r.get(
      '/api/v1/audit',
      {
        ...access({ role: 'admin', scope: 'read' }),
        schema: {
          tags: ['audit'],
          summary: 'Query the audit log by actor, host, action and time; newest first',
          querystring: Type.Object({ ...Filter.properties, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), beforeSeq: Type.Optional(Type.Integer({ minimum: 1 })) }),
          response: { 200: Type.Object({ entries: Type.Array(EntryView) }), ...errors(400) },
        },
      },
      async (req, reply) => {
        let t;
        try {
          t = range(req.query);
        } catch (err) {
          return reply.code(400).send({ error: 'bad_time', message: (err as Error).message });
        }
        const q = req.query;
        let entries = await audit.query({ ...(q.actor ? { actor: q.actor } : {}), ...(q.host ? { host: q.host } : {}), ...(q.action ? { action: q.action } : {}), ...t, limit: q.limit ?? 100 });
        if (q.beforeSeq) entries = entries.filter((e) => e.seq < q.beforeSeq!);
        return { entries };
      },
    );

    r.get(
      '/api/v1/audit/verify',
      {
        ...access({ role: 'admin', scope: 'read' }),
        schema: {
          tags: ['audit'],
          summary: 'Check the hash chain: reports every altered, deleted or out-of-place entry',
          response: { 200: Type.Object({ ok: Type.Boolean(), entries: Type.Integer(), headSeq: Type.Union([Type.Integer(), Type.Null()]), problems: Type.Array(Type.Object({ seq: Type.Number(), problem: Type.String() })) }) },
        },
      },
      async () => audit.verify(),
    );

    r.get(
      '/api/v1/audit/export',
      {
        ...access({ role: 'admin', scope: 'read' }),
        schema: { tags: ['audit'], summary: 'The audit log as JSON lines, oldest first (filters as for the query)', querystring: Filter, produces: ['application/x-ndjson'] },
      },
      async (req, reply) => {
        let t;
        try {
          t = range(req.query);
        } catch (err) {
          return reply.code(400).send({ error: 'bad_time', message: (err as Error).message });
        }
        const q = req.query;
        const filter = { ...(q.actor ? { actor: q.actor } : {}), ...(q.host ? { host: q.host } : {}), ...(q.action ? { action: q.action } : {}), ...t };
        async function* lines() {
          let after = 0;
          for (;;) {
            const page = await audit.query({ ...filter, afterSeq: after, order: 'asc', limit: 1000 });
            if (!page.length) return;
            yield page.map((e) => JSON.stringify(e) + '\n').join('');
            after = page[page.length - 1]!.seq;
            if (page.length < 1000) return;
          }
        }
        const { Readable } = await import('node:stream');
        return reply.type('application/x-ndjson; charset=utf-8').header('content-disposition', 'attachment; filename="tether-audit.jsonl"').send(Readable.from(lines()));
      },
    );
  };
}
