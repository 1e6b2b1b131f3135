/**
 * Serves the web console (packages/web, built by `npm run build`) from the hub's own origin:
 * index.html at `/` and the hashed bundles under `/assets/`. Files are read once at start and kept
 * in memory with a gzip copy (a few hundred KiB). The console's API calls need a login; its files
 * do not, like any login page.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { publicRoute } from './http.js';

/** packages/hub/dist/src/console.js → packages/web/dist; TETHER_CONSOLE_DIR overrides it. */
export function consoleDir(): string {
  return process.env.TETHER_CONSOLE_DIR ?? resolve(fileURLToPath(import.meta.url), '../../../../web/dist');
}

export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

interface Asset {
  type: string;
  body: Buffer;
  gzip?: Buffer;
}

function load(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${name}/`);
      else {
        const body = readFileSync(p);
        const type = TYPES[extname(name)] ?? 'application/octet-stream';
        const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 1024;
        out.set(prefix + name, { type, body, ...(compressible ? { gzip: gzipSync(body, { level: 9 }) } : {}) });
      }
    }
  };
  walk(dir, '');
  return out;
}

const MISSING_HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tether</title></head>
<body style="font:15px system-ui;margin:3rem"><h1>Tether</h1><p>The web console is not built. Run <code>npm run build</code>
(it builds packages/web), then restart the hub. The API is up: <a href="/api/docs">/api/docs</a>.</p></body></html>`;

export function consoleRoutes(dir = consoleDir()) {
  const assets = existsSync(join(dir, 'index.html')) ? load(dir) : new Map<string, Asset>();
  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset, cache: string) => {
    reply.type(a.type).header('cache-control', cache).header('vary', 'accept-encoding').header('content-security-policy', CONSOLE_CSP);
    if (a.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(a.gzip);
    return reply.send(a.body);
  };
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/', { ...publicRoute('the console page (its API calls need a login)'), schema: { hide: true } }, async (req, reply) => {
      const index = assets.get('index.html');
      if (!index) return reply.type('text/html; charset=utf-8').header('content-security-policy', CONSOLE_CSP).send(MISSING_HTML);
      return send(req, reply, index, 'no-cache');
    });
    app.get('/assets/*', { ...publicRoute('console assets'), schema: { hide: true } }, async (req, reply) => {
      const name = 'assets/' + (req.params as { '*': string })['*'];
      const a = assets.get(name);
      if (!a) return reply.code(404).send({ error: 'not_found', message: `no asset ${name}` });
      // Bundle names carry a content hash: a new build gets new names.
      return send(req, reply, a, 'public, max-age=31536000, immutable');
    });
  };
}
