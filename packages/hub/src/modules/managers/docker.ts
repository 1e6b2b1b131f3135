/**
 * Docker on hosts: `/api/v1/hosts/:id/docker/…`, each call one `docker.request` to the host's agent.
 * Reads of state are for viewers; logs and inspect (which show environment variables) for operators;
 * changes need `execute`; removing, pruning and creating containers (a container can mount the
 * host's root) need a step-up too.
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CONTAINER_REF, ContainerSpec, ContainerStats, ContainerSummary, IMAGE_REF, ImageSummary, OutputChunk, SIGNAL_INPUTS, signalName, type DockerRequestBody } from '@tether/protocol';
import { access } from '../../http.js';
import { COMMON, Ok, Params, errs, opt, type Managers } from './common.js';

const TAG = ['docker'];
const CParams = Type.Object({ id: Params.properties.id, cid: Type.String({ pattern: CONTAINER_REF, description: 'container id (or prefix) or name' }) });
const ImageRef = Type.Object({ ref: Type.String({ pattern: IMAGE_REF, description: 'image id or name[:tag]' }) });

type P = { id: string; cid: string };

export function dockerRoutes(m: Managers) {
  const viewer = access({ role: 'viewer', scope: 'read' });
  const read = access({ role: 'operator', scope: 'read' });
  const execute = access({ role: 'operator', scope: 'execute' });
  const danger = access({ role: 'operator', scope: 'execute', stepUp: true });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const ask = async (req: { params: { id: string } }, body: DockerRequestBody, timeoutMs?: number) => m.ask(await m.host(req as never), 'docker.request', body, timeoutMs);

    r.get(
      '/api/v1/hosts/:id/docker',
      { ...viewer, schema: { tags: TAG, summary: "The engine's info and version (409 unavailable when the host has no Docker socket)", params: Params, response: { 200: Type.Object({ info: Type.Unknown(), version: Type.Unknown(), readOnly: Type.Boolean() }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string } }) => (await ask(req, { op: "info" })).detail),
    );

    r.get(
      '/api/v1/hosts/:id/docker/containers',
      { ...viewer, schema: { tags: TAG, summary: 'Containers (running only, or all)', params: Params, querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }), response: { 200: Type.Object({ containers: Type.Array(ContainerSummary) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { all?: boolean } }) => ({ containers: (await ask(req, { op: 'containers', all: Boolean(req.query.all) })).containers })),
    );

    r.post(
      '/api/v1/hosts/:id/docker/containers',
      {
        ...danger,
        schema: { tags: TAG, summary: 'Create a container from an image (and start it with start: true, like docker run)', params: Params, body: ContainerSpec, response: { 200: Type.Object({ id: Type.String(), warnings: Type.Array(Type.String()) }), ...errs(...COMMON) } },
      },
      m.handle(async (req: FastifyRequest & { params: { id: string }; body: DockerRequestBody['spec'] }) => {
        const a = await ask(req, { op: 'create', spec: req.body! }, 300_000);
        if (a.id) noteAudit(req, { type: 'container', id: String(a.id), ...(req.body?.name ? { name: req.body.name } : {}), host: req.params.id, role: 'result' });
        return { id: a.id, warnings: a.warnings ?? [] };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/docker/containers/:cid',
      { ...read, schema: { tags: TAG, summary: "Inspect a container (the engine's JSON)", params: CParams, response: { 200: Type.Unknown(), ...errs(...COMMON) } } },
      m.handle(async (req: { params: P }) => (await ask(req, { op: 'inspect', ref: req.params.cid })).detail),
    );

    for (const action of ['start', 'stop', 'restart', 'kill', 'pause', 'unpause'] as const) {
      r.post(
        `/api/v1/hosts/:id/docker/containers/:cid/${action}`,
        {
          ...execute,
          schema: {
            tags: TAG,
            summary: `${action[0]!.toUpperCase()}${action.slice(1)} a container`,
            params: CParams,
            querystring: Type.Object({ timeoutSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'stop, restart: seconds before SIGKILL' })), signal: Type.Optional(Type.Enum(SIGNAL_INPUTS, { description: 'kill: the signal, KILL or SIGKILL alike (default SIGKILL)' })) }),
            response: { 200: Ok, ...errs(...COMMON) },
          },
        },
        m.handle(async (req: { params: P; query: { timeoutSec?: number; signal?: string } }) => {
          await ask(req, { op: action, ref: req.params.cid, ...opt('timeoutSec', req.query.timeoutSec), ...opt('signal', req.query.signal === undefined ? undefined : signalName(req.query.signal)) }, 300_000);
          return { ok: true };
        }),
      );
    }

    r.post(
      '/api/v1/hosts/:id/docker/containers/:cid/rename',
      { ...execute, schema: { tags: TAG, summary: 'Rename a container', params: CParams, body: Type.Object({ name: Type.String({ pattern: CONTAINER_REF }) }, { additionalProperties: false }), response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: P; body: { name: string } }) => {
        await ask(req, { op: 'rename', ref: req.params.cid, name: req.body.name });
        return { ok: true };
      }),
    );

    r.delete(
      '/api/v1/hosts/:id/docker/containers/:cid',
      { ...danger, schema: { tags: TAG, summary: 'Remove a container (force: also a running one; volumes: its anonymous volumes too)', params: CParams, querystring: Type.Object({ force: Type.Optional(Type.Boolean()), volumes: Type.Optional(Type.Boolean()) }), response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: P; query: { force?: boolean; volumes?: boolean } }) => {
        await ask(req, { op: 'remove', ref: req.params.cid, force: Boolean(req.query.force), volumes: Boolean(req.query.volumes) }, 300_000);
        return { ok: true };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/docker/containers/:cid/logs',
      {
        ...read,
        schema: {
          tags: TAG,
          summary: 'Logs, stdout and stderr demultiplexed. With follow=true: streamed as they come (text, or NDJSON {stream, data} with format=ndjson) until the client disconnects',
          params: CParams,
          querystring: Type.Object({
            tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
            since: Type.Optional(Type.Integer({ minimum: 0, description: 'seconds since the epoch' })),
            timestamps: Type.Optional(Type.Boolean()),
            follow: Type.Optional(Type.Boolean()),
            format: Type.Optional(Type.Enum(['json', 'ndjson', 'text'] as const)),
          }),
          response: { 200: Type.Object({ logs: Type.Array(OutputChunk), truncated: Type.Boolean() }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: P; query: { tail?: number; since?: number; timestamps?: boolean; follow?: boolean; format?: string } }, reply: FastifyReply) => {
        const q = req.query;
        const base: DockerRequestBody = { op: 'logs', ref: req.params.cid, ...opt('tail', q.tail), ...opt('since', q.since), ...opt('timestamps', q.timestamps) };
        const h = await m.host(req as never);
        if (q.follow) return m.follow(req as never, reply, h, 'docker.request', (streamId) => ({ ...base, streamId }), { ndjson: q.format === 'ndjson' });
        const a = await m.ask(h, 'docker.request', base);
        if (q.format === 'text') return reply.type('text/plain; charset=utf-8').send(((a.logs ?? []) as { data: string }[]).map((c) => c.data).join(''));
        return { logs: a.logs ?? [], truncated: Boolean(a.truncated) };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/docker/containers/:cid/top',
      { ...viewer, schema: { tags: TAG, summary: "A container's processes (docker top)", params: CParams, response: { 200: Type.Object({ titles: Type.Array(Type.String()), processes: Type.Array(Type.Array(Type.String())) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: P }) => (await ask(req, { op: 'top', ref: req.params.cid })).top),
    );

    r.get(
      '/api/v1/hosts/:id/docker/containers/:cid/stats',
      { ...viewer, schema: { tags: TAG, summary: "A container's CPU, memory, network and block I/O now (one sample)", params: CParams, response: { 200: ContainerStats, ...errs(...COMMON) } } },
      m.handle(async (req: { params: P }) => (await ask(req, { op: 'stats', ref: req.params.cid })).stats),
    );

    r.get(
      '/api/v1/hosts/:id/docker/images',
      { ...viewer, schema: { tags: TAG, summary: 'Images', params: Params, querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }), response: { 200: Type.Object({ images: Type.Array(ImageSummary) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { all?: boolean } }) => ({ images: (await ask(req, { op: 'images', all: Boolean(req.query.all) })).images })),
    );

    r.get(
      '/api/v1/hosts/:id/docker/images/inspect',
      { ...viewer, schema: { tags: TAG, summary: "Inspect an image (the engine's JSON)", params: Params, querystring: ImageRef, response: { 200: Type.Unknown(), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { ref: string } }) => (await ask(req, { op: 'image_inspect', ref: req.query.ref })).detail),
    );

    r.post(
      '/api/v1/hosts/:id/docker/images/pull',
      { ...execute, schema: { tags: TAG, summary: 'Pull an image (when the host reaches a registry)', params: Params, body: Type.Object({ ref: ImageRef.properties.ref }, { additionalProperties: false }), response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; body: { ref: string } }) => {
        await ask(req, { op: 'image_pull', ref: req.body.ref }, 15 * 60_000);
        return { ok: true };
      }),
    );

    r.post(
      '/api/v1/hosts/:id/docker/images/import',
      {
        ...execute,
        schema: {
          tags: TAG,
          summary: 'Make an image from a root filesystem tarball already on the host (docker import); the agent needs the files capability too and reads only inside its file roots',
          params: Params,
          body: Type.Object({ ref: ImageRef.properties.ref, path: Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description: 'absolute path of the tarball on the host' }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ ok: Type.Boolean(), id: Type.Optional(Type.String()) }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; body: { ref: string; path: string } }) => {
        const r = await ask(req, { op: 'image_import', ref: req.body.ref, path: req.body.path }, 15 * 60_000);
        return { ok: true, ...(r.id ? { id: r.id } : {}) };
      }),
    );

    r.delete(
      '/api/v1/hosts/:id/docker/images',
      { ...danger, schema: { tags: TAG, summary: 'Remove an image', params: Params, querystring: Type.Object({ ref: ImageRef.properties.ref, force: Type.Optional(Type.Boolean()) }), response: { 200: Type.Object({ removed: Type.Array(Type.String()) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { ref: string; force?: boolean } }) => ({ removed: (await ask(req, { op: 'image_remove', ref: req.query.ref, force: Boolean(req.query.force) })).removed ?? [] })),
    );

    r.post(
      '/api/v1/hosts/:id/docker/prune',
      {
        ...danger,
        schema: {
          tags: TAG,
          summary: 'Remove stopped containers, or unused images (dangling only unless all: true)',
          params: Params,
          body: Type.Object({ what: Type.Enum(['containers', 'images'] as const), all: Type.Optional(Type.Boolean()), label: Type.Optional(Type.String({ maxLength: 512, pattern: '^[^\\s=]{1,255}(=\\S{0,255})?$', description: 'only what carries this label (key or key=value)' })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ removed: Type.Array(Type.String()), spaceReclaimed: Type.Integer() }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; body: { what: 'containers' | 'images'; all?: boolean; label?: string } }) => {
        const a = await ask(req, { op: req.body.what === 'containers' ? 'prune_containers' : 'prune_images', all: Boolean(req.body.all), ...opt('label', req.body.label) }, 300_000);
        return { removed: a.removed ?? [], spaceReclaimed: a.spaceReclaimed ?? 0 };
      }),
    );
  };
}
