/**
 * Channel types: how a notification leaves the hub. Each sender either resolves (delivered, with
 * the receiver's HTTP status where there is one) or throws; retries and the log are the
 * notifier's business. Secrets (URLs carrying tokens, keys, passwords, header values) live in
 * `channel.secret` and are never shown or logged: error texts are scrubbed of them.
 */
import { createHmac } from 'node:crypto';
import nodemailer from 'nodemailer';
import { SEVERITIES, type Severity } from './model.js';
import type { Channel, ChannelType } from './store.js';

export const CHANNEL_TYPES: readonly ChannelType[] = ['webhook', 'slack', 'email', 'dingtalk', 'feishu'];

export interface OutMessage {
  kind: 'firing' | 'resolved' | 'test';
  deliveryId: string;
  title: string;
  text: string;
  markdown: string;
  html: string;
  /** the webhook body: the alerts as data */
  payload: Record<string, unknown>;
}

export interface SendResult {
  status?: number;
}

/** What each type keeps where, for validation and for reads (`set: true`). */
const SECRET_FIELDS: Record<ChannelType, string[]> = {
  webhook: ['hmacKey', 'headers'],
  slack: ['url'],
  email: ['password'],
  dingtalk: ['url', 'signSecret'],
  feishu: ['url', 'signSecret'],
};

const isHttpUrl = (u: unknown): boolean => {
  if (typeof u !== 'string' || u.length > 2048) return false;
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:';
  } catch {
    return false;
  }
};
const isStr = (v: unknown, max = 500): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

/** Problems with a channel's settings, as sentences; empty when it is usable. */
export function validateChannel(type: ChannelType, config: Record<string, unknown>, secret: Record<string, unknown>): string[] {
  const errs: string[] = [];
  for (const k of Object.keys(secret)) if (!SECRET_FIELDS[type].includes(k)) errs.push(`secret.${k} is not a ${type} setting (secret fields: ${SECRET_FIELDS[type].join(', ')})`);
  if (config.minSeverity !== undefined && !SEVERITIES.includes(config.minSeverity as Severity)) errs.push('config.minSeverity must be info, warning or critical');
  const allowed: Record<ChannelType, string[]> = {
    webhook: ['url', 'minSeverity'],
    slack: ['minSeverity'],
    email: ['host', 'port', 'tls', 'from', 'to', 'username', 'tlsVerify', 'minSeverity'],
    dingtalk: ['minSeverity'],
    feishu: ['minSeverity'],
  };
  for (const k of Object.keys(config)) if (!allowed[type].includes(k)) errs.push(`config.${k} is not a ${type} setting${SECRET_FIELDS[type].includes(k) ? ` (it is secret: put it under "secret")` : ''}`);
  switch (type) {
    case 'webhook':
      if (!isHttpUrl(config.url)) errs.push('config.url must be an http(s) URL');
      if (secret.hmacKey !== undefined && !isStr(secret.hmacKey, 1024)) errs.push('secret.hmacKey must be a non-empty string');
      if (secret.headers !== undefined) {
        const h = secret.headers;
        if (!h || typeof h !== 'object' || Array.isArray(h)) errs.push('secret.headers must be an object of header names to values');
        else
          for (const [k, v] of Object.entries(h)) {
            if (!/^[A-Za-z0-9-]{1,100}$/.test(k) || /^(content-type|content-length|host|x-tether-.*)$/i.test(k)) errs.push(`secret.headers: ${JSON.stringify(k)} cannot be set`);
            if (typeof v !== 'string' || v.length > 4096 || /[\r\n]/.test(v)) errs.push(`secret.headers.${k} must be a one-line string`);
          }
      }
      break;
    case 'slack':
    case 'dingtalk':
    case 'feishu':
      if (!isHttpUrl(secret.url)) errs.push('secret.url must be the robot’s http(s) webhook URL');
      if (secret.signSecret !== undefined && !isStr(secret.signSecret, 1024)) errs.push('secret.signSecret must be a non-empty string');
      break;
    case 'email':
      if (!isStr(config.host, 253)) errs.push('config.host is the SMTP server');
      if (config.port !== undefined && !(Number.isInteger(config.port) && (config.port as number) > 0 && (config.port as number) < 65536)) errs.push('config.port must be a TCP port');
      if (config.tls !== undefined && !['tls', 'starttls', 'none'].includes(config.tls as string)) errs.push('config.tls must be tls (implicit, port 465), starttls (required) or none');
      if (!isStr(config.from, 320) || !EMAIL.test((config.from as string).replace(/^.*<(.+)>\s*$/, '$1'))) errs.push('config.from must be an email address');
      if (!Array.isArray(config.to) || !config.to.length || config.to.length > 100 || !config.to.every((t) => typeof t === 'string' && EMAIL.test(t))) errs.push('config.to must be a list of email addresses');
      if (config.username !== undefined && !isStr(config.username, 320)) errs.push('config.username must be a string');
      if (config.tlsVerify !== undefined && typeof config.tlsVerify !== 'boolean') errs.push('config.tlsVerify must be true or false');
      if (secret.password !== undefined && !isStr(secret.password, 1024)) errs.push('secret.password must be a non-empty string');
      break;
  }
  return errs;
}

/** The secret part as reads show it: which fields are set, never their values (header names are shown). */
export function secretView(c: Channel): Record<string, { set: boolean; names?: string[] }> {
  const out: Record<string, { set: boolean; names?: string[] }> = {};
  for (const f of SECRET_FIELDS[c.type]) {
    const v = c.secret[f];
    out[f] = { set: v !== undefined && v !== '' };
    if (f === 'headers' && v && typeof v === 'object') out[f].names = Object.keys(v);
  }
  return out;
}

/** Every secret string of a channel, to scrub from error texts before they are logged or stored. */
export function secretStrings(c: Channel): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string' && v.length >= 4) out.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(c.secret);
  // A robot URL's path and query carry its token: scrub them even where an error shows them cut or encoded.
  for (const s of [...out]) {
    try {
      const u = new URL(s);
      if (u.pathname.length > 1) out.push(u.pathname);
      if (u.search) out.push(u.search.slice(1));
    } catch {
      /* not a URL */
    }
  }
  return out;
}

export function scrub(text: string, secrets: string[]): string {
  let t = text;
  for (const s of secrets) t = t.split(s).join('[secret]');
  return t;
}

async function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'tether-hub', ...headers }, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  const text = (await res.text()).slice(0, 2000);
  if (res.status < 200 || res.status >= 300) throw Object.assign(new Error(`receiver answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`), { status: res.status });
  return { status: res.status, text };
}

/** DingTalk robot signing: base64(HMAC-SHA256(key=secret, `${ms}\n${secret}`)), URL-encoded, with the timestamp in the query. */
export function dingtalkSignedUrl(url: string, secret: string, nowMs: number): string {
  const sign = createHmac('sha256', secret).update(`${nowMs}\n${secret}`).digest('base64');
  return `${url}${url.includes('?') ? '&' : '?'}timestamp=${nowMs}&sign=${encodeURIComponent(sign)}`;
}

/** Feishu robot signing: base64(HMAC-SHA256(key=`${seconds}\n${secret}`, empty message)), sent in the body. */
export function feishuSign(secret: string, nowSec: number): string {
  return createHmac('sha256', `${nowSec}\n${secret}`).update('').digest('base64');
}

/** The webhook signature header value: `sha256=` + hex HMAC-SHA256 of the exact body bytes. */
export function webhookSignature(key: string, body: string): string {
  return 'sha256=' + createHmac('sha256', key).update(body).digest('hex');
}

function checkRobotAnswer(text: string, field: 'errcode' | 'code'): void {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return;
  }
  const code = j[field] ?? j.StatusCode;
  if (code !== undefined && code !== 0) throw new Error(`robot refused the message: ${field} ${String(code)} ${String(j.errmsg ?? j.msg ?? j.StatusMessage ?? '')}`.trim());
}

export async function send(c: Channel, m: OutMessage, timeoutMs: number, now: number): Promise<SendResult> {
  const s = c.secret as Record<string, string | Record<string, string> | undefined>;
  switch (c.type) {
    case 'webhook': {
      const body = JSON.stringify(m.payload);
      const headers: Record<string, string> = { ...((s.headers as Record<string, string> | undefined) ?? {}), 'x-tether-event': m.kind, 'x-tether-delivery': m.deliveryId };
      if (typeof s.hmacKey === 'string') headers['x-tether-signature-256'] = webhookSignature(s.hmacKey, body);
      return { status: (await post(c.config.url as string, body, headers, timeoutMs)).status };
    }
    case 'slack': {
      const r = await post(s.url as string, JSON.stringify({ text: m.markdown.replace(/\*\*/g, '*') }), {}, timeoutMs);
      return { status: r.status };
    }
    case 'dingtalk': {
      const url = typeof s.signSecret === 'string' ? dingtalkSignedUrl(s.url as string, s.signSecret, now) : (s.url as string);
      const r = await post(url, JSON.stringify({ msgtype: 'markdown', markdown: { title: m.title, text: m.markdown } }), {}, timeoutMs);
      checkRobotAnswer(r.text, 'errcode');
      return { status: r.status };
    }
    case 'feishu': {
      const ts = Math.floor(now / 1000);
      const body = { ...(typeof s.signSecret === 'string' ? { timestamp: String(ts), sign: feishuSign(s.signSecret, ts) } : {}), msg_type: 'text', content: { text: `${m.title}\n${m.text}` } };
      const r = await post(s.url as string, JSON.stringify(body), {}, timeoutMs);
      checkRobotAnswer(r.text, 'code');
      return { status: r.status };
    }
    case 'email': {
      const cfg = c.config as { host: string; port?: number; tls?: 'tls' | 'starttls' | 'none'; from: string; to: string[]; username?: string; tlsVerify?: boolean };
      const tls = cfg.tls ?? 'starttls';
      const transport = nodemailer.createTransport({
        host: cfg.host,
        port: cfg.port ?? (tls === 'tls' ? 465 : 587),
        secure: tls === 'tls',
        requireTLS: tls === 'starttls',
        ignoreTLS: tls === 'none',
        ...(cfg.username ? { auth: { user: cfg.username, pass: (s.password as string | undefined) ?? '' } } : {}),
        tls: { rejectUnauthorized: cfg.tlsVerify !== false },
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      });
      try {
        await transport.sendMail({ from: cfg.from, to: cfg.to, subject: m.title, text: m.text, html: m.html, headers: { 'X-Tether-Delivery': m.deliveryId, 'X-Tether-Event': m.kind } });
      } finally {
        transport.close();
      }
      return {};
    }
  }
}
