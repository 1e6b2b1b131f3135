/**
 * A host outside a caller's scope does not exist for that caller. Every route under
 * `/api/v1/hosts/:id` answers such a host exactly as it answers an id no host has — `404
 * {error: not_found, message: no such host}` — and says nothing of its name, labels or state.
 *
 * It is one hook rather than a check in each route so that it holds by construction for routes
 * added later, and so that it answers before the route validates its body or query: a validation
 * error for one id and a 404 for another would tell the two apart.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hostAllowed } from '../../http.js';
import type { HostStore } from './store.js';

const HOST_ROUTE = '/api/v1/hosts/:id';
export const NO_SUCH_HOST = { error: 'not_found', message: 'no such host' } as const;

/** An `onRequest` hook, added after the auth hook (which sets `req.hostScopes`). Callers without a scope pass through. */
export function hostScopeHook(hosts: HostStore) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!req.hostScopes?.length) return;
    const url = req.routeOptions.url;
    if (!url || (url !== HOST_ROUTE && !url.startsWith(HOST_ROUTE + '/'))) return;
    const id = (req.params as { id?: unknown }).id;
    const h = typeof id === 'string' && id.length <= 64 ? await hosts.get(id) : undefined;
    if (!h || !hostAllowed(req, h.labels)) await reply.code(404).send(NO_SUCH_HOST);
  };
}
