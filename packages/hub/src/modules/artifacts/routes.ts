/**
 * The hub's side of the one-line install (`curl -fsSL HUB/install.sh | sudo sh -s -- --token …`):
 *  - `GET /install.sh`: the installer with the hub's URL and the newest agent version filled in;
 *  - `GET /dl/agent/:file`: an agent artifact or its `.sha256`, immutable;
 *  - `GET /api/v1/agent-artifacts`: what the hub holds, for the console and the CLI.
 * The first two need no login: artifacts are public builds and the installer holds no secret (the
 * enrollment token travels on the installer's command line, not in what the hub serves).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CAPABILITIES } from '@tether/protocol';
import { access, errors, publicRoute } from '../../http.js';
import { ARTIFACT_RE, sha256Line, type ArtifactStore } from './store.js';
import { InstallerError, readInstaller, renderInstaller, requestBaseUrl } from './installer.js';

export interface ArtifactRoutesOptions {
  /** public_url: the base URL hosts reach the hub at; otherwise each request's scheme and Host */
  publicUrl?: string;
  /** where install.sh is looked for, first found wins (see paths.ts) */
  installer: string[];
  /** the pins of a self-issued TLS certificate (tls.ts): put into install.sh and offered to install lines */
  installPin?: { pubkey: string; fingerprint: string };
}

const ArtifactView = Type.Object({
  version: Type.String(),
  arch: Type.Union([Type.Literal('x64'), Type.Literal('arm64')]),
  file: Type.String(),
  size: Type.Integer(),
  sha256: Type.String(),
  url: Type.String({ description: 'where to download it: absolute from public_url or the request, else the path' }),
});

export function artifactRoutes(store: ArtifactStore, o: ArtifactRoutesOptions) {
  const baseUrl = (req: FastifyRequest): string => o.publicUrl ?? requestBaseUrl(req.protocol, req.headers.host);

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get(
      '/install.sh',
      {
        ...publicRoute('the agent installer: holds no secret (the enrollment token is given on its command line)'),
        schema: { tags: ['install'], summary: 'The agent installer (sh), with this hub’s URL and the newest agent version it holds filled in: `curl -fsSL HUB/install.sh | sudo sh -s -- --token TOKEN`' },
      },
      async (req, reply) => {
        try {
          const hub = baseUrl(req);
          const template = await readInstaller(o.installer);
          if (!template) return reply.code(500).send({ error: 'installer_missing', message: `the hub has no installer script (looked for ${o.installer.join(', ')}; TETHER_PACKAGING_DIR names another directory)` });
          const script = renderInstaller(template.text, hub, (await store.latest()) ?? '', o.installPin);
          return reply.type('text/x-shellscript; charset=utf-8').header('cache-control', 'no-store').send(script);
        } catch (err) {
          if (err instanceof InstallerError) return reply.code(err.status).header('cache-control', 'no-store').send({ error: err.code, message: err.message });
          throw err;
        }
      },
    );

    // HEAD is its own route: Fastify's automatic one would read the whole file to throw it away.
    const download = {
      ...publicRoute('agent artifacts: public builds, not secrets'),
      exposeHeadRoute: false,
      schema: {
        tags: ['install'],
        summary: 'An agent artifact (tether-agent-VERSION-linux-ARCH.tar.gz) or its .sha256 line, cached for good (names carry the version); HEAD answers the headers alone',
        params: Type.Object({ file: Type.String() }),
      },
    };
    const send = async (req: FastifyRequest<{ Params: { file: string } }>, reply: FastifyReply) => {
      const name = req.params.file;
      const sidecar = name.endsWith('.sha256');
      const file = sidecar ? name.slice(0, -'.sha256'.length) : name;
      const notFound = () => reply.code(404).send({ error: 'not_found', message: `no agent artifact ${JSON.stringify(name.slice(0, 200))}` });
      if (!ARTIFACT_RE.test(file)) return notFound();
      const opened = await store.open(file);
      if (!opened) {
        const damaged = store.damaged(file);
        return damaged ? reply.code(409).send({ error: 'artifact_damaged', message: damaged }) : notFound();
      }
      const a = opened.artifact;
      const etag = sidecar ? `"${a.sha256}.sha256"` : `"${a.sha256}"`;
      const unchanged = ifNoneMatch(req, etag);
      const body = sidecar ? sha256Line(a) : undefined;
      if (body !== undefined || unchanged || req.method === 'HEAD') await opened.close();
      reply.header('cache-control', 'public, max-age=31536000, immutable').header('etag', etag);
      if (unchanged) return reply.code(304).send();
      reply.type(sidecar ? 'text/plain; charset=utf-8' : 'application/gzip').header('content-length', body !== undefined ? Buffer.byteLength(body) : a.size);
      if (req.method === 'HEAD') return reply.send();
      return reply.send(body ?? opened.stream());
    };
    r.get('/dl/agent/:file', download, send);
    r.head('/dl/agent/:file', download, send);

    r.get(
      '/api/v1/agent-artifacts',
      {
        ...access({ role: 'viewer', scope: 'read' }),
        schema: {
          tags: ['install'],
          summary: 'The agent artifacts this hub serves (newest version first), with what an install line needs: the hub’s public_url when set and the capabilities an agent may be allowed',
          response: {
            200: Type.Object({
              publicUrl: Type.Union([Type.String(), Type.Null()]),
              latest: Type.Union([Type.String(), Type.Null()]),
              capabilities: Type.Array(Type.String()),
              artifacts: Type.Array(ArtifactView),
              tlsPin: Type.Union([
                Type.Object({
                  pubkey: Type.String({ description: "curl's --pinnedpubkey for this hub's self-issued certificate: the install line fetches install.sh with it" }),
                  fingerprint: Type.String({ description: 'the certificate fingerprint the installed agent pins (hub_fingerprint)' }),
                }),
                Type.Null(),
              ]),
            }),
            ...errors(401),
          },
        },
      },
      async (req) => {
        let base: string | undefined;
        try {
          base = baseUrl(req);
        } catch {
          base = undefined; // a Host that cannot make a URL: paths only
        }
        const list = await store.list();
        return {
          publicUrl: o.publicUrl ?? null,
          latest: list[0]?.version ?? null,
          capabilities: [...CAPABILITIES],
          artifacts: list.map((a) => ({ version: a.version, arch: a.arch, file: a.file, size: a.size, sha256: a.sha256, url: `${base ?? ''}/dl/agent/${a.file}` })),
          tlsPin: o.installPin ?? null,
        };
      },
    );
  };
}

function ifNoneMatch(req: FastifyRequest, etag: string): boolean {
  const h = req.headers['if-none-match'];
  return typeof h === 'string' && h.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
