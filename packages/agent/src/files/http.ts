/**
 * The agent's HTTP side of a transfer: file contents go over a separate request the agent makes to
 * the hub (`/agent/transfers/<id>`), never over the control WebSocket. A transfer is signed with
 * the agent's key over the single-use transfer id.
 */
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { authPayload, signPayload, TETHER_VERSION } from '@tether/protocol';

// Not `import http from 'node:http'`: on Node 24 that import reads every export of node:http,
// among them its lazy WebSocket getter, which loads undici (its 770 KB of source and everything it
// sets up: about 3 MB of an idle agent's memory) though the agent never uses it.
const http = process.getBuiltinModule('node:http');

export interface TransferCredentials {
  agentId: string;
  privateKeyPem: string;
}

/** Idle limit: a transfer that moves no byte for this long is abandoned. */
export const TRANSFER_IDLE_MS = 60_000;

export function transferHeaders(transferId: string, c: TransferCredentials): Record<string, string> {
  return {
    'x-tether-agent': c.agentId,
    'x-tether-signature': signPayload(c.privateKeyPem, authPayload(`transfer:${transferId}`, c.agentId)),
    'user-agent': `tether-agent/${TETHER_VERSION}`,
  };
}

/**
 * Every request the agent makes to the hub is built here: one place for TLS options (certificate
 * pinning goes here when the link gets it).
 */
export function hubRequestOptions(hubUrl: string, method: 'GET' | 'PUT', path: string, headers: Record<string, string>): { mod: typeof http | typeof https; options: https.RequestOptions } {
  const u = new URL(hubUrl);
  const base = u.pathname.replace(/\/$/, '');
  const secure = u.protocol === 'https:';
  return {
    mod: secure ? https : http,
    options: {
      method,
      protocol: u.protocol,
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (secure ? 443 : 80),
      path: base + path,
      headers,
      agent: false,
      timeout: TRANSFER_IDLE_MS,
    },
  };
}

async function errorOf(res: IncomingMessage): Promise<Error> {
  let text = '';
  for await (const c of res) {
    if (text.length < 2000) text += (c as Buffer).toString('utf8');
  }
  let message = text.slice(0, 500);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    /* not JSON */
  }
  return new Error(`hub answered ${res.statusCode}: ${message}`);
}

/** GET the transfer: resolves with the response stream (the caller consumes it) and the announced size. */
export function openDownload(hubUrl: string, transferId: string, c: TransferCredentials): Promise<{ body: IncomingMessage; size: number | undefined }> {
  const { mod, options } = hubRequestOptions(hubUrl, 'GET', `/agent/transfers/${encodeURIComponent(transferId)}`, transferHeaders(transferId, c));
  return new Promise((resolve, reject) => {
    const req = mod.request(options, (res) => {
      if (res.statusCode !== 200) {
        errorOf(res).then(reject, reject);
        return;
      }
      const len = Number(res.headers['content-length']);
      resolve({ body: res, size: Number.isFinite(len) ? len : undefined });
    });
    req.on('timeout', () => req.destroy(new Error(`no data from the hub for ${TRANSFER_IDLE_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** PUT a stream of exactly `size` bytes to the transfer; resolves when the hub has taken all of it. */
export function upload(hubUrl: string, transferId: string, c: TransferCredentials, body: Readable, size: number, mode: number): Promise<void> {
  const headers = {
    ...transferHeaders(transferId, c),
    'content-type': 'application/octet-stream',
    'content-length': String(size),
    'x-tether-size': String(size),
    'x-tether-mode': mode.toString(8),
  };
  const { mod, options } = hubRequestOptions(hubUrl, 'PUT', `/agent/transfers/${encodeURIComponent(transferId)}`, headers);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      body.destroy();
      req.destroy();
      reject(err);
    };
    const req = mod.request(options, (res) => {
      if (res.statusCode === 200 || res.statusCode === 204) {
        res.resume();
        res.on('end', () => {
          if (settled) return;
          settled = true;
          resolve();
        });
        return;
      }
      errorOf(res).then(fail, fail);
    });
    req.on('timeout', () => fail(new Error(`the hub took no data for ${TRANSFER_IDLE_MS / 1000} s`)));
    req.on('error', fail);
    body.on('error', fail);
    body.pipe(req);
  });
}
