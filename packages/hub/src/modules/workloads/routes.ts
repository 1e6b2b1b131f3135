import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ContainerStatusSchema, FailedUnitSchema } from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import { access, errors, hostAllowed } from '../../http.js';
import type { WorkloadService } from './service.js';

/** Read-only summaries of what the agents last reported: containers and failed systemd units. */
export function workloadRoutes(workloads: WorkloadService, hosts: HostStore) {
  const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
  const read = access({ role: 'viewer', scope: 'read' });
  const notFound = { error: 'not_found', message: 'no such host' };
  const Ts = Type.Union([Type.Number(), Type.Null()], { description: 'when the agent took the list (ms); null: no report yet (no docker/systemd capability, no engine, or not collected yet)' });
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.get(
      '/api/v1/hosts/:id/containers',
      {
        ...read,
        schema: {
          tags: ['hosts'],
          summary: 'The host’s containers as its agent last reported them (state, health, restart count, OOM kill, exit code)',
          params: Id,
          response: { 200: Type.Object({ ts: Ts, containers: Type.Array(ContainerStatusSchema), truncated: Type.Boolean() }), ...errors(401, 403, 404) },
        },
      },
      async (req, reply) => {
        const h = await hosts.get(req.params.id);
        if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send(notFound);
        const c = workloads.latestContainers(h.id);
        return { ts: c?.ts ?? null, containers: c?.containers ?? [], truncated: c?.truncated ?? false };
      },
    );
    r.get(
      '/api/v1/hosts/:id/units',
      {
        ...read,
        schema: {
          tags: ['hosts'],
          summary: 'The host’s failed systemd units as its agent last reported them',
          params: Id,
          response: { 200: Type.Object({ ts: Ts, failed: Type.Array(FailedUnitSchema), truncated: Type.Boolean() }), ...errors(401, 403, 404) },
        },
      },
      async (req, reply) => {
        const h = await hosts.get(req.params.id);
        if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send(notFound);
        const u = workloads.latestUnits(h.id);
        return { ts: u?.ts ?? null, failed: u?.failed ?? [], truncated: u?.truncated ?? false };
      },
    );
  };
}
