/**
 * Script bundles over HTTP: upload (the raw tar as the request body, streamed to disk), list,
 * show, delete, and run on a target like a command (`POST /api/v1/bundles/:id/run`).
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { BundleSpec } from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import type { JobService } from '../jobs/service.js';
import { JobCreateError, JobOptions, JobWithTasks, TargetSchema, startJob } from '../jobs/routes.js';
import { access, errors, ErrorSchema } from '../../http.js';
import { BundleError, MAX_BUNDLE_BYTES, type Bundle, type BundleStore } from './store.js';

const BundleView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  sha256: Type.String(),
  size: Type.Integer(),
  files: Type.Integer(),
  manifest: Type.Object({ entry: Type.Array(Type.String()), name: Type.Optional(Type.String()), description: Type.Optional(Type.String()) }),
  createdBy: Type.String(),
  createdAt: Type.Number(),
});
const view = (b: Bundle) => ({ id: b.id, name: b.name, sha256: b.sha256, size: b.size, files: b.files, manifest: b.manifest, createdBy: b.createdBy, createdAt: b.createdAt });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const RunBody = Type.Object(
  {
    target: TargetSchema,
    /** replaces the manifest's entry (relative to the bundle directory) */
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256, minItems: 1 })),
    ...BundleSpec.properties.exec.properties,
    ...JobOptions,
    /** leave out hosts whose agents do not allow exec instead of refusing the job (see POST /exec) */
    skipRefused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export function bundleRoutes(bundles: BundleStore, jobs: JobService, hosts: HostStore) {
  return async function (app: FastifyInstance): Promise<void> {
    // Raw archives: handed to the route as a stream, never buffered (this plugin's context only).
    app.addContentTypeParser(['application/x-tar', 'application/octet-stream'], (_req, payload, done) => done(null, payload));
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.post(
      '/api/v1/bundles',
      {
        ...access({ role: 'operator', scope: 'write' }),
        bodyLimit: MAX_BUNDLE_BYTES,
        schema: {
          tags: ['bundles'],
          summary: 'Upload a script bundle: a tar archive (request body, application/x-tar) with manifest.json {"entry": ["./run.sh"]} at its root',
          querystring: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }),
          response: { 201: BundleView, 413: ErrorSchema, ...errors(400, 401, 403) },
        },
      },
      async (req, reply) => {
        const ct = String(req.headers['content-type'] ?? '');
        if (!/^application\/(x-tar|octet-stream)/.test(ct)) return reply.code(400).send({ error: 'bad_request', message: 'send the tar archive with content-type application/x-tar' });
        try {
          const b = await bundles.add(req.body as NodeJS.ReadableStream as never, { ...(req.query.name ? { name: req.query.name } : {}), createdBy: req.user!.username, now: app.clock.now() });
          noteAudit(req, { type: 'bundle', id: b.id, name: b.name, role: 'result' });
          return reply.code(201).send(view(b));
        } catch (err) {
          if (err instanceof BundleError) return reply.code(err.status).send({ error: err.status === 413 ? 'too_large' : 'bad_bundle', message: err.message });
          throw err;
        }
      },
    );
    r.get('/api/v1/bundles', { ...access({ role: 'viewer', scope: 'read' }), schema: { tags: ['bundles'], summary: 'Uploaded bundles', response: { 200: Type.Object({ bundles: Type.Array(BundleView) }) } } }, async () => ({
      bundles: (await bundles.list()).map(view),
    }));
    r.get('/api/v1/bundles/:id', { ...access({ role: 'viewer', scope: 'read' }), schema: { tags: ['bundles'], summary: 'One bundle', params: IdParams, response: { 200: BundleView, ...errors(401, 404) } } }, async (req, reply) => {
      const b = await bundles.get(req.params.id);
      return b ? view(b) : reply.code(404).send({ error: 'not_found', message: 'no such bundle' });
    });
    r.delete('/api/v1/bundles/:id', { ...access({ role: 'operator', scope: 'write' }), schema: { tags: ['bundles'], summary: 'Delete a bundle', params: IdParams, response: { 200: Type.Object({ ok: Type.Boolean() }), ...errors(401, 403, 404) } } }, async (req, reply) =>
      (await bundles.remove(req.params.id)) ? { ok: true } : reply.code(404).send({ error: 'not_found', message: 'no such bundle' }),
    );
    r.post(
      '/api/v1/bundles/:id/run',
      {
        ...access({ role: 'operator', scope: 'execute', stepUp: true }),
        schema: {
          tags: ['bundles'],
          summary: 'Run a bundle on hosts: each agent fetches it, checks its sha256, unpacks it in a fresh directory, runs the entry there and removes it',
          params: IdParams,
          body: RunBody,
          response: { 200: JobWithTasks, 202: JobWithTasks, ...errors(401, 403, 404), 400: JobCreateError },
        },
      },
      async (req, reply) => {
        const b = await bundles.get(req.params.id);
        if (!b) return reply.code(404).send({ error: 'not_found', message: 'no such bundle' });
        noteAudit(req, { type: 'bundle', id: b.id, name: b.name });
        const { target, strategy, mode, wait, name, callbackUrl, args, skipRefused, ...exec } = req.body;
        return startJob(jobs, hosts, req, reply, {
          kind: 'bundle',
          spec: { bundleId: b.id, name: b.name, sha256: b.sha256, size: b.size, ...(args ? { args } : {}), exec },
          target,
          strategy,
          mode,
          wait,
          name: name ?? `bundle ${b.name}`,
          skipRefused,
          callbackUrl,
        });
      },
    );
  };
}
