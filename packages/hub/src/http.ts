import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from './modules/auth/store.js';

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
