import type { FastifyInstance } from 'fastify';
import { noteAudit } from '../audit/subjects.js';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { validateLabels, type Labels } from '@tether/protocol';
import type { EnrollStore, EnrollToken } from './store.js';
import { access, errors, publicRoute } from '../../http.js';

const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  createdAt: Type.Number(),
  createdBy: Type.String(),
  expiresAt: Type.Number(),
  singleUse: Type.Boolean(),
  uses: Type.Integer(),
  lastUsedAt: Type.Union([Type.Number(), Type.Null()]),
  revokedAt: Type.Union([Type.Number(), Type.Null()]),
});
const view = (t: EnrollToken) => ({ ...t });

/** `hubFingerprint`: the hub's TLS certificate fingerprint, which agents pin (self-signed certificates). */
export function enrollRoutes(store: EnrollStore, opts: { hubFingerprint?: string } = {}) {
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.post(
      '/api/v1/enrollment-tokens',
      {
        ...access({ role: 'admin', scope: 'write' }),
        schema: {
          tags: ['enrollment'],
          summary: 'Create an enrollment token (shown once), with the hub certificate fingerprint agents pin when the hub serves TLS',
          body: Type.Object(
            {
              name: Type.Optional(Type.String({ maxLength: 128 })),
              expiresInSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 365 * 86400 })),
              singleUse: Type.Optional(Type.Boolean()),
              labels: Type.Optional(Type.Record(Type.String(), Type.String())),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ token: Type.String(), tokenInfo: TokenView, hubFingerprint: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
        },
      },
      async (req, reply) => {
        const labels = (req.body.labels ?? {}) as Labels;
        const errs = validateLabels(labels);
        if (errs.length) return reply.code(400).send({ error: 'bad_labels', message: errs.join('; ') });
        const { token, record } = await store.create({
          ...(req.body.name !== undefined ? { name: req.body.name } : {}),
          labels,
          expiresInSec: req.body.expiresInSec ?? 24 * 3600,
          singleUse: req.body.singleUse ?? false,
          createdBy: req.user!.username,
          now: app.clock.now(),
        });
        noteAudit(req, { type: 'enroll-token', id: record.id, ...(record.name ? { name: record.name } : {}), role: 'result' });
        req.log.info({ tokenId: record.id, by: req.user!.username, singleUse: record.singleUse }, 'enrollment token created');
        return { token, tokenInfo: view(record), ...(opts.hubFingerprint ? { hubFingerprint: opts.hubFingerprint } : {}) };
      },
    );
    r.post(
      '/api/v1/enrollment-tokens/check',
      {
        ...publicRoute('install.sh asks whether its enrollment token would be accepted before it installs anything; the token itself is the credential, and nothing is used or changed'),
        schema: {
          tags: ['enrollment'],
          summary: 'Check an enrollment token without using it: 200 when an agent presenting it now would enroll, 401 with the reason otherwise',
          body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ ok: Type.Literal(true) }), ...errors(400, 401) },
        },
      },
      async (req, reply) => {
        const r = await store.check(req.body.token, app.clock.now());
        if (!r.ok) return reply.code(401).send({ error: r.code, message: r.reason });
        return { ok: true as const };
      },
    );
    r.get('/api/v1/enrollment-tokens', { ...access({ role: 'admin', scope: 'read' }), schema: { tags: ['enrollment'], summary: 'List enrollment tokens (never the secrets)', response: { 200: Type.Object({ tokens: Type.Array(TokenView) }) } } }, async () => ({
      tokens: (await store.list()).map(view),
    }));
    r.delete(
      '/api/v1/enrollment-tokens/:id',
      { ...access({ role: 'admin', scope: 'write' }), schema: { tags: ['enrollment'], summary: 'Revoke an enrollment token', params: Type.Object({ id: Type.String({ maxLength: 64 }) }) } },
      async (req, reply) => {
        if (!(await store.revoke(req.params.id, app.clock.now()))) return reply.code(404).send({ error: 'not_found', message: 'no such active token' });
        return { ok: true };
      },
    );
  };
}
