/**
 * Login, logout and the request authentication hook. A session token is accepted from the
 * `tether_session` cookie (console) or an `Authorization: Bearer` header (CLI, automation).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuthStore, User } from './store.js';
import { errors } from '../../http.js';

export const SESSION_COOKIE = 'tether_session';

declare module 'fastify' {
  interface FastifyRequest {
    user?: User;
    sessionToken?: string;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export function sessionTokenOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  return readCookie(req.headers.cookie, SESSION_COOKIE);
}

export const PublicUser = Type.Object({ id: Type.String(), username: Type.String(), role: Type.String() });

export function authRoutes(auth: AuthStore, opts: { secureCookies: boolean }) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.post(
      '/api/v1/auth/login',
      {
        schema: {
          tags: ['auth'],
          summary: 'Log in; sets a session cookie and returns the session token',
          body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ token: Type.String(), expiresAt: Type.Number(), user: PublicUser }), ...errors(400, 401) },
        },
      },
      async (req, reply) => {
        const user = await auth.checkPassword(req.body.username, req.body.password);
        if (!user) {
          req.log.warn({ username: req.body.username.slice(0, 64), ip: req.ip }, 'login failed');
          return reply.code(401).send({ error: 'unauthorized', message: 'wrong username or password' });
        }
        const { token, expiresAt } = await auth.createSession(user.id, { ip: req.ip, userAgent: String(req.headers['user-agent'] ?? '') }, Date.now());
        reply.header(
          'set-cookie',
          `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor((expiresAt - Date.now()) / 1000)}${opts.secureCookies ? '; Secure' : ''}`,
        );
        req.log.info({ username: user.username, ip: req.ip }, 'login');
        return { token, expiresAt, user: { id: user.id, username: user.username, role: user.role } };
      },
    );
    r.post('/api/v1/auth/logout', { schema: { tags: ['auth'], summary: 'End this session' } }, async (req, reply) => {
      if (req.sessionToken) await auth.deleteSession(req.sessionToken);
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return { ok: true };
    });
    r.get('/api/v1/auth/me', { schema: { tags: ['auth'], summary: 'The logged-in user', response: { 200: PublicUser } } }, async (req) => {
      const u = req.user!;
      return { id: u.id, username: u.username, role: u.role };
    });
  };
}

/** Paths that need no login. Everything else under /api/ does. */
const PUBLIC = new Set(['/api/v1/health', '/api/v1/auth/login', '/api/v1/agent/ws']);

/** `alsoProtect`: paths outside /api/ that need a login too (GET /metrics unless it is configured open). */
export function authHook(auth: AuthStore, opts: { alsoProtect?: string[] } = {}) {
  const extra = new Set(opts.alsoProtect ?? []);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const path = req.url.split('?')[0]!;
    const isApi = path.startsWith('/api/') && !path.startsWith('/api/docs') && !PUBLIC.has(path);
    if (!isApi && !extra.has(path)) return;
    const token = sessionTokenOf(req);
    const user = token ? await auth.authenticate(token, Date.now()) : undefined;
    if (!user) {
      await reply.code(401).send({ error: 'unauthorized', message: 'login required' });
      return;
    }
    req.user = user;
    req.sessionToken = token;
  };
}
