/**
 * The cluster as the API shows it: which hubs are live, which singletons each runs, whether the
 * bus is up; and draining a hub before an upgrade (its agents move to the others).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { access } from '../http.js';
import type { Cluster } from './index.js';

const ErrorSchema = Type.Object({ error: Type.String(), message: Type.String() });

export function clusterRoutes(cluster: Cluster) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.get(
      '/api/v1/cluster',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['hub'],
          summary: 'This hub’s cluster: mode (single or cluster), the live hubs (this one first) with their agents and draining flag, the singletons this hub runs, the bus (NATS) state, and why the cluster is degraded',
        },
      },
      async () => cluster.status(),
    );
    r.post(
      '/api/v1/cluster/hubs/:id/drain',
      {
        ...access({ role: 'admin', scope: 'write' }),
        schema: {
          tags: ['hub'],
          summary: 'Drain a hub for an upgrade: it gives its singletons to the others, takes no new agents and moves its agents to the other hubs (409 on a hub alone). Restarting it ends the drain.',
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: Type.Object({ hub: Type.String(), moved: Type.Integer() }), 404: ErrorSchema, 409: ErrorSchema, 502: ErrorSchema },
        },
      },
      async (req, reply) => {
        try {
          return await cluster.drain(req.params.id === 'self' ? cluster.hubId : req.params.id);
        } catch (err) {
          const e = err as Error & { statusCode?: number };
          const status = e.statusCode ?? 502;
          return reply.code(status as 404).send({ error: status === 404 ? 'not_found' : status === 409 ? 'not_clustered' : 'drain_failed', message: e.message });
        }
      },
    );
  };
}
