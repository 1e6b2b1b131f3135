/**
 * What every manager's routes share: the host (exists, in scope, online), one request to its agent
 * with the agent's failure mapped to an HTTP status, and follow streams relayed to an HTTP client
 * with flow control (credit granted back to the agent as the client drains).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import { STREAM_WINDOW, type BodyOf, type ManagerErrorCode, type MessageType } from '@tether/protocol';
import type { Host, HostStore } from '../hosts/store.js';
import { AgentTimeout, AgentUnavailable, type AgentLink, type AgentConnection, type AgentReach } from '../agents/link.js';
import { ErrorSchema, hostAllowed } from '../../http.js';

export interface ManagersDeps {
  hosts: HostStore;
  /** this hub's own agents: follow streams are relayed from these */
  link: AgentLink;
  /** any agent of the cluster (the link itself on a hub alone): requests */
  reach: AgentReach;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Agent failures → HTTP: refusals are 403; a host without the thing (no Docker, no systemd) is 409 `unavailable`. */
export const STATUS: Record<ManagerErrorCode, number> = {
  refused: 403,
  read_only: 403,
  permission: 403,
  unavailable: 409,
  not_found: 404,
  bad_request: 400,
  conflict: 409,
  timeout: 504,
  failed: 502,
  internal: 500,
};

export const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const Ok = Type.Object({ ok: Type.Boolean() });
export const errs = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorSchema]));
export const COMMON = [400, 401, 403, 404, 409, 500, 502, 504];

type Answer = { ok: boolean; error?: { code: ManagerErrorCode; message: string } };

/** Requests and streams for the manager routes. */
export class Managers {
  private readonly streams = new Map<string, HubStream>();

  constructor(readonly d: ManagersDeps) {
    d.link.on('message', (_conn: AgentConnection, msg) => {
      if (msg.type === 'stream.data' || msg.type === 'stream.end') {
        const b = msg.body as BodyOf<'stream.data'> | BodyOf<'stream.end'>;
        const s = this.streams.get(b.streamId);
        if (!s || s.agentId !== _conn.agentId) return;
        if (msg.type === 'stream.data') s.data(b as BodyOf<'stream.data'>);
        else s.end(b as BodyOf<'stream.end'>);
      }
    });
    d.link.on('offline', (agentId) => {
      for (const s of this.streams.values()) if (s.agentId === agentId) s.end({ streamId: s.id, error: { code: 'failed', message: 'the host went offline' } });
    });
  }

  /** The host, if it exists, is in the caller's scope, and is online. */
  async host(req: FastifyRequest<{ Params: { id: string } }>): Promise<Host> {
    const h = await this.d.hosts.get(req.params.id);
    if (!h) throw new HttpError(404, 'not_found', 'no such host');
    if (!hostAllowed(req, h.labels)) throw new HttpError(404, 'not_found', 'no such host');
    if (h.revokedAt !== null) throw new HttpError(409, 'revoked', `host ${h.hostname} is revoked`);
    if (!this.d.reach.isOnline(h.id)) throw new HttpError(409, 'agent_offline', `host ${h.hostname} is offline`);
    return h;
  }

  /** One request to the agent; a failure it reports becomes an HttpError with the mapped status. */
  async ask<T extends MessageType>(h: Host, type: T, body: BodyOf<T>, timeoutMs = 60_000): Promise<Answer & Record<string, unknown>> {
    let res: Answer;
    try {
      const m = await this.d.reach.request(h.id, type, body, timeoutMs);
      if (m.type !== type.replace('.request', '.response')) throw new HttpError(502, 'bad_agent_answer', `the agent answered ${m.type}${m.type === 'error' ? `: ${(m.body as { message?: string }).message}` : ''}`);
      res = m.body as Answer;
    } catch (err) {
      if (err instanceof AgentUnavailable) throw new HttpError(409, 'agent_offline', `host ${h.hostname} is offline (or went away before answering)`);
      if (err instanceof AgentTimeout) throw new HttpError(504, 'agent_timeout', err.message);
      throw err;
    }
    if (!res.ok) {
      const code = res.error?.code ?? 'internal';
      throw new HttpError(STATUS[code] ?? 502, code, res.error?.message ?? 'the agent reported a failure without a reason');
    }
    return res as Answer & Record<string, unknown>;
  }

  /**
   * Wraps a handler: HttpErrors become `{error, message}` answers (5xx included: they carry the
   * agent's words). Mutations log who did what on which host.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handle<R>(fn: (req: R, reply: FastifyReply) => Promise<unknown>): any {
    return async (req: R, reply: FastifyReply) => {
      try {
        return await fn(req, reply);
      } catch (err) {
        if (err instanceof HttpError) return reply.code(err.status).send({ error: err.code, message: err.message });
        throw err;
      }
    };
  }

  /**
   * Follows: registers a stream, asks the agent to start it, and relays what comes to the HTTP
   * response as text. Credit goes back to the agent as the response drains, so a slow client slows
   * the source (the agent pauses the log reader) instead of filling memory.
   */
  async follow<T extends MessageType>(req: FastifyRequest, reply: FastifyReply, h: Host, type: T, body: (streamId: string) => BodyOf<T>, opts: { ndjson?: boolean } = {}): Promise<FastifyReply> {
    if (!this.d.link.isOnline(h.id)) {
      // Not relayed between hubs yet (issue 23's next step): the request goes to the hub holding the agent.
      throw new HttpError(409, 'held_elsewhere', `host ${h.hostname} is connected to another hub of the cluster; follow streams are served by that hub for now`);
    }
    const id = randomBytes(18).toString('base64url');
    const s = new HubStream(id, h.id, this.d.link, Boolean(opts.ndjson), () => this.streams.delete(id));
    this.streams.set(id, s);
    try {
      await this.ask(h, type, body(id));
    } catch (err) {
      this.streams.delete(id);
      throw err;
    }
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': opts.ndjson ? 'application/x-ndjson' : 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    s.attach(reply.raw);
    req.raw.on('close', () => s.cancel());
    return reply;
  }
}

/** The hub's end of one follow stream. */
class HubStream {
  private out: import('node:http').ServerResponse | undefined;
  private early: BodyOf<'stream.data'>[] = [];
  private owed = 0;
  private flushQueued = false;
  private done = false;

  constructor(
    readonly id: string,
    readonly agentId: string,
    private readonly link: AgentLink,
    private readonly ndjson: boolean,
    private readonly forget: () => void,
  ) {}

  attach(res: import('node:http').ServerResponse): void {
    this.out = res;
    const early = this.early;
    this.early = [];
    for (const d of early) this.data(d);
    if (this.done) res.end();
  }

  data(d: BodyOf<'stream.data'>): void {
    if (!this.out) {
      this.early.push(d);
      return;
    }
    const text = this.ndjson ? JSON.stringify({ stream: d.stream ?? 'stdout', data: d.data }) + '\n' : d.data;
    const bytes = Buffer.byteLength(d.data);
    if (this.out.write(text)) this.grant(bytes);
    else this.out.once('drain', () => this.grant(bytes));
  }

  /** Credit is batched: one frame per turn of the event loop, not one per chunk. */
  private grant(bytes: number): void {
    this.owed += bytes;
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      if (this.done || this.owed <= 0) return;
      const n = Math.min(this.owed, STREAM_WINDOW);
      this.owed -= n;
      this.link.get(this.agentId)?.send('stream.credit', { streamId: this.id, bytes: n });
    });
  }

  end(e: BodyOf<'stream.end'>): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    if (!this.out) return;
    if (e.error) this.out.write(this.ndjson ? JSON.stringify({ error: e.error }) + '\n' : `\n[tether: ${e.error.message}]\n`);
    this.out.end();
  }

  /** The client went away: stop the source. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    this.link.get(this.agentId)?.send('stream.cancel', { streamId: this.id });
  }
}

/** `{ key: value }` when the value is defined, `{}` otherwise (the protocol's optional fields must be absent, not undefined). */
export function opt<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}
