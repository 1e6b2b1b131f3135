import type { FastifyContextConfig, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from './clock.js';
import type { AuditSubject } from './modules/audit/log.js';
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
    /** What this call touched or made, beyond what its path and fields name (see audit/subjects.ts) */
    auditSubjects?: AuditSubject[];
  }
  interface FastifyInstance {
    /** The hub's clock (see clock.ts): routes take the time from it, never from Date.now(). */
    clock: Clock;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
    /** Why a route needs no login (health, login itself, the agent socket which authenticates agents its own way). */
    public?: string;
    /** Name recorded in the audit log instead of `METHOD /url`. */
    auditAction?: string;
  }
}

export type Scope = 'read' | 'write' | 'execute';
export const SCOPES: readonly Scope[] = ['read', 'write', 'execute'];
/** An API token's scope includes every scope ranked below it. */
export const SCOPE_RANK: Record<Scope, number> = { read: 0, write: 1, execute: 2 };
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
/** A role includes every role ranked below it. */
export const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** What a route needs: the least role, the API-token scope, and whether a fresh second factor is required. */
export interface RouteAccess {
  role: Role;
  /** read: GET-like; write: changes hub state; execute: acts on hosts (commands, files, power…) */
  scope: Scope;
  /**
   * dangerous: a session needs a step-up (password, or TOTP when enrolled) within the step-up
   * window; an API token needs scope `execute` (creating one such token itself needs a step-up).
   */
  stepUp?: boolean;
  /** credential and account management: API tokens are refused whatever their scope */
  sessionOnly?: boolean;
}

/**
 * Route options that declare access: `r.post(url, { ...access({ role: 'operator', scope: 'execute' }), schema }, handler)`.
 * The declaration lives in the route's config, where the auth hook enforces it before the body is
 * validated (so a caller without the right learns nothing from validation errors) and where the
 * route × role matrix test and docs/access.md read it. A route that declares neither `access` nor
 * `publicRoute` stops the hub at start.
 */
export function access(a: RouteAccess): { config: FastifyContextConfig } {
  return { config: { access: a } };
}

/** Route options for a route that needs no login; `why` goes into docs/access.md. */
export function publicRoute(why: string): { config: FastifyContextConfig } {
  return { config: { public: why } };
}

/** Who is calling, as the auth hook found it. */
export interface Principal {
  kind: 'session' | 'token';
  /** how the credential came: the console's cookie or an Authorization header */
  via: 'cookie' | 'bearer';
  /** public id of the session or API token */
  id: string;
  /** sha256 of the credential: the key for ending open WebSockets when it is revoked */
  credHash: string;
  /** sessions have every scope; API tokens the one they were created with */
  scope: Scope;
  /** sessions: when the last password/TOTP confirmation happened */
  stepUpAt: number | null;
}

export type Denial = { status: 401 | 403; error: 'unauthorized' | 'forbidden' | 'insufficient_scope' | 'session_required' | 'step_up_required'; message: string };

/**
 * The whole access rule, as one pure function (the hook applies it; the matrix test checks it):
 * no principal → 401; role below the route's → forbidden; an API token on a session-only route →
 * session_required; a token scope below the route's → insufficient_scope; a step-up route with a
 * session whose last step-up is older than the window, or with a token below `execute` → step_up_required.
 */
export function denial(a: RouteAccess, p: { role: Role; principal: Principal } | undefined, now: number, stepUpWindowMs: number): Denial | undefined {
  if (!p) return { status: 401, error: 'unauthorized', message: 'login required' };
  if (ROLE_RANK[p.role] < ROLE_RANK[a.role]) return { status: 403, error: 'forbidden', message: `requires role ${a.role} or higher` };
  const pr = p.principal;
  if (pr.kind === 'token') {
    if (a.sessionOnly) return { status: 403, error: 'session_required', message: 'API tokens cannot do this: log in with a password' };
    if (SCOPE_RANK[pr.scope] < SCOPE_RANK[a.scope]) return { status: 403, error: 'insufficient_scope', message: `requires an API token with scope ${a.scope} (this one has ${pr.scope})` };
    if (a.stepUp && pr.scope !== 'execute') return { status: 403, error: 'step_up_required', message: 'requires an API token with scope execute' };
  } else if (a.stepUp && (pr.stepUpAt === null || now - pr.stepUpAt > stepUpWindowMs)) {
    return { status: 403, error: 'step_up_required', message: 'confirm it is you: POST /api/v1/auth/step-up with your password (or one-time code when 2FA is on), e.g. `tether stepup`' };
  }
  return undefined;
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

/** @deprecated declare access with `access(...)`: routes without a declaration do not start. */
export function requireRole(...roles: Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!req.user || !roles.includes(req.user.role)) {
      await reply.code(403).send({ error: 'forbidden', message: `requires role ${roles.join(' or ')}` });
    }
  };
}

import { Type } from '@fastify/type-provider-typebox';
export const ErrorSchema = Type.Object({ error: Type.String(), message: Type.String() });
type ErrStatus = 400 | 401 | 403 | 404 | 409 | 413 | 423 | 429;
/** Response schemas for the error statuses a route can return (documents them in OpenAPI too). */
export const errors = <C extends ErrStatus>(...codes: C[]) => Object.fromEntries(codes.map((c) => [c, ErrorSchema])) as Record<C, typeof ErrorSchema>;
