/**
 * A protocol-speaking client without the agent's good manners: it can enroll and connect like a
 * real agent, or send whatever a test needs (garbage, replays, oversized frames). The benchmark
 * uses it as a simulated agent.
 */
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import {
  PROTOCOL_VERSION,
  authPayload,
  decodeFrame,
  encodeFrame,
  generateAgentKey,
  newNonce,
  signPayload,
  type BodyOf,
  type Capability,
  type HostFacts,
  type Message,
} from '@tether/protocol';

/** Facts of a simulated host (for simulated agents and stores under test). */
export function simFacts(hostname: string, ip = '10.0.0.1', mac = '02:00:00:00:00:01'): HostFacts {
  return {
    hostname,
    os: { name: 'Debian GNU/Linux', id: 'debian', version: '12', pretty: 'Debian GNU/Linux 12 (bookworm)' },
    platform: 'linux',
    kernel: '6.1.0',
    arch: 'x64',
    cpu: { model: 'Simulated CPU', physicalCores: 2, logicalCores: 4 },
    memoryBytes: 8 * 1024 ** 3,
    ips: [ip],
    macs: [mac],
  };
}

export class RawAgent {
  readonly ws: WebSocket;
  readonly received: Message[] = [];
  /** keep received messages for next(); a benchmark turns this off and uses onMessage */
  keep = true;
  onMessage: ((m: Message) => void) | undefined;
  nonce = '';
  closeCode: number | undefined;
  closeReason = '';
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;

  constructor(hubUrl: string, opts: { maxPayload?: number } = {}) {
    this.ws = new WebSocket(hubUrl.replace(/^http/, 'ws') + '/api/v1/agent/ws', { perMessageDeflate: false, maxPayload: opts.maxPayload ?? 64 * 1024 * 1024 });
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
    });
    this.closed = new Promise((res) =>
      this.ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        res();
        this.notify();
      }),
    );
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      const d = decodeFrame(data as Buffer);
      if (d.ok) {
        if (d.msg.type === 'challenge') this.nonce = (d.msg.body as BodyOf<'challenge'>).nonce;
        this.onMessage?.(d.msg);
        if (!this.keep) return;
        this.received.push(d.msg);
        this.notify();
      }
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async next<T extends Message['type']>(type: T, timeoutMs = 5000): Promise<Message<T>> {
    return this.nextOf([type], timeoutMs) as Promise<Message<T>>;
  }

  /** The first received message of any of these types. */
  async nextOf(types: Message['type'][], timeoutMs = 5000): Promise<Message> {
    const type = types.join('|');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find((x) => types.includes(x.type));
      if (m) {
        this.received.splice(this.received.indexOf(m), 1);
        return m;
      }
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode} ${this.closeReason}) before ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  hello(body: BodyOf<'hello'>): void {
    this.ws.send(encodeFrame('hello', body));
  }

  close(): void {
    this.ws.close();
  }
}

export interface SimIdentity {
  privateKeyPem: string;
  publicKey: string;
  agentId?: string;
}

export function newSimIdentity(): SimIdentity {
  return generateAgentKey();
}

/** Connects like a real agent: enroll when there is no id yet, else sign in with the key. Resolves on welcome. */
export async function simConnect(hubUrl: string, id: SimIdentity, opts: { token?: string; facts: HostFacts; capabilities?: Capability[] }): Promise<RawAgent> {
  const a = new RawAgent(hubUrl);
  await a.opened;
  const ch = await a.next('challenge', 60_000);
  const subject = id.agentId ?? id.publicKey;
  a.hello({
    protocol: PROTOCOL_VERSION,
    agentVersion: 'sim',
    signature: signPayload(id.privateKeyPem, authPayload(ch.body.nonce, subject)),
    facts: opts.facts,
    capabilities: opts.capabilities ?? ['metrics'],
    ...(id.agentId ? { agentId: id.agentId } : { enrollToken: opts.token!, publicKey: id.publicKey }),
  });
  const m = await a.nextOf(['welcome', 'refused'], 60_000);
  if (m.type === 'refused') {
    const r = m.body as BodyOf<'refused'>;
    a.close();
    throw new Error(`refused: ${r.code} ${r.reason}`);
  }
  id.agentId = (m.body as BodyOf<'welcome'>).agentId;
  return a;
}

/**
 * A small usage report that passes the hub's schema, stamped `ts`, whose `load1` series is `load1`.
 * Tests of history give every sample its own value, so a sample counted twice or lost shows in the
 * rollups' averages.
 */
export function simUsage(ts: number, load1: number): BodyOf<'report.usage'> {
  return {
    ts,
    load: { one: load1, five: 0, fifteen: 0 },
    memory: { totalBytes: 8 * 1024 ** 3, usedBytes: 2 * 1024 ** 3, freeBytes: 5 * 1024 ** 3, availableBytes: 6 * 1024 ** 3, buffersBytes: 0, cachedBytes: 0, slabBytes: 0, usedPercent: 25 },
    swap: { totalBytes: 0, usedBytes: 0, freeBytes: 0 },
    filesystems: [],
    interfaces: [],
  };
}

/**
 * A bare hub: a WebSocket server that speaks just enough of the protocol to welcome any agent, and
 * records every frame the agent sends. Nothing filters what a test sends through it, so whatever
 * the agent refuses, the agent refused (the capability lock, replies to requests it cannot read).
 */
export async function bareHub(hubVersion = 'bare'): Promise<{ url: string; received: Message[]; send(frame: string): void; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/api/v1/agent/ws' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const received: Message[] = [];
  let sock: WebSocket | undefined;
  wss.on('connection', (ws) => {
    sock = ws;
    ws.send(encodeFrame('challenge', { nonce: newNonce(), protocol: PROTOCOL_VERSION, hubVersion }));
    ws.on('message', (raw) => {
      const d = decodeFrame(raw as Buffer);
      if (!d.ok) return;
      received.push(d.msg);
      if (d.msg.type === 'hello') ws.send(encodeFrame('welcome', { agentId: 'agent-1', heartbeatSec: 5, hubVersion }, { re: d.msg.id }));
    });
  });
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    received,
    send: (frame) => sock!.send(frame),
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}
