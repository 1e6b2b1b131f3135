/**
 * The names the hub answers to (the Host header), against DNS rebinding: a page on
 * `http://evil.example:8080` whose name the attacker then points at the hub's address reaches the
 * hub from the victim's browser as a same-origin page, able to read what it answers (the console,
 * `/metrics` when it is open, login attempts from the victim's network). The browser still sends
 * `Host: evil.example`, so a hub that knows its own names refuses it: `421 host_not_allowed`.
 *
 * Accepted:
 *  - a Host that is an IP address: rebinding needs a name the attacker controls, and a page whose
 *    origin is an address can only be served by that address;
 *  - `localhost` and `*.localhost` (browsers resolve them to loopback themselves), the machine's
 *    hostname, a listen address given as a name;
 *  - the names in the hub's TLS certificate (its subjectAltName), the hosts of `allowed_origins`
 *    and of `public_url` (passed in with the origins);
 *  - `allowed_hosts`: names, `*.example.com` for any name under it, or `*` for any (behind a proxy
 *    that checks Host itself).
 * Agents' own routes (`/api/v1/agent/ws`, `/agent/transfers/…`: signed, never a browser's) and
 * `/api/v1/health` (probes send whatever name they were configured with) answer whatever the Host.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface AllowedHostsOptions {
  /** the allowed_hosts setting */
  allowed: string[];
  /** the listen address's host part */
  listenHost: string;
  /** allowed_origins (scheme://host:port) */
  origins: string[];
  /** the hub's TLS certificate (PEM), whose DNS names are its own */
  certPem?: string;
}

const EXEMPT = ['/api/v1/agent/ws', '/agent/transfers/', '/api/v1/health'];

/** One allowed_hosts entry as configured: a name, `*.name` or `*`; lowercased. */
export function parseAllowedHost(raw: unknown): string {
  const s = typeof raw === 'string' ? raw.trim().toLowerCase().replace(/\.$/, '') : '';
  if (s === '*' || isIP(s)) return s;
  if (s.length > 0 && s.length <= 253 && /^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(s)) return s;
  throw new Error(`expected a host name (hub.example.com), *.example.com or *, got ${JSON.stringify(raw)}`);
}

/** The host part of a Host header, lowercased, without port, brackets or a trailing dot. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return (colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h).replace(/\.$/, '');
}

function certNames(pem: string | undefined): string[] {
  if (!pem) return [];
  try {
    const san = new X509Certificate(pem).subjectAltName ?? '';
    return san
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4).toLowerCase());
  } catch {
    return [];
  }
}

/** The rule as a predicate (for the hook, and to say at start which names are accepted). */
export function hostMatcher(o: AllowedHostsOptions): { allows(host: string): boolean; names: string[] } {
  const names = new Set<string>(['localhost', hostname().toLowerCase(), ...o.allowed, ...certNames(o.certPem)]);
  if (o.listenHost && !isIP(o.listenHost)) names.add(o.listenHost.toLowerCase());
  for (const origin of o.origins) {
    try {
      names.add(hostOf(new URL(origin).host));
    } catch {
      /* origins are validated by the config */
    }
  }
  const any = names.has('*');
  const suffixes = [...names].filter((n) => n.startsWith('*.')).map((n) => n.slice(1));
  return {
    names: [...names].sort(),
    allows(host) {
      if (any || host === '' || isIP(host) || names.has(host)) return true;
      if (host.endsWith('.localhost')) return true;
      return suffixes.some((s) => host.endsWith(s) && host.length > s.length);
    },
  };
}

/** An `onRequest` hook, added before authentication: a request for a name that is not the hub's gets 421. */
export function allowedHostsHook(o: AllowedHostsOptions) {
  const m = hostMatcher(o);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.host;
    if (header === undefined) return; // HTTP/1.0 clients: no browser sends a request without one
    if (EXEMPT.some((p) => req.url === p || (p.endsWith('/') ? req.url.startsWith(p) : req.url.startsWith(p + '?')))) return;
    const host = hostOf(header);
    if (m.allows(host)) return;
    await reply.code(421).send({
      error: 'host_not_allowed',
      message: `this hub does not answer to the name ${JSON.stringify(host.slice(0, 253))} (the request's Host): if that is one of its names, add it to allowed_hosts (TETHER_ALLOWED_HOSTS)`,
    });
  };
}
