import type { FastifyInstance } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseSelector, SelectorError, validateLabels, type Labels } from '@tether/protocol';
import type { Host, HostStore } from './store.js';
import type { AgentReach } from '../agents/link.js';
import { access, errors, hostAllowed } from '../../http.js';

const HostView = Type.Object({
  id: Type.String(),
  hostname: Type.String(),
  online: Type.Boolean(),
  revoked: Type.Boolean(),
  labels: Type.Record(Type.String(), Type.String()),
  capabilities: Type.Array(Type.String()),
  agentVersion: Type.String(),
  createdAt: Type.Number(),
  lastSeen: Type.Union([Type.Number(), Type.Null()]),
  lastAddr: Type.Union([Type.String(), Type.Null()]),
  facts: Type.Unknown(),
});

export function hostRoutes(hosts: HostStore, link: AgentReach, onDelete: (id: string) => Promise<void> = async () => {}) {
  const view = (h: Host, now: number) => ({
    id: h.id,
    hostname: h.hostname,
    online: link.isOnline(h.id),
    revoked: h.revokedAt !== null,
    labels: h.labels,
    capabilities: h.capabilities,
    agentVersion: h.agentVersion,
    createdAt: h.createdAt,
    lastSeen: link.isOnline(h.id) ? now : h.lastSeen,
    lastAddr: h.lastAddr,
    facts: h.facts,
  });
  const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.get(
      '/api/v1/hosts',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['hosts'],
          summary: 'List hosts; search by hostname, IP or MAC; filter by label selector and status',
          querystring: Type.Object({
            q: Type.Optional(Type.String({ maxLength: 256 })),
            selector: Type.Optional(Type.String({ maxLength: 1024 })),
            status: Type.Optional(Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('revoked'), Type.Literal('all')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
          }),
          response: { 200: Type.Object({ hosts: Type.Array(HostView), total: Type.Integer(), online: Type.Integer() }), ...errors(400, 401) },
        },
      },
      async (req, reply) => {
        let selector;
        try {
          selector = parseSelector(req.query.selector ?? '');
        } catch (err) {
          if (err instanceof SelectorError) return reply.code(400).send({ error: 'bad_selector', message: err.message });
          throw err;
        }
        const status = req.query.status ?? 'all';
        let list = (await hosts.list({ ...(req.query.q ? { q: req.query.q } : {}), selector, includeRevoked: status === 'revoked' })).filter((h) => hostAllowed(req, h.labels));
        if (status === 'online') list = list.filter((h) => link.isOnline(h.id));
        if (status === 'offline') list = list.filter((h) => !link.isOnline(h.id));
        if (status === 'revoked') list = list.filter((h) => h.revokedAt !== null);
        const online = list.filter((h) => link.isOnline(h.id)).length;
        const offset = req.query.offset ?? 0;
        const page = list.slice(offset, offset + (req.query.limit ?? 1000));
        const now = app.clock.now();
        return { hosts: page.map((h) => view(h, now)), total: list.length, online };
      },
    );
    r.get('/api/v1/hosts/:id', { ...access({ role: 'viewer', scope: 'read' }), schema: { tags: ['hosts'], summary: 'One host with its facts', params: IdParams, response: { 200: HostView, ...errors(401, 404) } } }, async (req, reply) => {
      const h = await hosts.get(req.params.id);
      if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
      return view(h, app.clock.now());
    });
    r.patch(
      '/api/v1/hosts/:id',
      {
        ...access({ role: 'operator', scope: 'write' }),
        schema: {
          tags: ['hosts'],
          summary: "Replace a host's labels (a user limited to some hosts must keep the host inside that limit)",
          params: IdParams,
          body: Type.Object({ labels: Type.Record(Type.String(), Type.String()) }, { additionalProperties: false }),
          response: { 200: HostView, ...errors(400, 401, 403, 404) },
        },
      },
      async (req, reply) => {
        const errs = validateLabels(req.body.labels);
        if (errs.length) return reply.code(400).send({ error: 'bad_labels', message: errs.join('; ') });
        const before = await hosts.get(req.params.id);
        if (!before || !hostAllowed(req, before.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
        // Relabelling a host out of one's own scope would hand it to someone else (or hide it).
        if (!hostAllowed(req, req.body.labels as Labels)) return reply.code(403).send({ error: 'forbidden', message: 'these labels would move the host outside the hosts you may manage' });
        if (!(await hosts.setLabels(req.params.id, req.body.labels as Labels))) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
        return view((await hosts.get(req.params.id))!, app.clock.now());
      },
    );
    r.post(
      '/api/v1/hosts/:id/revoke',
      { ...access({ role: 'admin', scope: 'write' }), schema: { tags: ['hosts'], summary: 'Revoke an agent: disconnect it now and refuse it from now on', params: IdParams } },
      async (req, reply) => {
        const h = await hosts.get(req.params.id);
        if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
        await hosts.revoke(h.id, app.clock.now());
        const wasOnline = link.disconnect(h.id, 'revoked', 'agent revoked');
        req.log.info({ agentId: h.id, by: req.user?.username, wasOnline }, 'agent revoked');
        return { ok: true, disconnected: wasOnline };
      },
    );
    r.delete(
      '/api/v1/hosts/:id',
      { ...access({ role: 'admin', scope: 'write' }), schema: { tags: ['hosts'], summary: 'Remove a host from the inventory (its agent is disconnected and can no longer connect)', params: IdParams } },
      async (req, reply) => {
        const h = await hosts.get(req.params.id);
        if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
        await hosts.delete(h.id);
        link.disconnect(h.id, 'unknown_agent', 'host deleted');
        await onDelete(h.id);
        req.log.info({ agentId: h.id, by: req.user?.username }, 'host deleted');
        return { ok: true };
      },
    );
  };
}
