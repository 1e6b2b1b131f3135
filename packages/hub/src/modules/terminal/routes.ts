/**
 * Terminal routes: the WebSocket that opens a terminal on a host, and the session records and
 * their asciicast recordings (admin only: a recording holds everything typed, passwords at
 * prompts included).
 */
import { createReadStream, existsSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { WebSocket } from 'ws';
import { Account } from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import type { AgentReach } from '../agents/link.js';
import type { AuditLog } from '../audit/log.js';
import { authMethodOf } from '../audit/routes.js';
import { access, errors, hostAllowed } from '../../http.js';
import type { TerminalService, TerminalSession } from './service.js';

const SessionView = Type.Object({
  id: Type.String(),
  hostId: Type.String(),
  hostname: Type.String(),
  username: Type.String(),
  runAs: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.Number(),
  endedAt: Type.Union([Type.Number(), Type.Null()]),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  bytesOut: Type.Integer(),
  bytesIn: Type.Integer(),
  recordingBytes: Type.Integer(),
  recordingTruncated: Type.Boolean(),
  cols: Type.Integer(),
  rows: Type.Integer(),
});

export function terminalRoutes(o: {
  terminals: TerminalService;
  hosts: HostStore;
  link: AgentReach;
  audit: AuditLog;
  trackSocket?: (credHash: string, socket: WebSocket) => void;
  originAllowed?: (req: FastifyRequest) => boolean;
}) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const Query = Type.Object({
      cols: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
      rows: Type.Optional(Type.Integer({ minimum: 2, maximum: 500 })),
      user: Type.Optional(Account),
    });

    r.get(
      '/api/v1/hosts/:id/terminal',
      {
        websocket: true,
        ...access({ role: 'operator', scope: 'execute', stepUp: true }),
        schema: { hide: true, params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }), querystring: Query },
      },
      async (socket, req) => {
        const close = (code: number, why: string) => {
          if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'exit', exitCode: null, reason: why, refused: true }));
          socket.close(code, why.slice(0, 120));
        };
        // What the client sends at once (a piped `tether ssh` writes its input as soon as the socket
        // opens) is held while the host is looked up and the session is set up, not dropped.
        const early: string[] = [];
        const hold = (raw: unknown) => {
          if (early.length < 256) early.push(String(raw));
        };
        socket.on('message', hold);
        const takeEarly = () => {
          socket.off('message', hold);
          return early;
        };
        if (o.originAllowed && !o.originAllowed(req)) return close(4403, 'origin not allowed');
        const { id } = req.params as { id: string };
        const q = req.query as { cols?: number; rows?: number; user?: string };
        const host = await o.hosts.get(id);
        if (!host || !hostAllowed(req, host.labels)) return close(4404, 'no such host');
        // Wherever the agent is held: in a cluster, another hub relays the session's frames.
        const conn = o.link.port(id);
        if (!conn) return close(4409, 'the host is not connected');
        if (req.auth) o.trackSocket?.(req.auth.credHash, socket);
        const actor = req.user!.username;
        const session = await o.terminals.open({
          conn,
          hostname: host.hostname,
          username: actor,
          browser: socket,
          takeEarly,
          cols: q.cols ?? 80,
          rows: q.rows ?? 24,
          ...(q.user ? { runAs: q.user } : {}),
          onEnd: (s: TerminalSession) =>
            void o.audit
              .record({ actor, authMethod: authMethodOf(req), ip: req.ip, action: 'terminal.close', targets: [id], params: { sessionId: s.id, seconds: Math.round(((s.endedAt ?? app.clock.now()) - s.startedAt) / 1000), bytesOut: s.bytesOut, bytesIn: s.bytesIn, exitCode: s.exitCode, reason: s.reason }, outcome: 'ok' })
              .catch((err: Error) => req.log.error({ err: err.message }, 'audit write failed')),
        });
        await o.audit.record({ actor, authMethod: authMethodOf(req), ip: req.ip, action: 'terminal.open', targets: [id], params: { sessionId: session.id, user: q.user ?? null, cols: session.cols, rows: session.rows }, outcome: 'ok' });
      },
    );

    r.get(
      '/api/v1/terminal/sessions',
      {
        ...access({ role: 'admin', scope: 'read' }),
        schema: {
          tags: ['terminal'],
          summary: 'Terminal sessions, newest first',
          querystring: Type.Object({ host: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }),
          response: { 200: Type.Object({ sessions: Type.Array(SessionView) }) },
        },
      },
      async (req) => ({ sessions: await o.terminals.list(req.query.limit ?? 100, req.query.host) }),
    );
    r.get(
      '/api/v1/terminal/sessions/:id',
      { ...access({ role: 'admin', scope: 'read' }), schema: { tags: ['terminal'], summary: 'One terminal session', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: SessionView, ...errors(401, 403, 404) } } },
      async (req, reply) => {
        const s = await o.terminals.get(req.params.id);
        return s ?? reply.code(404).send({ error: 'not_found', message: 'no such session' });
      },
    );
    r.get(
      '/api/v1/terminal/sessions/:id/recording',
      {
        ...access({ role: 'admin', scope: 'read' }),
        schema: { tags: ['terminal'], summary: 'The session’s recording (asciicast v2: output and input with timings)', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: errors(401, 403, 404) },
      },
      async (req, reply) => {
        const s = await o.terminals.get(req.params.id);
        const path = s ? o.terminals.recordingPath(s.id) : '';
        if (!s || !existsSync(path)) return reply.code(404).send({ error: 'not_found', message: 'no such recording' });
        return reply.type('application/x-asciicast').header('content-disposition', `attachment; filename="${s.id}.cast"`).send(createReadStream(path) as never);
      },
    );
  };
}
