/**
 * Assembles the hub: storage, modules (each owning its tables and routes), the agent link, HTTP.
 */
import { chmodSync, createReadStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { TETHER_VERSION, PROTOCOL_VERSION } from '@tether/protocol';
import type { HubConfig } from './config.js';
import { openDatabase, type DbHandle } from './db/database.js';
import { migrate } from './db/migrate.js';
import { HostStore, hostsMigrations } from './modules/hosts/store.js';
import { hostRoutes } from './modules/hosts/routes.js';
import { EnrollStore, enrollMigrations } from './modules/enroll/store.js';
import { enrollRoutes } from './modules/enroll/routes.js';
import { AuthStore, authMigrations } from './modules/auth/store.js';
import { authHook, authRoutes } from './modules/auth/plugin.js';
import { AgentLink } from './modules/agents/link.js';
import { MetricStore, metricsMigrations } from './modules/metrics/store.js';
import { MetricsService } from './modules/metrics/service.js';
import { metricsRoutes } from './modules/metrics/routes.js';
import { LiveHub } from './modules/metrics/live.js';
import { renderPrometheus } from './modules/metrics/prometheus.js';
import { REPORT_TYPES } from '@tether/protocol';
import { JobStore, jobsMigrations } from './modules/jobs/store.js';
import { JobService } from './modules/jobs/service.js';
import { jobRoutes } from './modules/jobs/routes.js';
import { BundleStore, bundlesMigrations } from './modules/bundles/store.js';
import { bundleRoutes } from './modules/bundles/routes.js';
import { TransferRegistry } from './modules/files/transfers.js';
import { filesRoutes } from './modules/files/routes.js';
import { createLogger } from './log.js';
import { INDEX_HTML } from './index-page.js';

export const ALL_MIGRATIONS = [hostsMigrations, enrollMigrations, authMigrations, metricsMigrations, jobsMigrations, bundlesMigrations];

export interface Hub {
  app: FastifyInstance;
  link: AgentLink;
  metrics: MetricsService;
  live: LiveHub;
  jobs: JobService;
  /** moves bytes to and from agents over HTTP, outside the link (files, script bundles) */
  transfers: TransferRegistry;
  hosts: HostStore;
  enroll: EnrollStore;
  auth: AuthStore;
  db: DbHandle;
  log: Logger;
  /** http://host:port actually bound (port 0 resolved) */
  url: string;
  stop(): Promise<void>;
}

/** Creates the admin account on first start. Returns the generated password, if one was generated. */
async function ensureAdmin(auth: AuthStore, cfg: HubConfig, log: Logger): Promise<string | undefined> {
  if ((await auth.userCount()) > 0) return undefined;
  const generated = cfg.adminPassword ? undefined : randomBytes(15).toString('base64url');
  await auth.createUser('admin', cfg.adminPassword ?? generated!, 'admin', Date.now());
  if (generated) {
    const file = join(cfg.dataDir, 'initial-admin-password');
    writeFileSync(file, generated + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    // Printed once, on the terminal only: the structured log never carries it.
    process.stderr.write(
      `\n  Tether: created user "admin" with a generated password:\n\n      ${generated}\n\n  It is also in ${file} (mode 0600). Change it after logging in.\n\n`,
    );
    log.info({ file }, 'created admin account with a generated password');
  } else {
    log.info('created admin account with the password from TETHER_ADMIN_PASSWORD');
  }
  return generated;
}

export async function createHub(cfg: HubConfig, opts: { log?: Logger } = {}): Promise<Hub> {
  const log = opts.log ?? createLogger(cfg.logLevel, 'hub');
  if (!existsSync(cfg.dataDir)) mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDatabase(cfg.db, cfg.dataDir);
  try {
    const applied = await migrate(db.db, ALL_MIGRATIONS, db.schema);
    log.info({ db: db.describe, applied }, 'database ready');
  } catch (err) {
    await db.close();
    throw err;
  }
  const hosts = new HostStore(db.db);
  const enroll = new EnrollStore(db.db);
  const auth = new AuthStore(db.db);
  await ensureAdmin(auth, cfg, log);

  const link = new AgentLink({
    hosts,
    enroll,
    log: log.child({ module: 'link' }),
    hubVersion: TETHER_VERSION,
    heartbeatSec: cfg.heartbeatSec,
    handshakeTimeoutMs: cfg.handshakeTimeoutSec * 1000,
    maxFrameBytes: cfg.maxFrameBytes,
  });

  const metrics = new MetricsService(new MetricStore(db.db), log.child({ module: 'metrics' }), { retention: cfg.retention, topN: cfg.topN });
  const reportTypes = new Set<string>(REPORT_TYPES);
  link.on('message', (conn, msg) => {
    if (reportTypes.has(msg.type)) metrics.handleReport(conn.agentId, msg.type, msg.body, performance.now(), () => conn.send('ack', {}, msg.id));
  });
  metrics.start();
  const live = new LiveHub(metrics, link, log.child({ module: 'live' }));
  const transfers = new TransferRegistry(hosts, log.child({ module: 'transfers' }));
  const bundles = new BundleStore(db.db, cfg.dataDir);
  const jobs = new JobService(new JobStore(db.db), link, hosts, log.child({ module: 'jobs' }), {
    lostAfterMs: cfg.taskLostAfterSec * 1000,
    reconnectGraceMs: cfg.reconnectGraceSec * 1000,
    offerBundle: (agentId, b) => {
      const offer = transfers.offer(agentId, () => createReadStream(join(bundles.dir, `${b.sha256}.tar`)), b.size);
      // The agent reports how the fetch went in its task result; an expired offer needs no more.
      offer.done.catch((err: Error) => log.debug({ agentId, err: err.message }, 'bundle transfer ended without delivery'));
      return offer.transferId;
    },
  });
  await jobs.start();

  const app = Fastify({
    loggerInstance: log.child({ module: 'http' }),
    bodyLimit: 1024 * 1024,
    // Per-request lines would drown the log at fleet scale; mutating calls log their own line.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
    return503OnClosing: true,
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // One error shape everywhere: {error, message}; validation failures say which field.
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal' : (err.code ?? 'error').toLowerCase(), message: status >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tether hub API', version: TETHER_VERSION, description: 'Hosts, enrollment and the agent link. Authenticate with POST /api/v1/auth/login.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, cookie: { type: 'apiKey', in: 'cookie', name: 'tether_session' } } },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  await app.register(websocket, { options: { maxPayload: cfg.maxFrameBytes } });
  app.addHook('onRequest', authHook(auth, { alsoProtect: cfg.metricsOpen ? [] : ['/metrics'] }));

  const startedAt = Date.now();
  app.get('/api/v1/health', { schema: { tags: ['hub'], summary: 'Liveness and readiness (no login needed)' } }, async () => ({
    status: 'ok',
    version: TETHER_VERSION,
    protocol: PROTOCOL_VERSION,
    uptimeSec: Math.round((Date.now() - startedAt) / 1000),
    db: db.kind,
    agentsOnline: link.onlineCount,
  }));
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'").send(INDEX_HTML));
  await app.register(authRoutes(auth, { secureCookies: false }));
  await app.register(
    hostRoutes(hosts, link, async (id) => {
      metrics.forget(id);
      await metrics.store.deleteHost(id);
      await jobs.forgetHost(id);
    }),
  );
  await app.register(enrollRoutes(enroll));
  await app.register(metricsRoutes(metrics, hosts, link));
  await app.register(jobRoutes(jobs, hosts));
  await app.register(bundleRoutes(bundles, jobs, hosts));
  await app.register(transfers.routes());
  await app.register(filesRoutes({ hosts, link, transfers, maxBytes: cfg.maxUploadBytes }));
  app.get('/api/v1/live', { websocket: true, schema: { hide: true } }, (socket, req) => {
    // Browsers send Origin; a page from another site must not ride on the session cookie.
    const origin = req.headers.origin;
    if (origin && new URL(origin).host !== req.headers.host) {
      socket.close(4403, 'origin not allowed');
      return;
    }
    live.attach(socket);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const list = await hosts.list({});
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(renderPrometheus(list, metrics, link, { liveClients: live.clientCount }));
  });
  app.get('/api/v1/agent/ws', { websocket: true, schema: { hide: true } }, (socket, req) => {
    link.attach(socket, req.socket.remoteAddress ?? 'unknown');
  });

  const pruner = setInterval(() => void auth.pruneSessions(Date.now()).catch(() => {}), 3600_000);
  pruner.unref();

  await app.listen({ host: cfg.listen.host, port: cfg.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.listen.port;
  const host = cfg.listen.host === '0.0.0.0' || cfg.listen.host === '::' ? '127.0.0.1' : cfg.listen.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, listen: `${cfg.listen.host}:${port}`, heartbeatSec: cfg.heartbeatSec }, 'hub listening');

  let stopped = false;
  return {
    app: app as unknown as FastifyInstance,
    link,
    metrics,
    live,
    jobs,
    transfers,
    hosts,
    enroll,
    auth,
    db,
    log,
    url,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(pruner);
      live.close();
      transfers.close();
      await link.close();
      await metrics.stop();
      await jobs.stop();
      await app.close();
      await db.close();
      log.info('hub stopped');
    },
  };
}
