/**
 * Files on hosts: `/api/v1/hosts/:id/files…`. Every call is one `file.request` to the host's agent,
 * which checks its own capability lock and file roots; contents stream through a transfer
 * (transfers.ts), never through the hub's memory or the control link.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Account, AbsPath, FileEntry, Sha256Hex, type FileErrorCode, type FileRequestBody, type FileResponseBody } from '@tether/protocol';
import type { Host, HostStore } from '../hosts/store.js';
import { AgentTimeout, AgentUnavailable, type AgentLink } from '../agents/link.js';
import { access, ErrorSchema, hostAllowed } from '../../http.js';
import type { TransferRegistry } from './transfers.js';

export interface FilesDeps {
  hosts: HostStore;
  link: AgentLink;
  transfers: TransferRegistry;
  /** largest upload and download through the hub */
  maxBytes: number;
}

/** How long the hub waits for a plain operation, and for one that moves a file (bounded by the transfer's own idle limits). */
const OP_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 24 * 3600_000;

const STATUS: Record<FileErrorCode, number> = {
  refused: 403,
  outside_roots: 403,
  permission: 403,
  not_found: 404,
  exists: 409,
  not_a_directory: 400,
  is_a_directory: 400,
  bad_request: 400,
  checksum: 422,
  too_large: 413,
  no_space: 507,
  transfer: 502,
  internal: 500,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const Mode = Type.String({ pattern: '^[0-7]{1,4}$', description: 'octal permission bits, e.g. 0644' });
const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const PathQuery = Type.Object({ path: AbsPath });
const Entry = Type.Object({ path: Type.String(), ...FileEntry.properties });
const Written = Type.Object({ path: Type.String(), bytes: Type.Integer(), sha256: Type.String() });
const errs = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorSchema]));
const COMMON = [400, 401, 403, 404, 409, 500, 502, 504];
const TAG = ['files'];

function octal(s: string | undefined): number | undefined {
  return s === undefined ? undefined : parseInt(s, 8);
}

export function filesRoutes(d: FilesDeps) {
  /** The host, if it exists, is in the caller's scope, and is online. */
  async function hostFor(req: FastifyRequest<{ Params: { id: string } }>): Promise<Host> {
    const h = await d.hosts.get(req.params.id);
    if (!h || !hostAllowed(req, h.labels)) throw new HttpError(404, 'not_found', 'no such host');
    if (h.revokedAt !== null) throw new HttpError(409, 'revoked', `host ${h.hostname} is revoked`);
    if (!d.link.isOnline(h.id)) throw new HttpError(409, 'agent_offline', `host ${h.hostname} is offline`);
    return h;
  }

  /** One request to the agent; an agent-side failure becomes an HttpError with the mapped status. */
  async function ask(h: Host, body: FileRequestBody, timeoutMs = OP_TIMEOUT_MS): Promise<FileResponseBody & { ok: true }> {
    const res = await askRaw(h, body, timeoutMs);
    if (!res.ok) throw agentError(res);
    return res as FileResponseBody & { ok: true };
  }

  async function askRaw(h: Host, body: FileRequestBody, timeoutMs: number): Promise<FileResponseBody> {
    try {
      const m = await d.link.request(h.id, 'file.request', body, timeoutMs);
      if (m.type !== 'file.response') throw new HttpError(502, 'bad_agent_answer', `the agent answered ${m.type}`);
      return m.body as FileResponseBody;
    } catch (err) {
      if (err instanceof AgentUnavailable) throw new HttpError(409, 'agent_offline', `host ${h.hostname} is offline (or went away before answering)`);
      if (err instanceof AgentTimeout) throw new HttpError(504, 'agent_timeout', err.message);
      throw err;
    }
  }

  function agentError(res: FileResponseBody): HttpError {
    const code = res.error?.code ?? 'internal';
    return new HttpError(STATUS[code] ?? 502, code, res.error?.message ?? 'the agent reported a failure without a reason');
  }

  function send(reply: FastifyReply, err: unknown): FastifyReply {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.code, message: err.message });
    throw err;
  }

  /** Wraps a handler so HttpErrors become answers (with their message, 5xx included: they are the agent's words). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const handle = <R extends FastifyRequest<any>>(fn: (req: R, reply: FastifyReply) => Promise<unknown>): any =>
    async (req: R, reply: FastifyReply) => {
      try {
        return await fn(req, reply);
      } catch (err) {
        return send(reply, err);
      }
    };

  const read = access({ role: 'operator', scope: 'read' });
  const execute = access({ role: 'operator', scope: 'execute', stepUp: true });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get(
      '/api/v1/hosts/:id/files',
      {
        ...read,
        schema: {
          tags: TAG,
          summary: 'List a directory on a host (sorted by name, at most 10,000 entries; `truncated` when there are more)',
          params: Params,
          querystring: PathQuery,
          response: { 200: Type.Object({ path: Type.String(), entries: Type.Array(FileEntry), truncated: Type.Boolean() }), ...errs(...COMMON) },
        },
      },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Querystring: { path: string } }>) => {
        const h = await hostFor(req);
        const res = await ask(h, { op: 'ls', path: req.query.path });
        return { path: req.query.path, entries: res.entries ?? [], truncated: Boolean(res.truncated) };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/files/stat',
      { ...read, schema: { tags: TAG, summary: 'One file or directory on a host (links followed)', params: Params, querystring: PathQuery, response: { 200: Entry, ...errs(...COMMON) } } },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Querystring: { path: string } }>) => {
        const h = await hostFor(req);
        const res = await ask(h, { op: 'stat', path: req.query.path });
        return { path: req.query.path, ...res.stat! };
      }),
    );

    r.delete(
      '/api/v1/hosts/:id/files',
      {
        ...execute,
        schema: {
          tags: TAG,
          summary: 'Delete a file, a link, or (with recursive=true) a directory tree on a host',
          params: Params,
          querystring: Type.Object({ path: AbsPath, recursive: Type.Optional(Type.Boolean()) }),
          response: { 200: Type.Object({ ok: Type.Boolean(), path: Type.String() }), ...errs(...COMMON) },
        },
      },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Querystring: { path: string; recursive?: boolean } }>) => {
        const h = await hostFor(req);
        await ask(h, { op: 'delete', path: req.query.path, recursive: Boolean(req.query.recursive) });
        req.log.info({ agentId: h.id, path: req.query.path, by: req.user?.username }, 'file deleted');
        return { ok: true, path: req.query.path };
      }),
    );

    r.post(
      '/api/v1/hosts/:id/files/mkdir',
      {
        ...execute,
        schema: {
          tags: TAG,
          summary: 'Create a directory on a host (with parents when recursive)',
          params: Params,
          body: Type.Object({ path: AbsPath, recursive: Type.Optional(Type.Boolean()), mode: Type.Optional(Mode), owner: Type.Optional(Account), group: Type.Optional(Account) }, { additionalProperties: false }),
          response: { 200: Entry, ...errs(...COMMON) },
        },
      },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Body: { path: string; recursive?: boolean; mode?: string; owner?: string; group?: string } }>) => {
        const h = await hostFor(req);
        const b = req.body;
        const res = await ask(h, { op: 'mkdir', path: b.path, recursive: Boolean(b.recursive), ...opt('mode', octal(b.mode)), ...opt('owner', b.owner), ...opt('group', b.group) });
        req.log.info({ agentId: h.id, path: b.path, by: req.user?.username }, 'directory created');
        return { path: b.path, ...res.stat! };
      }),
    );

    r.post(
      '/api/v1/hosts/:id/files/fetch',
      {
        ...execute,
        schema: {
          tags: TAG,
          summary: 'Have the agent download a URL into a file (sha256 checked when given)',
          params: Params,
          body: Type.Object(
            {
              path: AbsPath,
              url: Type.String({ maxLength: 4096, pattern: '^https?://' }),
              sha256: Type.Optional(Sha256Hex),
              size: Type.Optional(Type.Integer({ minimum: 0 })),
              mode: Type.Optional(Mode),
              owner: Type.Optional(Account),
              group: Type.Optional(Account),
              noClobber: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: { 200: Written, ...errs(...COMMON, 413, 422, 507) },
        },
      },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Body: { path: string; url: string; sha256?: string; size?: number; mode?: string; owner?: string; group?: string; noClobber?: boolean } }>) => {
        const h = await hostFor(req);
        const b = req.body;
        if (b.size !== undefined && b.size > d.maxBytes) throw new HttpError(413, 'too_large', `more than the hub's limit of ${d.maxBytes} bytes`);
        const res = await ask(
          h,
          { op: 'fetch', path: b.path, url: b.url, noClobber: Boolean(b.noClobber), ...opt('sha256', b.sha256), ...opt('size', b.size), ...opt('mode', octal(b.mode)), ...opt('owner', b.owner), ...opt('group', b.group) },
          TRANSFER_TIMEOUT_MS,
        );
        req.log.info({ agentId: h.id, path: b.path, bytes: res.bytes, by: req.user?.username }, 'file fetched from URL');
        return { path: b.path, bytes: res.bytes ?? 0, sha256: res.sha256 ?? '' };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/files/content',
      {
        ...read,
        exposeHeadRoute: false,
        schema: {
          tags: TAG,
          summary: 'Download a file. Streamed (chunked); the size is in x-tether-size, the sha256 the hub computed in the trailer x-tether-sha256 (checked against the agent’s; on mismatch the response is cut off)',
          params: Params,
          querystring: PathQuery,
          produces: ['application/octet-stream'],
          response: { 200: Type.String({ format: 'binary' }), ...errs(...COMMON, 413) },
        },
      },
      handle(async (req: FastifyRequest<{ Params: { id: string }; Querystring: { path: string } }>, reply) => {
        const h = await hostFor(req);
        const exp = d.transfers.expect(h.id, { maxBytes: d.maxBytes });
        const answer = askRaw(h, { op: 'send', path: req.query.path, transferId: exp.transferId }, TRANSFER_TIMEOUT_MS);
        answer.catch(() => {});
        const first = await Promise.race([exp.stream.then((s) => ({ s }), () => ({ s: undefined })), answer.then((a) => ({ a }))]);
        if (!('s' in first) || !first.s) {
          d.transfers.cancel(exp.transferId);
          const a = await answer; // throws offline/timeout
          if (!a.ok) throw agentError(a);
          throw new HttpError(502, 'transfer', 'the agent answered without sending the file');
        }
        const s = first.s;
        const hash = createHash('sha256');
        let bytes = 0;
        // Checked at the end, before the last chunk: the agent's sha256 (sent once it has delivered
        // everything) must equal what passed through here; if not, the response is cut off.
        const check = new Transform({
          transform(chunk: Buffer, _e, cb: TransformCallback) {
            hash.update(chunk);
            bytes += chunk.length;
            cb(null, chunk);
          },
          flush(cb: TransformCallback) {
            const mine = hash.digest('hex');
            answer.then(
              (a) => {
                if (!a.ok) return cb(agentError(a));
                if (a.sha256 !== mine || a.bytes !== bytes || bytes !== s.size) return cb(new HttpError(502, 'checksum', `relay mismatch: agent ${a.sha256}/${a.bytes}, hub ${mine}/${bytes}`));
                reply.raw.addTrailers({ 'x-tether-sha256': mine });
                cb();
              },
              (err: Error) => cb(err),
            );
          },
        });
        reply.hijack();
        const name = req.query.path.split('/').pop() || 'file';
        reply.raw.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
          'x-tether-size': String(s.size),
          ...(s.mode !== undefined ? { 'x-tether-mode': s.mode.toString(8).padStart(4, '0') } : {}),
          trailer: 'x-tether-sha256',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        try {
          await pipeline(s.body, check, reply.raw);
          req.log.info({ agentId: h.id, path: req.query.path, bytes, by: req.user?.username }, 'file downloaded');
        } catch (err) {
          req.log.warn({ agentId: h.id, path: req.query.path, err: (err as Error).message }, 'download cut off');
          s.body.destroy();
          reply.raw.destroy();
        }
        return reply;
      }),
    );

    // Uploads: the raw body is the file. Registered in its own scope so that no content-type parser
    // (not even JSON's) reads the body, and so the 1 MiB body limit does not apply.
    await app.register(async (up: FastifyInstance) => {
      up.removeAllContentTypeParsers();
      up.addContentTypeParser('*', (_req, _payload, done) => done(null));
      const u = up.withTypeProvider<TypeBoxTypeProvider>();
      u.put(
        '/api/v1/hosts/:id/files/content',
        {
          ...execute,
          schema: {
            tags: TAG,
            summary: 'Upload a file (raw application/octet-stream body with Content-Length; streamed to the agent, written atomically, sha256 checked when given)',
            params: Params,
            querystring: Type.Object({
              path: AbsPath,
              mode: Type.Optional(Mode),
              owner: Type.Optional(Account),
              group: Type.Optional(Account),
              sha256: Type.Optional(Sha256Hex),
              noClobber: Type.Optional(Type.Boolean()),
            }),
            consumes: ['application/octet-stream'],
            response: { 200: Written, ...errs(...COMMON, 411, 413, 422, 507) },
          },
        },
        handle(async (req: FastifyRequest<{ Params: { id: string }; Querystring: { path: string; mode?: string; owner?: string; group?: string; sha256?: string; noClobber?: boolean } }>, reply) => {
          const len = req.headers['content-length'];
          if (len === undefined || !/^\d+$/.test(len)) throw new HttpError(411, 'length_required', 'send the file with a Content-Length');
          const size = Number(len);
          if (size > d.maxBytes) throw new HttpError(413, 'too_large', `${size} bytes is more than the hub's limit of ${d.maxBytes} (max_upload_bytes)`);
          const h = await hostFor(req);
          const q = req.query;
          const body: Readable = req.raw;
          const offer = d.transfers.offer(h.id, () => body, size);
          let res: FileResponseBody;
          try {
            res = await askRaw(
              h,
              { op: 'receive', path: q.path, transferId: offer.transferId, size, noClobber: Boolean(q.noClobber), ...opt('sha256', q.sha256), ...opt('mode', octal(q.mode)), ...opt('owner', q.owner), ...opt('group', q.group) },
              TRANSFER_TIMEOUT_MS,
            );
          } finally {
            d.transfers.cancel(offer.transferId);
          }
          if (!res.ok) {
            // Refused before (or while) reading: do not read the rest of a large body for nothing.
            reply.header('connection', 'close');
            throw agentError(res);
          }
          const relayed = await offer.done.catch(() => undefined);
          if (!relayed || relayed.sha256 !== res.sha256 || relayed.bytes !== res.bytes) {
            throw new HttpError(502, 'checksum', `the agent wrote ${res.sha256}/${res.bytes}, the hub relayed ${relayed?.sha256 ?? '?'}/${relayed?.bytes ?? '?'}`);
          }
          req.log.info({ agentId: h.id, path: q.path, bytes: res.bytes, by: req.user?.username }, 'file uploaded');
          return { path: q.path, bytes: res.bytes ?? size, sha256: res.sha256 ?? '' };
        }),
      );
    });
  };
}

/** `{ key: value }` when the value is defined, `{}` otherwise (the protocol's optional fields must be absent, not undefined). */
function opt<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}
