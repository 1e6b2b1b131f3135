/**
 * User management (admin) and API tokens (everyone, for themselves).
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseSelector, SelectorError } from '@tether/protocol';
import type { AuthStore, Role, UserDetail } from './store.js';
import { PASSWORD } from './plugin.js';
import { access, errors } from '../../http.js';

const RoleT = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
const ScopeT = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('execute')]);
const SelectorT = Type.Union([Type.String({ maxLength: 1024, description: 'label selector, e.g. env=staging' }), Type.Null()]);
const UserView = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Type.String(),
  hostSelector: Type.Union([Type.String(), Type.Null()]),
  disabled: Type.Boolean(),
  totpEnabled: Type.Boolean(),
  locked: Type.Boolean(),
  lockedUntil: Type.Union([Type.Number(), Type.Null()]),
  failedLogins: Type.Integer(),
  createdAt: Type.Number(),
  updatedAt: Type.Number(),
  passwordChangedAt: Type.Union([Type.Number(), Type.Null()]),
});
const view = (u: UserDetail, now: number) => ({
  id: u.id,
  username: u.username,
  role: u.role,
  hostSelector: u.hostSelector,
  disabled: u.disabled,
  totpEnabled: u.totpEnabled,
  locked: u.lockedUntil !== null && u.lockedUntil > now,
  lockedUntil: u.lockedUntil,
  failedLogins: u.failedLogins,
  createdAt: u.createdAt,
  updatedAt: u.updatedAt,
  passwordChangedAt: u.passwordChangedAt,
});
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const Ok = Type.Object({ ok: Type.Boolean() });

/** A selector as stored: validated and normalised; empty means none. */
function checkSelector(s: string | null | undefined): string | null | undefined | Error {
  if (s === undefined || s === null) return s;
  if (s.trim() === '') return null;
  try {
    parseSelector(s);
    return s.trim();
  } catch (err) {
    return err instanceof SelectorError ? err : new Error(String(err));
  }
}

export function userRoutes(auth: AuthStore) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const manage = access({ role: 'admin', scope: 'write', stepUp: true });

    r.get('/api/v1/users', { ...access({ role: 'admin', scope: 'read' }), schema: { tags: ['users'], summary: 'List users', response: { 200: Type.Object({ users: Type.Array(UserView) }) } } }, async () => ({
      users: (await auth.listUsers()).map((u) => view(u, app.clock.now())),
    }));

    r.post(
      '/api/v1/users',
      {
        ...manage,
        schema: {
          tags: ['users'],
          summary: 'Create a user; operators and viewers may be limited to hosts matching a label selector',
          body: Type.Object({ username: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' }), password: PASSWORD, role: RoleT, hostSelector: Type.Optional(SelectorT) }, { additionalProperties: false }),
          response: { 200: UserView, ...errors(400, 409) },
        },
      },
      async (req, reply) => {
        const sel = checkSelector(req.body.hostSelector);
        if (sel instanceof Error) return reply.code(400).send({ error: 'bad_selector', message: sel.message });
        if (sel && req.body.role === 'admin') return reply.code(400).send({ error: 'bad_request', message: 'an admin manages users and so cannot be limited to some hosts' });
        if (await auth.findUser(req.body.username)) return reply.code(409).send({ error: 'exists', message: 'a user with that name exists' });
        const u = await auth.createUser(req.body.username, req.body.password, req.body.role as Role, app.clock.now(), sel ?? null);
        noteAudit(req, { type: 'user', id: u.id, name: req.body.username, role: 'result' });
        return view((await auth.getUser(u.id))!, app.clock.now());
      },
    );

    r.patch(
      '/api/v1/users/:id',
      {
        ...manage,
        schema: {
          tags: ['users'],
          summary: 'Change a user’s role, host selector, or disable them (their sessions and API tokens stop at once)',
          params: IdParams,
          body: Type.Object({ role: Type.Optional(RoleT), hostSelector: Type.Optional(SelectorT), disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 200: UserView, ...errors(400, 404, 409) },
        },
      },
      async (req, reply) => {
        const u = await auth.getUser(req.params.id);
        if (!u) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
        if (u.id === req.user!.id && ((req.body.role && req.body.role !== u.role) || req.body.disabled)) {
          return reply.code(409).send({ error: 'self', message: 'you cannot demote or disable yourself; another admin can' });
        }
        const sel = checkSelector(req.body.hostSelector);
        if (sel instanceof Error) return reply.code(400).send({ error: 'bad_selector', message: sel.message });
        const role = (req.body.role ?? u.role) as Role;
        if (role === 'admin' && (sel === undefined ? u.hostSelector : sel)) return reply.code(400).send({ error: 'bad_request', message: 'an admin cannot be limited to some hosts: clear hostSelector' });
        await auth.updateUser(u.id, { ...(req.body.role ? { role } : {}), ...(sel !== undefined ? { hostSelector: sel } : {}), ...(req.body.disabled !== undefined ? { disabled: req.body.disabled } : {}) }, app.clock.now());
        return view((await auth.getUser(u.id))!, app.clock.now());
      },
    );

    r.delete('/api/v1/users/:id', { ...manage, schema: { tags: ['users'], summary: 'Delete a user with their sessions and API tokens', params: IdParams, response: { 200: Ok, ...errors(404, 409) } } }, async (req, reply) => {
      if (req.params.id === req.user!.id) return reply.code(409).send({ error: 'self', message: 'you cannot delete yourself; another admin can' });
      if (!(await auth.deleteUser(req.params.id))) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
      return { ok: true };
    });

    r.post(
      '/api/v1/users/:id/password',
      {
        ...manage,
        schema: { tags: ['users'], summary: 'Reset a user’s password (ends their sessions, lifts a lockout)', params: IdParams, body: Type.Object({ password: PASSWORD }, { additionalProperties: false }), response: { 200: Ok, ...errors(400, 404) } },
      },
      async (req, reply) => {
        const u = await auth.getUser(req.params.id);
        if (!u) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
        await auth.setPassword(u.id, req.body.password, app.clock.now());
        await auth.clearFailures(u.id);
        return { ok: true };
      },
    );

    r.post('/api/v1/users/:id/unlock', { ...manage, schema: { tags: ['users'], summary: 'Lift a lockout after failed logins', params: IdParams, response: { 200: Ok, ...errors(404) } } }, async (req, reply) => {
      const u = await auth.getUser(req.params.id);
      if (!u) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
      await auth.clearFailures(u.id);
      return { ok: true };
    });

    r.delete('/api/v1/users/:id/totp', { ...manage, schema: { tags: ['users'], summary: 'Turn a user’s TOTP off (lost device); they may enrol again', params: IdParams, response: { 200: Ok, ...errors(404) } } }, async (req, reply) => {
      const u = await auth.getUser(req.params.id);
      if (!u) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
      await auth.disableTotp(u.id, app.clock.now());
      return { ok: true };
    });

    // --- API tokens ------------------------------------------------------------------------------

    const TokenView = Type.Object({
      id: Type.String(),
      userId: Type.String(),
      username: Type.String(),
      name: Type.String(),
      scope: Type.String(),
      hostSelector: Type.Union([Type.String(), Type.Null()]),
      createdAt: Type.Number(),
      expiresAt: Type.Number(),
      lastUsedAt: Type.Union([Type.Number(), Type.Null()]),
      lastUsedIp: Type.Union([Type.String(), Type.Null()]),
      revokedAt: Type.Union([Type.Number(), Type.Null()]),
    });
    r.post(
      '/api/v1/api-tokens',
      {
        ...access({ role: 'viewer', scope: 'write', stepUp: true, sessionOnly: true }),
        schema: {
          tags: ['api tokens'],
          summary: 'Create an API token for yourself (shown once): scope read < write < execute, optionally limited to hosts matching a label selector; it never has more than your role',
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 128 }), scope: ScopeT, hostSelector: Type.Optional(SelectorT), expiresInSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86400 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ token: Type.String(), tokenInfo: TokenView }), ...errors(400) },
        },
      },
      async (req, reply) => {
        const sel = checkSelector(req.body.hostSelector);
        if (sel instanceof Error) return reply.code(400).send({ error: 'bad_selector', message: sel.message });
        const now = app.clock.now();
        const { token, id } = await auth.createApiToken(req.user!.id, { name: req.body.name, scope: req.body.scope, hostSelector: sel ?? null, expiresAt: now + (req.body.expiresInSec ?? 90 * 86400) * 1000 }, now);
        const info = (await auth.listApiTokens(req.user!.id)).find((t) => t.id === id)!;
        noteAudit(req, { type: 'token', id, name: req.body.name, role: 'result' });
        return { token, tokenInfo: info };
      },
    );
    r.get(
      '/api/v1/api-tokens',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: { tags: ['api tokens'], summary: 'Your API tokens (never the secrets); an admin may ask for everyone’s (all=true)', querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }), response: { 200: Type.Object({ tokens: Type.Array(TokenView) }), ...errors(403) } },
      },
      async (req, reply) => {
        if (req.query.all && req.user!.role !== 'admin') return reply.code(403).send({ error: 'forbidden', message: 'only an admin sees other users’ tokens' });
        return { tokens: await auth.listApiTokens(req.query.all ? undefined : req.user!.id) };
      },
    );
    r.delete(
      '/api/v1/api-tokens/:id',
      { ...access({ role: 'viewer', scope: 'write' }), schema: { tags: ['api tokens'], summary: 'Revoke an API token at once (yours; an admin may revoke anyone’s)', params: IdParams, response: { 200: Ok, ...errors(404) } } },
      async (req, reply) => {
        if (!(await auth.revokeApiToken(req.params.id, app.clock.now(), req.user!.role === 'admin' ? undefined : req.user!.id))) return reply.code(404).send({ error: 'not_found', message: 'no such active token' });
        return { ok: true };
      },
    );
  };
}
