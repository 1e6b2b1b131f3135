/**
 * The request authentication hook, and the routes of one's own account: login, logout, step-up,
 * password, sessions, login history, TOTP.
 *
 * A credential is accepted from the `tether_session` cookie (console) or an `Authorization:
 * Bearer` header (CLI, automation): a session token (`tts_…`) or an API token (`tta_…`). Writes
 * authenticated by the cookie also need the session's CSRF token in `x-csrf-token` and, when the
 * browser sends one, an allowed Origin; Bearer requests cannot be forged by another site and are exempt.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { timingSafeEqual } from 'node:crypto';
import { parseSelector } from '@tether/protocol';
import type { AuthStore, LoginRow, User } from './store.js';
import type { Admission, LoginGuard } from './guard.js';
import { currentStep, newRecoveryCodes, newTotpSecret, qrCode, totpStep, totpUri } from './totp.js';
import { access, denial, errors, publicRoute, type Principal } from '../../http.js';

export const SESSION_COOKIE = 'tether_session';
export const CSRF_COOKIE = 'tether_csrf';
export const CSRF_HEADER = 'x-csrf-token';

declare module 'fastify' {
  interface FastifyRequest {
    user?: User;
    /** the session token, when the caller authenticated with a session (cookie or Bearer) */
    sessionToken?: string;
    auth?: Principal;
  }
}

export interface AuthOptions {
  secureCookies: boolean;
  stepUpWindowMs: number;
  /** Origins (scheme://host:port) besides the hub's own that may send cookie-authenticated writes and open /api/v1/live */
  allowedOrigins: string[];
  guard: LoginGuard;
  totpIssuer: string;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export function credentialOf(req: FastifyRequest): { token: string; via: 'cookie' | 'bearer' } | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return { token: auth.slice(7).trim(), via: 'bearer' };
  const c = readCookie(req.headers.cookie, SESSION_COOKIE);
  return c ? { token: c, via: 'cookie' } : undefined;
}

/** @deprecated use credentialOf */
export function sessionTokenOf(req: FastifyRequest): string | undefined {
  return credentialOf(req)?.token;
}

/** A request with no Origin (CLI, curl, same-origin GET) passes; a browser's Origin must be the hub itself or listed. */
export function originAllowed(req: FastifyRequest, allowed: string[]): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  if (allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const safeEqual = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Authenticates the caller and applies the route's declared access before the body is validated.
 * Routes without a declaration never get here: the hub refuses to start with one (see server.ts).
 */
export function authHook(auth: AuthStore, opts: Pick<AuthOptions, 'stepUpWindowMs' | 'allowedOrigins'>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!req.routeOptions.url) return; // no such route: the 404 handler answers
    const cfg = req.routeOptions.config;
    if (cfg.public !== undefined) {
      if (MUTATING.has(req.method) && !originAllowed(req, opts.allowedOrigins)) {
        await reply.code(403).send({ error: 'csrf_failed', message: 'request from a foreign origin refused' });
      }
      return;
    }
    const a = cfg.access;
    if (!a) {
      await reply.code(403).send({ error: 'forbidden', message: 'route declares no access' });
      return;
    }
    const now = req.server.clock.now();
    const cred = credentialOf(req);
    const found = cred ? await auth.authenticate(cred.token, now, req.ip) : undefined;
    if (found && cred) {
      req.user = found.user;
      req.auth =
        found.kind === 'session'
          ? { kind: 'session', via: cred.via, id: found.sid, credHash: found.credHash, scope: 'execute', stepUpAt: found.stepUpAt }
          : { kind: 'token', via: cred.via, id: found.id, credHash: found.credHash, scope: found.scope, stepUpAt: null };
      if (found.kind === 'session') req.sessionToken = cred.token;
      const scopes = [found.user.hostSelector, found.kind === 'token' ? found.tokenSelector : null].filter((s): s is string => !!s).map((s) => parseSelector(s));
      if (scopes.length) req.hostScopes = scopes;
      // Only the console's cookie rides along on a request another site makes the browser send.
      if (cred.via === 'cookie' && MUTATING.has(req.method) && found.kind === 'session') {
        const header = req.headers[CSRF_HEADER];
        if (typeof header !== 'string' || !safeEqual(header, found.csrf) || !originAllowed(req, opts.allowedOrigins)) {
          await reply.code(403).send({ error: 'csrf_failed', message: `cookie-authenticated writes need the session's CSRF token in the ${CSRF_HEADER} header (from login or GET /api/v1/auth/me)` });
          return;
        }
      }
    }
    const d = denial(a, found && req.auth ? { role: found.user.role, principal: req.auth } : undefined, now, opts.stepUpWindowMs);
    if (d) await reply.code(d.status).send({ error: d.error, message: d.message });
  };
}

export const PublicUser = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Type.String(),
  hostSelector: Type.Union([Type.String(), Type.Null()]),
  totpEnabled: Type.Boolean(),
});
const publicUser = (u: User, totpEnabled: boolean) => ({ id: u.id, username: u.username, role: u.role, hostSelector: u.hostSelector, totpEnabled });

export const PASSWORD = Type.String({ minLength: 10, maxLength: 1024, description: 'at least 10 characters' });
const CODE = Type.String({ minLength: 6, maxLength: 32, description: 'a 6-digit code from the authenticator app, or a recovery code' });

const cookie = (name: string, value: string, maxAgeSec: number, o: { httpOnly: boolean; secure: boolean }) =>
  `${name}=${value}; Path=/;${o.httpOnly ? ' HttpOnly;' : ''} SameSite=Strict; Max-Age=${maxAgeSec}${o.secure ? '; Secure' : ''}`;

export function authRoutes(auth: AuthStore, opts: AuthOptions) {
  const guard = opts.guard;
  const meta = (req: FastifyRequest) => ({ ip: req.ip, userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256) });

  /** A TOTP code (not replayed) or an unused recovery code. */
  async function secondFactorOk(row: LoginRow, code: string, now: number): Promise<boolean> {
    if (!row.totpSecret) return false;
    const step = totpStep(row.totpSecret, code.trim(), now);
    if (step !== undefined) return auth.claimTotpStep(row.id, step);
    return auth.useRecoveryCode(row.id, code, now);
  }

  /** The answer to an attempt the guard did not let through: too many failures from the address, or the account locked. */
  function refuse(reply: FastifyReply, a: Exclude<Admission, { kind: 'counted' }>, now: number, what: string): FastifyReply {
    if (a.kind === 'locked') return reply.code(423).send({ error: 'account_locked', message: guard.lockMessage(a.until, now) });
    const sec = Math.ceil(a.retryAfterMs / 1000);
    return reply.code(429).header('retry-after', sec).send({ error: 'too_many_attempts', message: `too many ${what} from this address: try again in ${sec} s` });
  }

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.post(
      '/api/v1/auth/login',
      {
        ...publicRoute('logging in'),
        schema: {
          tags: ['auth'],
          summary: 'Log in; sets the session and CSRF cookies and returns the session token. With 2FA on, `code` is needed too (error totp_required without it).',
          body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }), code: Type.Optional(CODE) }, { additionalProperties: false }),
          response: { 200: Type.Object({ token: Type.String(), expiresAt: Type.Number(), csrfToken: Type.String(), user: PublicUser }), ...errors(400, 401, 423, 429) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        const { username, password, code } = req.body;
        const m = meta(req);
        const history = (outcome: string, userId: string | null) => auth.recordLogin({ ts: now, kind: 'login', username, userId, ...m, outcome });
        const row = await auth.loginRow({ username });
        // Counted before the password is checked: parallel guesses cannot all pass a count read before any of them failed.
        const admitted = await guard.begin(username, req.ip, now);
        if (admitted.kind !== 'counted') {
          await history(admitted.kind, admitted.kind === 'locked' ? (row?.id ?? null) : null);
          return refuse(reply, admitted, now, 'failed logins');
        }
        const attempt = admitted.attempt;
        // The same argon2 work whether or not the user exists, so timing does not tell unknown and wrong apart.
        const ok = await auth.verifyPassword(row?.passwordHash, password);
        if (!row || !ok || row.disabled) {
          await history(row?.disabled ? 'disabled' : 'bad_password', row?.id ?? null);
          req.log.warn({ username: username.slice(0, 64), ip: req.ip }, 'login failed');
          return reply.code(401).send({ error: 'unauthorized', message: 'wrong username or password' });
        }
        if (row.totpSecret) {
          if (!code) {
            await guard.notAGuess(attempt);
            await history('totp_required', row.id);
            return reply.code(401).send({ error: 'totp_required', message: 'two-factor authentication is on: give the code from your authenticator app (or a recovery code)' });
          }
          if (!(await secondFactorOk(row, code, now))) {
            await history('bad_code', row.id);
            return reply.code(401).send({ error: 'bad_code', message: 'wrong or already used one-time code' });
          }
        }
        await guard.succeeded(attempt);
        const s = await auth.createSession(row.id, m, now);
        await history('ok', row.id);
        const maxAge = Math.floor((s.expiresAt - now) / 1000);
        reply.header('set-cookie', [
          cookie(SESSION_COOKIE, s.token, maxAge, { httpOnly: true, secure: opts.secureCookies }),
          cookie(CSRF_COOKIE, s.csrf, maxAge, { httpOnly: false, secure: opts.secureCookies }),
        ]);
        req.log.info({ username: row.username, ip: req.ip }, 'login');
        return { token: s.token, expiresAt: s.expiresAt, csrfToken: s.csrf, user: publicUser(row, row.totpSecret !== null) };
      },
    );

    r.post('/api/v1/auth/logout', { ...access({ role: 'viewer', scope: 'read', sessionOnly: true }), schema: { tags: ['auth'], summary: 'End this session' } }, async (req, reply) => {
      if (req.sessionToken) await auth.deleteSession(req.sessionToken);
      reply.header('set-cookie', [cookie(SESSION_COOKIE, '', 0, { httpOnly: true, secure: opts.secureCookies }), cookie(CSRF_COOKIE, '', 0, { httpOnly: false, secure: opts.secureCookies })]);
      return { ok: true };
    });

    r.get(
      '/api/v1/auth/me',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['auth'],
          summary: 'The caller: user, how they authenticated, until when their step-up holds, and the CSRF token of a session',
          response: {
            200: Type.Object({
              ...PublicUser.properties,
              auth: Type.Object({ kind: Type.String(), via: Type.String(), id: Type.String(), scope: Type.String(), stepUpUntil: Type.Union([Type.Number(), Type.Null()]) }),
              csrfToken: Type.Optional(Type.String()),
            }),
          },
        },
      },
      async (req) => {
        const u = (await auth.getUser(req.user!.id))!;
        const a = req.auth!;
        const found = a.kind === 'session' && req.sessionToken ? await auth.authenticate(req.sessionToken, app.clock.now()) : undefined;
        return {
          ...publicUser(u, u.totpEnabled),
          auth: { kind: a.kind, via: a.via, id: a.id, scope: a.scope, stepUpUntil: a.stepUpAt === null ? null : a.stepUpAt + opts.stepUpWindowMs },
          ...(found?.kind === 'session' ? { csrfToken: found.csrf } : {}),
        };
      },
    );

    r.post(
      '/api/v1/auth/step-up',
      {
        ...access({ role: 'viewer', scope: 'read', sessionOnly: true }),
        schema: {
          tags: ['auth'],
          summary: 'Confirm it is you before a dangerous action: the password, or with 2FA on a one-time code. Holds for the step-up window.',
          body: Type.Object({ password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })), code: Type.Optional(CODE) }, { additionalProperties: false }),
          response: { 200: Type.Object({ stepUpUntil: Type.Number() }), ...errors(400, 401, 403, 423, 429) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        const row = (await auth.loginRow({ id: req.user!.id }))!;
        const history = (outcome: string) => auth.recordLogin({ ts: now, kind: 'step_up', username: row.username, userId: row.id, ...meta(req), outcome });
        // With 2FA on, the password alone is not a second factor.
        if (row.totpSecret && !req.body.code) return reply.code(400).send({ error: 'code_required', message: 'two-factor authentication is on: give a one-time code' });
        if (!row.totpSecret && !req.body.password) return reply.code(400).send({ error: 'password_required', message: 'give your password' });
        const admitted = await guard.begin(row.username, req.ip, now);
        if (admitted.kind !== 'counted') return refuse(reply, admitted, now, 'failures');
        const ok = row.totpSecret ? await secondFactorOk(row, req.body.code!, now) : await auth.verifyPassword(row.passwordHash, req.body.password!);
        if (!ok) {
          await history('failed');
          return reply.code(401).send({ error: 'step_up_failed', message: row.totpSecret ? 'wrong or already used one-time code' : 'wrong password' });
        }
        await guard.succeeded(admitted.attempt);
        await auth.markStepUp(req.auth!.credHash, now);
        await history('ok');
        return { stepUpUntil: now + opts.stepUpWindowMs };
      },
    );

    r.post(
      '/api/v1/auth/password',
      {
        ...access({ role: 'viewer', scope: 'write', sessionOnly: true }),
        schema: {
          tags: ['auth'],
          summary: 'Change your own password (needs the current one); your other sessions end, and with revokeApiTokens your API tokens too',
          body: Type.Object(
            {
              currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
              newPassword: PASSWORD,
              revokeApiTokens: Type.Optional(Type.Boolean({ description: 'also revoke every API token of yours at once (default false; the console ticks it)' })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ ok: Type.Boolean(), revokedApiTokens: Type.Integer({ description: 'API tokens revoked by this change' }) }), ...errors(400, 401, 403, 423, 429) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        const row = (await auth.loginRow({ id: req.user!.id }))!;
        const admitted = await guard.begin(row.username, req.ip, now);
        if (admitted.kind !== 'counted') return refuse(reply, admitted, now, 'failures');
        if (!(await auth.verifyPassword(row.passwordHash, req.body.currentPassword))) {
          return reply.code(401).send({ error: 'wrong_password', message: 'the current password is wrong' });
        }
        await guard.succeeded(admitted.attempt);
        await auth.setPassword(row.id, req.body.newPassword, now, req.auth!.id);
        const revokedApiTokens = req.body.revokeApiTokens ? await auth.revokeApiTokensOf(row.id, now) : 0;
        return { ok: true, revokedApiTokens };
      },
    );

    const SessionView = Type.Object({
      id: Type.String(),
      userId: Type.String(),
      username: Type.String(),
      createdAt: Type.Number(),
      expiresAt: Type.Number(),
      lastUsedAt: Type.Number(),
      ip: Type.String(),
      userAgent: Type.String(),
      stepUpAt: Type.Union([Type.Number(), Type.Null()]),
      current: Type.Boolean(),
    });
    r.get(
      '/api/v1/auth/sessions',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['auth'],
          summary: 'Your open sessions; an admin may ask for everyone’s (all=true)',
          querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }),
          response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errors(403) },
        },
      },
      async (req, reply) => {
        if (req.query.all && req.user!.role !== 'admin') return reply.code(403).send({ error: 'forbidden', message: 'only an admin sees other users’ sessions' });
        const list = await auth.listSessions(req.query.all ? undefined : req.user!.id, app.clock.now());
        return { sessions: list.map((s) => ({ ...s, current: req.auth?.kind === 'session' && s.id === req.auth.id })) };
      },
    );
    r.delete(
      '/api/v1/auth/sessions/:id',
      {
        ...access({ role: 'viewer', scope: 'write' }),
        schema: { tags: ['auth'], summary: 'End a session at once (yours; an admin may end anyone’s)', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: Type.Object({ ok: Type.Boolean() }), ...errors(404) } },
      },
      async (req, reply) => {
        const ok = await auth.revokeSession(req.params.id, req.user!.role === 'admin' ? undefined : req.user!.id);
        if (!ok) return reply.code(404).send({ error: 'not_found', message: 'no such session' });
        return { ok: true };
      },
    );

    r.get(
      '/api/v1/auth/logins',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['auth'],
          summary: 'Login and step-up history (time, address, user agent, outcome): yours; an admin may ask for one user or all',
          querystring: Type.Object({ user: Type.Optional(Type.String({ maxLength: 64 })), all: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), before: Type.Optional(Type.Number()) }),
          response: { 200: Type.Object({ logins: Type.Array(Type.Object({ ts: Type.Number(), kind: Type.String(), username: Type.String(), userId: Type.Union([Type.String(), Type.Null()]), ip: Type.String(), userAgent: Type.String(), outcome: Type.String() })) }), ...errors(403, 404) },
        },
      },
      async (req, reply) => {
        const self = req.user!;
        let userId: string | undefined = self.id;
        if (req.query.all || (req.query.user && req.query.user !== self.username)) {
          if (self.role !== 'admin') return reply.code(403).send({ error: 'forbidden', message: 'only an admin sees other users’ logins' });
          if (req.query.all) userId = undefined;
          else {
            const u = await auth.findUser(req.query.user!);
            if (!u) return reply.code(404).send({ error: 'not_found', message: 'no such user' });
            userId = u.id;
          }
        }
        return { logins: await auth.loginHistory({ ...(userId ? { userId } : {}), limit: req.query.limit ?? 100, ...(req.query.before ? { before: req.query.before } : {}) }) };
      },
    );

    r.post(
      '/api/v1/auth/totp',
      {
        ...access({ role: 'viewer', scope: 'write', stepUp: true, sessionOnly: true }),
        schema: {
          tags: ['auth'],
          summary: 'Start TOTP enrolment: a new secret as an otpauth URI and a QR code. It takes effect on confirm.',
          response: { 200: Type.Object({ secret: Type.String(), uri: Type.String(), qrSvg: Type.String(), qrText: Type.String() }) },
        },
      },
      async (req) => {
        const secret = newTotpSecret();
        await auth.setTotpPending(req.user!.id, secret);
        const uri = totpUri(secret, req.user!.username, opts.totpIssuer);
        const qr = qrCode(uri);
        return { secret, uri, qrSvg: qr.svg, qrText: qr.text };
      },
    );
    r.post(
      '/api/v1/auth/totp/confirm',
      {
        ...access({ role: 'viewer', scope: 'write', sessionOnly: true }),
        schema: {
          tags: ['auth'],
          summary: 'Turn TOTP on with a code from the app; returns ten recovery codes, shown only this once',
          body: Type.Object({ code: Type.String({ pattern: '^[0-9]{6}$' }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ recoveryCodes: Type.Array(Type.String()) }), ...errors(400, 409) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        const pending = await auth.totpPending(req.user!.id);
        if (!pending) return reply.code(409).send({ error: 'no_enrolment', message: 'start with POST /api/v1/auth/totp' });
        const step = totpStep(pending, req.body.code, now);
        if (step === undefined) return reply.code(400).send({ error: 'bad_code', message: 'the code does not match: check the device clock and try the next code' });
        const { codes, hashes } = newRecoveryCodes();
        await auth.enableTotp(req.user!.id, pending, Math.max(step, currentStep(now) - 1), hashes, now);
        return { recoveryCodes: codes };
      },
    );
    r.delete(
      '/api/v1/auth/totp',
      { ...access({ role: 'viewer', scope: 'write', stepUp: true, sessionOnly: true }), schema: { tags: ['auth'], summary: 'Turn your TOTP off (and drop the recovery codes)', response: { 200: Type.Object({ ok: Type.Boolean() }) } } },
      async (req) => {
        await auth.disableTotp(req.user!.id, app.clock.now());
        return { ok: true };
      },
    );
  };
}
