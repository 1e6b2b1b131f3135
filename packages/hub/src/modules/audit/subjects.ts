/**
 * What a mutating API call touches, read off its route: the ids in its path (`/hosts/:id`,
 * `/containers/:cid`, `/units/:unit`…), the paths, images and names in its query or body, and, for
 * calls on one's own account, the caller. Routes add what only they know (the hosts a selector
 * resolved to, the job or token they created) with `noteAudit`. Every route's entry names its
 * targets this way without each route having to remember to; the route-table test checks it.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditSubject } from './log.js';

/** `:param` of a route pattern → the kind of thing it names. First match wins; host-scoped kinds carry the host. */
const PATH_PARAMS: { pattern: RegExp; param: string; type: string; onHost?: boolean }[] = [
  { pattern: /^\/api\/v1\/hosts\/:id(\/|$)/, param: 'id', type: 'host' },
  { pattern: /\/docker\/containers\/:cid(\/|$)/, param: 'cid', type: 'container', onHost: true },
  { pattern: /\/systemd\/units\/:unit(\/|$)/, param: 'unit', type: 'unit', onHost: true },
  { pattern: /\/ps\/:pid(\/|$)/, param: 'pid', type: 'pid', onHost: true },
  { pattern: /\/cron\/:entry(\/|$)/, param: 'entry', type: 'cron', onHost: true },
  { pattern: /^\/api\/v1\/users\/:id(\/|$)/, param: 'id', type: 'user' },
  { pattern: /^\/api\/v1\/api-tokens\/:id$/, param: 'id', type: 'token' },
  { pattern: /^\/api\/v1\/enrollment-tokens\/:id$/, param: 'id', type: 'enroll-token' },
  { pattern: /^\/api\/v1\/auth\/sessions\/:id$/, param: 'id', type: 'session' },
  { pattern: /^\/api\/v1\/alerts\/rules\/:id(\/|$)/, param: 'id', type: 'rule' },
  { pattern: /^\/api\/v1\/alerts\/channels\/:id(\/|$)/, param: 'id', type: 'channel' },
  { pattern: /^\/api\/v1\/alerts\/silences\/:id$/, param: 'id', type: 'silence' },
  { pattern: /^\/api\/v1\/bundles\/:id(\/|$)/, param: 'id', type: 'bundle' },
  { pattern: /^\/api\/v1\/jobs\/:id(\/|$)/, param: 'id', type: 'job' },
  { pattern: /^\/api\/v1\/tasks\/:id(\/|$)/, param: 'id', type: 'task' },
  { pattern: /^\/api\/v1\/cluster\/hubs\/:id(\/|$)/, param: 'id', type: 'hub' },
];

/** Calls on the caller's own account or session. */
const SELF: { pattern: RegExp; type: 'user' | 'session' }[] = [
  { pattern: /^\/api\/v1\/auth\/(password|totp|totp\/confirm|step-up)$/, type: 'user' },
  { pattern: /^\/api\/v1\/auth\/logout$/, type: 'session' },
];

/** Fields of a host-scoped call's query or body that name what it touches. */
const HOST_FIELDS: { field: string; type: string }[] = [
  { field: 'path', type: 'path' },
  { field: 'paths', type: 'path' },
  { field: 'dest', type: 'path' },
  { field: 'ref', type: 'image' },
  { field: 'image', type: 'image' },
  { field: 'images', type: 'image' },
];

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined);

/** The subjects a request names by itself (before the handler runs). */
export function requestSubjects(req: FastifyRequest): AuditSubject[] {
  const url = req.routeOptions.url ?? '';
  const params = (req.params ?? {}) as Record<string, unknown>;
  const out: AuditSubject[] = [];
  const hostId = /^\/api\/v1\/hosts\/:id(\/|$)/.test(url) ? text(params.id) : undefined;
  for (const p of PATH_PARAMS) {
    if (!p.pattern.test(url)) continue;
    const id = text(params[p.param]);
    if (id === undefined) continue;
    out.push({ type: p.type, id, ...(p.onHost && hostId ? { host: hostId } : {}) });
  }
  if (hostId) {
    for (const src of [req.query, req.body] as unknown[]) {
      if (!src || typeof src !== 'object' || Array.isArray(src)) continue;
      const o = src as Record<string, unknown>;
      for (const f of HOST_FIELDS) {
        const v = o[f.field];
        for (const x of Array.isArray(v) ? v.slice(0, 100) : [v]) {
          const id = text(x);
          if (id !== undefined) out.push({ type: f.type, id, host: hostId });
        }
      }
    }
  }
  for (const s of SELF) {
    if (!s.pattern.test(url)) continue;
    if (s.type === 'user' && req.user) out.push({ type: 'user', id: req.user.id, name: req.user.username });
    if (s.type === 'session' && req.auth?.kind === 'session') out.push({ type: 'session', id: req.auth.id });
  }
  if (url === '/api/v1/auth/login') {
    const name = text((req.body as Record<string, unknown> | undefined)?.username);
    if (name) out.push({ type: 'user', id: name, name });
  }
  return out;
}

/** Adds what a route alone knows (the hosts a target resolved to, what it created) to its audit entry. */
export function noteAudit(req: FastifyRequest, ...subjects: AuditSubject[]): void {
  (req.auditSubjects ??= []).push(...subjects);
}
