import type { FastifyReply, FastifyRequest } from 'fastify';
import { matchesSelector, type Labels, type Selector } from '@tether/protocol';
import type { Role } from './modules/auth/store.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Label selectors limiting which hosts this request may see or touch (the user's scope and,
     * for API tokens, the token's scope). A host is allowed when it matches every one. Empty or
     * absent: all hosts.
     */
    hostScopes?: Selector[];
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** What a route needs: the least role, the API-token scope, and whether a fresh second factor is required. */
export interface RouteAccess {
  role: Role;
  /** read: GET-like; write: changes hub state; execute: acts on hosts (commands, files, power…) */
  scope: 'read' | 'write' | 'execute';
  /** dangerous: needs a recent step-up (password or TOTP) */
  stepUp?: boolean;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/**
 * Route options that declare and enforce access: `r.post(url, { ...access({ role: 'operator', scope: 'execute' }), schema }, handler)`.
 * The declaration lives in the route's config so that the route × role matrix can be read from the app.
 */
export function access(a: RouteAccess) {
  return {
    config: { access: a },
    preHandler: async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (!req.user || RANK[req.user.role] < RANK[a.role]) {
        await reply.code(403).send({ error: 'forbidden', message: `requires role ${a.role} or higher` });
      }
    },
  };
}

/** Whether the request's host scope allows a host with these labels. */
export function hostAllowed(req: FastifyRequest, labels: Labels): boolean {
  return !req.hostScopes || req.hostScopes.every((s) => matchesSelector(labels, s));
}

/** One error shape for every API failure: a machine-readable code and a sentence for people. */
export interface ApiError {
  error: string;
  message: string;
}

export function requireRole(...roles: Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!req.user || !roles.includes(req.user.role)) {
      await reply.code(403).send({ error: 'forbidden', message: `requires role ${roles.join(' or ')}` });
    }
  };
}

import { Type } from '@fastify/type-provider-typebox';
export const ErrorSchema = Type.Object({ error: Type.String(), message: Type.String() });
/** Response schemas for the error statuses a route can return (documents them in OpenAPI too). */
export const errors = (...codes: (400 | 401 | 403 | 404 | 409)[]) => Object.fromEntries(codes.map((c) => [c, ErrorSchema])) as Record<400 | 401 | 403 | 404 | 409, typeof ErrorSchema>;
