/**
 * Transfers: file contents between hub and agent over a separate HTTP request that the agent makes
 * (`GET|PUT /agent/transfers/:id`), never over the control WebSocket. The hub registers a transfer
 * (`offer`: hub → agent, `expect`: agent → hub), names its id in a link request, and the agent
 * arrives with a signature over the id. An id is 32 random bytes, bound to one agent, good once,
 * and gone if the agent does not arrive within 30 s.
 *
 * Used by the files module and by anything else that moves bytes to agents (script bundles).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { authPayload, verifyPayload } from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import { ErrorSchema, publicRoute } from '../../http.js';

/** What the hub received from an agent: its request body, to be consumed by the caller of `expect`. */
export interface IncomingTransfer {
  body: Readable;
  /** exact byte count the agent announced (and Content-Length) */
  size: number;
  /** the file's permission bits, when the agent sent them */
  mode: number | undefined;
}

export interface Offer {
  transferId: string;
  /** resolves when the agent has received every byte (sha256 as the hub relayed it); rejects on failure or expiry */
  done: Promise<{ bytes: number; sha256: string }>;
}

export interface Expectation {
  transferId: string;
  /** resolves when the agent arrives with the data; rejects on expiry or cancel */
  stream: Promise<IncomingTransfer>;
}

interface OfferEntry {
  kind: 'offer';
  agentId: string;
  open: () => Readable;
  size: number;
  timer: NodeJS.Timeout;
  resolve: (r: { bytes: number; sha256: string }) => void;
  reject: (e: Error) => void;
}
interface ExpectEntry {
  kind: 'expect';
  agentId: string;
  maxBytes: number;
  timer: NodeJS.Timeout;
  resolve: (t: IncomingTransfer) => void;
  reject: (e: Error) => void;
}

export class TransferError extends Error {
  constructor(
    readonly code: 'expired' | 'cancelled' | 'incomplete',
    message: string,
  ) {
    super(message);
  }
}

/** Counts and hashes what passes; fails when the count is not exactly `size` at the end. */
export class RelayHasher extends Transform {
  private readonly h = createHash('sha256');
  bytes = 0;
  sha256 = '';
  constructor(private readonly size?: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.size !== undefined && this.bytes > this.size) return cb(new TransferError('incomplete', `more than the announced ${this.size} bytes`));
    this.h.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.size !== undefined && this.bytes !== this.size) return cb(new TransferError('incomplete', `ended after ${this.bytes} of ${this.size} bytes`));
    this.sha256 = this.h.digest('hex');
    cb();
  }
}

export class TransferRegistry {
  private readonly entries = new Map<string, OfferEntry | ExpectEntry>();
  private readonly arriveMs: number;

  constructor(
    private readonly hosts: HostStore,
    private readonly log: Logger,
    opts: { arriveTimeoutMs?: number } = {},
  ) {
    this.arriveMs = opts.arriveTimeoutMs ?? 30_000;
  }

  get pending(): number {
    return this.entries.size;
  }

  /**
   * Hub → agent: the agent GETs the bytes `open()` returns (called once, when the agent arrives;
   * never if it does not). `size` is exact: a source that ends short or long fails the transfer.
   */
  offer(agentId: string, open: () => Readable, size: number): Offer {
    const transferId = randomBytes(32).toString('base64url');
    let resolve!: OfferEntry['resolve'];
    let reject!: OfferEntry['reject'];
    const done = new Promise<{ bytes: number; sha256: string }>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // a caller may rely on the agent's answer instead
    const timer = this.expiry(transferId);
    this.entries.set(transferId, { kind: 'offer', agentId, open, size, timer, resolve, reject });
    return { transferId, done };
  }

  /** Agent → hub: the agent PUTs the bytes; `stream` resolves with its request body when it does. */
  expect(agentId: string, opts: { maxBytes?: number } = {}): Expectation {
    const transferId = randomBytes(32).toString('base64url');
    let resolve!: ExpectEntry['resolve'];
    let reject!: ExpectEntry['reject'];
    const stream = new Promise<IncomingTransfer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    stream.catch(() => {});
    const timer = this.expiry(transferId);
    this.entries.set(transferId, { kind: 'expect', agentId, maxBytes: opts.maxBytes ?? Number.MAX_SAFE_INTEGER, timer, resolve, reject });
    return { transferId, stream };
  }

  /** Withdraws a transfer the agent has not arrived for (it answered with an error, say). */
  cancel(transferId: string, reason = 'cancelled'): void {
    const e = this.entries.get(transferId);
    if (!e) return;
    this.entries.delete(transferId);
    clearTimeout(e.timer);
    e.reject(new TransferError('cancelled', reason));
  }

  /** Fails every transfer not yet collected (hub shutting down). */
  close(): void {
    for (const id of [...this.entries.keys()]) this.cancel(id, 'hub stopping');
  }

  private expiry(transferId: string): NodeJS.Timeout {
    const t = setTimeout(() => {
      const e = this.entries.get(transferId);
      if (!e) return;
      this.entries.delete(transferId);
      this.log.warn({ agentId: e.agentId, kind: e.kind }, 'transfer expired: the agent did not arrive');
      e.reject(new TransferError('expired', `the agent did not collect the transfer within ${Math.round(this.arriveMs / 1000)} s`));
    }, this.arriveMs);
    t.unref();
    return t;
  }

  /**
   * Checks the agent's signature over the transfer id against the host's stored key and the
   * binding, then takes the entry (single use). Answers 404/403 itself and returns undefined.
   */
  private async claim(req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, kind: 'offer' | 'expect'): Promise<OfferEntry | ExpectEntry | undefined> {
    const id = req.params.id;
    const agentId = String(req.headers['x-tether-agent'] ?? '');
    const signature = String(req.headers['x-tether-signature'] ?? '');
    const e = this.entries.get(id);
    if (!e || e.kind !== kind) {
      await reply.code(404).send({ error: 'not_found', message: 'no such transfer (expired, already used, or never offered)' });
      return undefined;
    }
    const host = agentId === e.agentId ? await this.hosts.get(agentId) : undefined;
    if (!host || host.revokedAt !== null || !verifyPayload(host.publicKey, authPayload(`transfer:${id}`, agentId), signature)) {
      this.log.warn({ agentId: agentId.slice(0, 64), ip: req.ip }, 'transfer refused: wrong agent or bad signature');
      await reply.code(403).send({ error: 'forbidden', message: 'this transfer belongs to another agent, or the signature is not valid' });
      return undefined;
    }
    // Taken only now: a bad request cannot burn another agent's transfer.
    if (this.entries.get(id) !== e) {
      await reply.code(404).send({ error: 'not_found', message: 'no such transfer (already used)' });
      return undefined;
    }
    this.entries.delete(id);
    clearTimeout(e.timer);
    return e;
  }

  /** `GET|PUT /agent/transfers/:id`: outside /api (no user session); the agent's signature is the credential. */
  routes() {
    return async (app: FastifyInstance): Promise<void> => {
      // The body of a PUT is the transfer itself: handed over as a stream, never parsed or buffered.
      app.removeAllContentTypeParsers();
      app.addContentTypeParser('*', (_req, _payload, done) => done(null));
      const r = app.withTypeProvider<TypeBoxTypeProvider>();
      const params = Type.Object({ id: Type.String({ minLength: 32, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) });
      const headers = Type.Object({ 'x-tether-agent': Type.String({ maxLength: 64 }), 'x-tether-signature': Type.String({ maxLength: 128 }) });
      const errorResponses = { 400: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 413: ErrorSchema };

      r.get(
        '/agent/transfers/:id',
        { ...publicRoute('agents authenticate transfers by signature over the single-use id'), exposeHeadRoute: false, schema: { tags: ['agent'], summary: 'Agent collects the bytes of a transfer the hub offered', params, headers, response: errorResponses } },
        async (req, reply) => {
          const e = (await this.claim(req, reply, 'offer')) as OfferEntry | undefined;
          if (!e) return reply;
          let src: Readable;
          try {
            src = e.open();
          } catch (err) {
            e.reject(err as Error);
            return reply.code(404).send({ error: 'not_found', message: 'the transfer source is gone' });
          }
          const relay = new RelayHasher(e.size);
          reply.hijack();
          reply.raw.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(e.size), 'cache-control': 'no-store' });
          pipeline(src, relay, reply.raw).then(
            () => e.resolve({ bytes: relay.bytes, sha256: relay.sha256 }),
            (err: Error) => {
              src.destroy();
              reply.raw.destroy();
              e.reject(err);
            },
          );
          return reply;
        },
      );

      r.put(
        '/agent/transfers/:id',
        {
          ...publicRoute('agents authenticate transfers by signature over the single-use id'),
          schema: {
            tags: ['agent'],
            summary: 'Agent delivers the bytes of a transfer the hub expects (raw body, x-tether-size bytes)',
            params,
            headers: Type.Object({ ...headers.properties, 'x-tether-size': Type.String({ pattern: '^[0-9]{1,16}$' }), 'x-tether-mode': Type.Optional(Type.String({ pattern: '^[0-7]{1,4}$' })) }),
            response: { 200: Type.Object({ ok: Type.Boolean(), bytes: Type.Integer() }), ...errorResponses },
          },
        },
        async (req, reply) => {
          const size = Number(req.headers['x-tether-size']);
          const len = req.headers['content-length'];
          if (len === undefined || Number(len) !== size) return reply.code(400).send({ error: 'bad_request', message: 'Content-Length must be given and equal x-tether-size' });
          const e = (await this.claim(req, reply, 'expect')) as ExpectEntry | undefined;
          if (!e) return reply;
          if (size > e.maxBytes) {
            e.reject(new TransferError('incomplete', `the file has ${size} bytes, more than the ${e.maxBytes} allowed`));
            return reply.code(413).header('connection', 'close').send({ error: 'too_large', message: `more than ${e.maxBytes} bytes` });
          }
          const body = req.raw;
          const mode = req.headers['x-tether-mode'] ? parseInt(String(req.headers['x-tether-mode']), 8) : undefined;
          // Answered once the consumer has read everything: the agent reports its own sha256 only after this.
          const ended = new Promise<boolean>((res) => {
            body.once('end', () => res(true));
            body.once('close', () => res(body.readableEnded));
          });
          e.resolve({ body, size, mode });
          if (await ended) return { ok: true, bytes: size };
          return reply.code(400).header('connection', 'close').send({ error: 'incomplete', message: 'the transfer was abandoned before it ended' });
        },
      );
    };
  }
}
