/**
 * systemd on hosts: `/api/v1/hosts/:id/systemd/…`, each call one `systemd.request` to the agent.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { JournalEntry, UNIT_NAME, UnitSummary, type SystemdRequestBody } from '@tether/protocol';
import { access } from '../../http.js';
import { COMMON, Ok, Params, errs, opt, type Managers } from './common.js';

const TAG = ['systemd'];
const UParams = Type.Object({ id: Params.properties.id, unit: Type.String({ pattern: UNIT_NAME, description: 'a unit name with its type, e.g. nginx.service' }) });
const UNIT_TYPES = ['service', 'socket', 'target', 'timer', 'mount', 'automount', 'path', 'slice', 'scope', 'swap', 'device'] as const;
type P = { id: string; unit: string };

export function systemdRoutes(m: Managers) {
  const viewer = access({ role: 'viewer', scope: 'read' });
  const read = access({ role: 'operator', scope: 'read' });
  const execute = access({ role: 'operator', scope: 'execute' });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const ask = async (req: { params: { id: string } }, body: SystemdRequestBody) => m.ask(await m.host(req as never), 'systemd.request', body, 120_000);

    r.get(
      '/api/v1/hosts/:id/systemd/units',
      {
        ...viewer,
        schema: {
          tags: TAG,
          summary: 'Units with load, active and sub state (409 unavailable when systemd is not the init system)',
          params: Params,
          querystring: Type.Object({ type: Type.Optional(Type.Enum(UNIT_TYPES)), pattern: Type.Optional(Type.String({ maxLength: 256, pattern: '^[A-Za-z0-9:_.@*?\\[\\]\\\\-]+$' })) }),
          response: { 200: Type.Object({ units: Type.Array(UnitSummary) }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; query: { type?: (typeof UNIT_TYPES)[number]; pattern?: string } }) => ({
        units: (await ask(req, { op: 'list', ...opt('type', req.query.type), ...opt('pattern', req.query.pattern) })).units,
      })),
    );

    r.get(
      '/api/v1/hosts/:id/systemd/units/:unit',
      { ...viewer, schema: { tags: TAG, summary: "One unit's properties (systemctl show)", params: UParams, response: { 200: Type.Object({ unit: Type.String(), properties: Type.Record(Type.String(), Type.String()) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: P }) => ({ unit: req.params.unit, properties: (await ask(req, { op: 'show', unit: req.params.unit })).properties })),
    );

    for (const action of ['start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask'] as const) {
      r.post(
        `/api/v1/hosts/:id/systemd/units/:unit/${action}`,
        {
          ...execute,
          schema: {
            tags: TAG,
            summary: `systemctl ${action}${['enable', 'disable', 'mask'].includes(action) ? ' (now: true also starts/stops it)' : ''}`,
            params: UParams,
            querystring: Type.Object({ now: Type.Optional(Type.Boolean()) }),
            response: { 200: Ok, ...errs(...COMMON) },
          },
        },
        m.handle(async (req: { params: P; query: { now?: boolean } }) => {
          await ask(req, { op: action, unit: req.params.unit, ...opt('now', req.query.now) });
          return { ok: true };
        }),
      );
    }

    r.post(
      '/api/v1/hosts/:id/systemd/daemon-reload',
      { ...execute, schema: { tags: TAG, summary: 'systemctl daemon-reload', params: Params, response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string } }) => {
        await ask(req, { op: 'daemon_reload' });
        return { ok: true };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/systemd/units/:unit/journal',
      {
        ...read,
        schema: {
          tags: TAG,
          summary: "A unit's journal: the last `lines` entries (since a time); with follow=true, streamed as text lines until the client disconnects",
          params: UParams,
          querystring: Type.Object({ lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })), since: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch' })), follow: Type.Optional(Type.Boolean()) }),
          response: { 200: Type.Object({ entries: Type.Array(JournalEntry), truncated: Type.Boolean() }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: P; query: { lines?: number; since?: number; follow?: boolean } }, reply: FastifyReply) => {
        const base: SystemdRequestBody = { op: 'journal', unit: req.params.unit, ...opt('lines', req.query.lines), ...opt('since', req.query.since) };
        const h = await m.host(req as never);
        if (req.query.follow) return m.follow(req as never, reply, h, 'systemd.request', (streamId) => ({ ...base, streamId }));
        const a = await m.ask(h, 'systemd.request', base, 120_000);
        return { entries: a.entries ?? [], truncated: Boolean(a.truncated) };
      }),
    );
  };
}
