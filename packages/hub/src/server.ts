/**
 * Assembles the hub: storage, modules (each owning its tables and routes), the agent link, HTTP.
 */
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { chmodSync, createReadStream, writeFileSync } from 'node:fs';
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
import { hostScopeHook } from './modules/hosts/scope.js';
import { allowedHostsHook } from './allowed-hosts.js';
import { prepareDataDir, sealStoredSecrets } from './data-dir.js';
import { EnrollStore, enrollMigrations } from './modules/enroll/store.js';
import { enrollRoutes } from './modules/enroll/routes.js';
import { AuthStore, authMigrations } from './modules/auth/store.js';
import { authHook, authRoutes, originAllowed } from './modules/auth/plugin.js';
import { userRoutes } from './modules/auth/users.js';
import { LoginGuard } from './modules/auth/guard.js';
import { AuditLog, auditMigrations } from './modules/audit/log.js';
import { auditHooks, auditRoutes } from './modules/audit/routes.js';
import { access, hostAllowed, publicRoute, type RouteAccess } from './http.js';
import { loadTls, type HubTls } from './tls.js';
import type { WebSocket } from 'ws';
import { AgentLink } from './modules/agents/link.js';
import { MetricStore, metricsMigrations } from './modules/metrics/store.js';
import { MetricsService } from './modules/metrics/service.js';
import { metricsRoutes } from './modules/metrics/routes.js';
import { LiveHub } from './modules/metrics/live.js';
import { renderPrometheus } from './modules/metrics/prometheus.js';
import { WORKLOAD_REPORTS, WorkloadService, WorkloadSource } from './modules/workloads/service.js';
import { workloadRoutes } from './modules/workloads/routes.js';
import { REPORT_TYPES } from '@tether/protocol';
import { JobStore, jobsMigrations } from './modules/jobs/store.js';
import { JobService } from './modules/jobs/service.js';
import { jobRoutes } from './modules/jobs/routes.js';
import { BundleStore, bundlesMigrations } from './modules/bundles/store.js';
import { bundleRoutes } from './modules/bundles/routes.js';
import { TransferRegistry } from './modules/files/transfers.js';
import { filesRoutes } from './modules/files/routes.js';
import { AlertStore, alertsMigrations } from './modules/alerts/store.js';
import { AlertService } from './modules/alerts/service.js';
import { alertRoutes } from './modules/alerts/routes.js';
import { managersRoutes } from './modules/managers/index.js';
import { TerminalService, terminalMigrations } from './modules/terminal/service.js';
import { terminalRoutes } from './modules/terminal/routes.js';
import { createLogger } from './log.js';
import { systemClock, type Clock } from './clock.js';
import { Scheduler } from './scheduler.js';
import { HealthMonitor, type HealthReport } from './health.js';
import { consoleRoutes } from './console.js';
import { ArtifactStore } from './modules/artifacts/store.js';
import { artifactRoutes } from './modules/artifacts/routes.js';
import { installerCandidates } from './modules/artifacts/paths.js';
import { clusterMigrations, joinCluster, soloCluster, type Cluster, type LeaseName } from './cluster/index.js';
import { clusterRoutes } from './cluster/routes.js';
import { relayLive } from './cluster/live.js';

/** SIGTERM to exit: everything the hub does on stop fits in this (the process manager's kill comes later). */
export const STOP_BOUND_MS = 8000; // + up to 500 ms for the database to close

export interface StopResult {
  /** every step ended in time */
  clean: boolean;
  /** steps still running when the bound was reached */
  pending: string[];
}

/** A refused body (413) of a declared length up to this is read and dropped so that the client gets the answer. */
const DRAIN_REFUSED_BODY_BYTES = 64 * 1024 * 1024;

export const ALL_MIGRATIONS = [hostsMigrations, enrollMigrations, authMigrations, metricsMigrations, jobsMigrations, bundlesMigrations, auditMigrations, terminalMigrations, alertsMigrations, clusterMigrations];

/** A route as declared: what the route × role matrix test and docs/access.md are made from. */
export interface RouteInfo {
  method: string;
  url: string;
  access?: RouteAccess;
  public?: string;
  websocket: boolean;
}

export interface Hub {
  app: FastifyInstance;
  /** this hub's own agent sockets */
  link: AgentLink;
  /** this hub's place in its cluster (a hub alone: `mode: 'single'`, every lease, its own agents) */
  cluster: Cluster;
  metrics: MetricsService;
  live: LiveHub;
  jobs: JobService;
  /** alert rules, states, silences and notifications; anomaly sources plug in with `alerts.addSource` */
  alerts: AlertService;
  /** moves bytes to and from agents over HTTP, outside the link (files, script bundles) */
  transfers: TransferRegistry;
  hosts: HostStore;
  enroll: EnrollStore;
  auth: AuthStore;
  /** the agent artifacts served for the one-line install (artifacts_dir) */
  artifacts: ArtifactStore;
  /** the tamper-evident audit log: mutating API calls are recorded by a hook; record agent actions sent by jobs here */
  audit: AuditLog;
  /** every route with its declared access */
  routes: RouteInfo[];
  /** the TLS certificate's fingerprint, when the hub serves TLS */
  tls?: Pick<HubTls, 'fingerprint' | 'source' | 'certFile'>;
  db: DbHandle;
  log: Logger;
  /** the hub's one clock: every scheduler, expiry and timeout takes its time from it */
  clock: Clock;
  /** the hub's periodic work (rollups, sweeps, pruning) on that clock */
  scheduler: Scheduler;
  /** http://host:port actually bound (port 0 resolved) */
  url: string;
  /** stops within STOP_BOUND_MS whatever is in flight; a second call returns the first one's promise */
  stop(): Promise<StopResult>;
}

/** Creates the admin account on first start. Returns the generated password, if one was generated. */
async function ensureAdmin(auth: AuthStore, cfg: HubConfig, log: Logger, now: number): Promise<string | undefined> {
  if ((await auth.userCount()) > 0) return undefined;
  const generated = cfg.adminPassword ? undefined : randomBytes(15).toString('base64url');
  try {
    await auth.createUser('admin', cfg.adminPassword ?? generated!, 'admin', now);
  } catch (err) {
    // Hubs of a cluster starting together on a new database: one of them made it.
    if ((await auth.userCount()) > 0) return undefined;
    throw err;
  }
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

export async function createHub(cfg: HubConfig, opts: { log?: Logger; clock?: Clock } = {}): Promise<Hub> {
  const log = opts.log ?? createLogger(cfg.logLevel, 'hub');
  const clock = opts.clock ?? systemClock;
  const secrets = prepareDataDir({ dataDir: cfg.dataDir, db: cfg.db }, log);
  const db = await openDatabase(cfg.db, cfg.dataDir, { poolSize: cfg.dbPool });
  try {
    const applied = await migrate(db.db, ALL_MIGRATIONS, db.schema);
    log.info({ db: db.describe, applied }, 'database ready');
  } catch (err) {
    await db.close();
    throw err;
  }
  const hosts = new HostStore(db.db);
  const enroll = new EnrollStore(db.db);
  const auth = new AuthStore(db.db, secrets);
  const alertStore = new AlertStore(db.db, secrets);
  await sealStoredSecrets(db, { totp: auth, channels: alertStore }, secrets, log);
  auth.sessionTtlMs = cfg.sessionTtlSec * 1000;
  const audit = new AuditLog(db.db, clock);
  await ensureAdmin(auth, cfg, log, clock.now());
  let tls: HubTls | undefined;
  try {
    tls = await loadTls(cfg, clock.now());
  } catch (err) {
    await db.close();
    throw new Error(`TLS: ${(err as Error).message}`);
  }

  const link = new AgentLink({
    hosts,
    enroll,
    log: log.child({ module: 'link' }),
    hubVersion: TETHER_VERSION,
    heartbeatSec: cfg.heartbeatSec,
    handshakeTimeoutMs: cfg.handshakeTimeoutSec * 1000,
    maxFrameBytes: cfg.maxFrameBytes,
    clock,
  });

  // Set once the hub listens: where agents and browsers reach it (told to the other hubs).
  let url = '';
  let cluster: Cluster;
  try {
    cluster = cfg.cluster
      ? await joinCluster({ nats: cfg.cluster.nats, prefix: cfg.cluster.prefix, db: db.db, link, secrets, url: () => cfg.publicUrl ?? url, log: log.child({ module: 'cluster' }) })
      : soloCluster(link);
  } catch (err) {
    await link.close();
    await db.close();
    throw err;
  }
  const holds = (lease: LeaseName) => cluster.leases.holds(lease);
  const scheduler = new Scheduler(clock, log.child({ module: 'scheduler' }));
  scheduler.gate = (lease) => holds(lease as LeaseName);
  const metrics = new MetricsService(new MetricStore(db.db, db.sqlite, clock), log.child({ module: 'metrics' }), { retention: cfg.retention, topN: cfg.topN, clock, maintainer: () => holds('maintenance') });
  const reportTypes = new Set<string>(REPORT_TYPES);
  const workloads = new WorkloadService();
  link.on('message', (conn, msg, frame) => {
    if (WORKLOAD_REPORTS.has(msg.type)) workloads.handleReport(conn.agentId, msg.type, msg.body);
    else if (reportTypes.has(msg.type)) metrics.handleReport(conn.agentId, msg.type, msg.body, performance.now(), () => conn.send('ack', {}, msg.id), frame);
  });
  metrics.start(scheduler);
  const live = new LiveHub(metrics, cluster.reach, log.child({ module: 'live' }), clock);
  if (cluster.bus && cluster.clusterReach) relayLive(metrics, live, cluster.clusterReach, cluster.bus, cluster.hubId);
  const transfers = new TransferRegistry(hosts, log.child({ module: 'transfers' }));
  const bundles = new BundleStore(db.db, cfg.dataDir);
  const jobs = new JobService(new JobStore(db.db), cluster.jobAgents ?? link, hosts, log.child({ module: 'jobs' }), {
    lostAfterMs: cfg.taskLostAfterSec * 1000,
    reconnectGraceMs: cfg.reconnectGraceSec * 1000,
    clock,
    offerBundle: (agentId, b) => {
      const offer = transfers.offer(agentId, () => createReadStream(join(bundles.dir, `${b.sha256}.tar`)), b.size);
      // The agent reports how the fetch went in its task result; an expired offer needs no more.
      offer.done.catch((err: Error) => log.debug({ agentId, err: err.message }, 'bundle transfer ended without delivery'));
      return offer.transferId;
    },
    offerArtifact: (agentId, file, size) => {
      // The name was checked against the store's pattern when the job was made; the agent checks size and sha256.
      const offer = transfers.offer(agentId, () => createReadStream(join(cfg.artifactsDir, file)), size);
      offer.done.catch((err: Error) => log.debug({ agentId, err: err.message }, 'artifact transfer ended without delivery'));
      return offer.transferId;
    },
  });
  if (cluster.jobAgents) jobs.clustered(cluster.jobAgents);
  await jobs.start(scheduler);
  const a = cfg.alerts;
  const alerts = new AlertService(alertStore, metrics, cluster.reach, hosts, log.child({ module: 'alerts' }), {
    evalIntervalMs: a.evalIntervalSec * 1000,
    retryBaseMs: a.retryBaseSec * 1000,
    maxAttempts: a.retryAttempts,
    sendTimeoutMs: a.sendTimeoutSec * 1000,
    certCheckIntervalMs: a.certCheckIntervalSec * 1000,
    reconnectGraceMs: cfg.reconnectGraceSec * 1000,
    historyRetentionMs: a.historyRetentionSec * 1000,
    flapCount: 4,
    flapWindowSec: 1800,
    ...(tls ? { hubCertificate: tls.cert } : {}),
    clock,
  });
  if (cluster.bus) alerts.clustered(cluster.bus, cluster.leases);
  await alerts.start(scheduler);
  alerts.addSource(new WorkloadSource(workloads, () => clock.now()));

  const app = Fastify({
    loggerInstance: log.child({ module: 'http' }),
    bodyLimit: cfg.maxBodyBytes,
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    // Per-request lines would drown the log at fleet scale; mutating calls log their own line.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
    return503OnClosing: true,
  });
  app.decorate('clock', clock);
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // One error shape everywhere: {error, message}; validation failures say which field.
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // Fastify answers 413 and closes the connection so as not to read the rest of the body. A
      // client still sending it then gets a reset instead of the answer (fetch fails with "write
      // EPIPE", 3 times in 10 here). For a body whose declared length is bounded, the hub keeps the
      // connection, Node reads and drops the rest, and the client reads its 413 (nginx's lingering
      // close does the same). A larger or undeclared body still closes the connection.
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared <= DRAIN_REFUSED_BODY_BYTES) reply.removeHeader('connection');
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal' : (err.code ?? 'error').toLowerCase(), message: status >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  // Every route declares who may call it (or that it is public): one without a declaration is a bug
  // that would otherwise be an open door, so the hub refuses to start. Swagger's own pages are public.
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (ro) => {
    const cfgr = (ro.config ?? {}) as { access?: RouteAccess; public?: string };
    if (!cfgr.access && cfgr.public === undefined) {
      if (ro.url.startsWith('/api/docs')) ro.config = { ...(ro.config ?? {}), public: 'API documentation' } as typeof ro.config;
      else throw new Error(`route ${String(ro.method)} ${ro.url} declares no access: add ...access({ role, scope }) or ...publicRoute(why)`);
    }
    const c = ro.config as { access?: RouteAccess; public?: string };
    for (const m of [ro.method].flat()) {
      if (m === 'HEAD') continue;
      routes.push({ method: m, url: ro.url, ...(c.access ? { access: c.access } : {}), ...(c.public !== undefined ? { public: c.public } : {}), websocket: Boolean((ro as { websocket?: boolean }).websocket) });
    }
  });
  const API_CSP = "default-src 'none'; frame-ancestors 'none'";
  const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (tls) reply.header('strict-transport-security', 'max-age=31536000');
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', req.url.startsWith('/api/docs') ? DOCS_CSP : API_CSP);
    return payload;
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tether hub API', version: TETHER_VERSION, description: 'Hosts, enrollment and the agent link. Authenticate with POST /api/v1/auth/login. The WebSockets (/api/v1/live, /api/v1/jobs/{id}/stream, /api/v1/hosts/{id}/terminal, /api/v1/alerts/live, /api/v1/agent/ws) and follow streams are described in docs/protocol.md (“Client WebSockets and follow streams”).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, cookie: { type: 'apiKey', in: 'cookie', name: 'tether_session' } } },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  await app.register(websocket, { options: { maxPayload: cfg.maxFrameBytes } });
  const stepUpWindowMs = cfg.stepUpWindowSec * 1000;
  // public_url's host is one of the hub's names (for the Host check only, not a CSRF origin).
  app.addHook('onRequest', allowedHostsHook({ allowed: cfg.allowedHosts, listenHost: cfg.listen.host, origins: [...cfg.allowedOrigins, ...(cfg.publicUrl ? [cfg.publicUrl] : [])], ...(tls ? { certPem: tls.cert } : {}) }));
  app.addHook('onRequest', authHook(auth, { stepUpWindowMs, allowedOrigins: cfg.allowedOrigins }));
  app.addHook('onRequest', hostScopeHook(hosts));
  const auditing = auditHooks(audit, {
    hostname: async (id) => (await hosts.get(id))?.hostname,
    username: async (id) => (await auth.getUser(id))?.username,
  });
  app.addHook('preHandler', auditing.preHandler);
  app.addHook('onSend', auditing.onSend);

  const startedAt = performance.now();
  const health = new HealthMonitor(db, clock, scheduler, () => metrics.lastCommitAt, { stallMs: cfg.healthStallSec * 1000 });
  health.start();
  app.get(
    '/api/v1/health',
    {
      ...publicRoute('liveness for load balancers and monitoring'),
      schema: {
        tags: ['hub'],
        summary: 'Health: 200 when the database answers a round trip and the event loop has not stalled (within health_stall, default 5 s); 503 with the reasons otherwise. No login needed.',
      },
    },
    async (_req, reply) => {
      const h: HealthReport = await health.report();
      const c = cluster.status();
      // A cluster cut off from NATS still serves (its own agents, the database): 200, "degraded".
      const reasons = [...h.reasons, ...c.degraded];
      return reply.code(h.status === 'ok' ? 200 : 503).send({
        status: h.status === 'ok' && c.degraded.length ? 'degraded' : h.status,
        ...(reasons.length ? { reasons } : {}),
        version: TETHER_VERSION,
        protocol: PROTOCOL_VERSION,
        uptimeSec: Math.round((performance.now() - startedAt) / 1000),
        time: clock.now(),
        db: db.kind,
        database: h.database,
        eventLoop: h.eventLoop,
        agentsOnline: link.onlineCount,
        ingest: h.ingest,
        tasks: h.tasks,
        // No login here: how many hubs and which singletons, not their addresses (GET /api/v1/cluster).
        cluster: { mode: c.mode, hubId: c.hubId, hubs: Math.max(1, c.hubs.length), leases: c.leases, ...(c.bus ? { bus: c.bus.state } : {}), ...(c.degraded.length ? { degraded: c.degraded } : {}) },
      });
    },
  );
  await app.register(consoleRoutes());
  const guard = new LoginGuard(auth, { maxFailures: cfg.login.maxFailures, lockoutMs: cfg.login.lockoutSec * 1000, ipMaxFailures: cfg.login.ipMaxFailures, windowMs: cfg.login.windowSec * 1000 });
  await app.register(authRoutes(auth, { secureCookies: Boolean(tls), stepUpWindowMs, allowedOrigins: cfg.allowedOrigins, guard, totpIssuer: 'Tether' }));
  await app.register(userRoutes(auth));
  await app.register(auditRoutes(audit));
  await app.register(
    hostRoutes(hosts, cluster.reach, async (id) => {
      metrics.forget(id);
      await metrics.store.deleteHost(id);
      await jobs.forgetHost(id);
      alerts.forgetHost(id);
      workloads.forget(id);
    }),
  );
  await app.register(enrollRoutes(enroll, tls ? { hubFingerprint: tls.fingerprint } : {}));
  await app.register(metricsRoutes(metrics, hosts, link));
  await app.register(workloadRoutes(workloads, hosts));
  // Open sockets by credential, so that ending a session or revoking a token closes them at once.
  const liveByCred = new Map<string, Set<WebSocket>>();
  auth.on('ended', (hashes) => {
    for (const h of hashes) for (const ws of liveByCred.get(h) ?? []) ws.close(4401, 'session ended');
  });
  const trackSocket = (cred: string, socket: WebSocket) => {
    let set = liveByCred.get(cred);
    if (!set) liveByCred.set(cred, (set = new Set()));
    set.add(socket);
    socket.on('close', () => {
      set.delete(socket);
      if (!set.size) liveByCred.delete(cred);
    });
  };
  const artifacts = new ArtifactStore(cfg.artifactsDir, log.child({ module: 'artifacts' }));
  await app.register(jobRoutes(jobs, hosts, { trackSocket, artifacts, originAllowed: (req) => originAllowed(req, cfg.allowedOrigins) }));
  const terminals = new TerminalService(db.db, cfg.dataDir, cluster.reach, log.child({ module: 'terminal' }), { clock });
  terminals.start(scheduler);
  await app.register(terminalRoutes({ terminals, hosts, link: cluster.reach, audit, trackSocket, originAllowed: (req) => originAllowed(req, cfg.allowedOrigins) }));
  await app.register(bundleRoutes(bundles, jobs, hosts));
  await app.register(alertRoutes(alerts, { trackSocket, originAllowed: (req) => originAllowed(req, cfg.allowedOrigins) }));
  await app.register(transfers.routes());
  await app.register(filesRoutes({ hosts, link, transfers, maxBytes: cfg.maxUploadBytes }));
  await app.register(managersRoutes({ hosts, link, reach: cluster.reach }));
  await app.register(clusterRoutes(cluster));
  await app.register(artifactRoutes(artifacts, { ...(cfg.publicUrl ? { publicUrl: cfg.publicUrl } : {}), ...(tls?.installPin ? { installPin: tls.installPin } : {}), installer: installerCandidates() }));
  app.get('/api/v1/live', { ...access({ role: 'viewer', scope: 'read' }), websocket: true, schema: { hide: true } }, (socket, req) => {
    // Browsers send Origin; a page from another site must not ride on the session cookie.
    if (!originAllowed(req, cfg.allowedOrigins)) {
      socket.close(4403, 'origin not allowed');
      return;
    }
    trackSocket(req.auth!.credHash, socket);
    let refresh: NodeJS.Timeout | undefined;
    socket.on('close', () => clearInterval(refresh));
    if (!req.hostScopes) return live.attach(socket);
    // A user limited to some hosts: the allowed set is computed now and every 30 s (labels change).
    let allowed = new Set<string>();
    const compute = async () => {
      allowed = new Set((await hosts.list({})).filter((h) => hostAllowed(req, h.labels)).map((h) => h.id));
    };
    refresh = setInterval(() => void compute().catch(() => {}), 30_000);
    refresh.unref();
    void compute()
      .catch(() => {})
      .then(() => live.attach(socket, { allow: (id) => allowed.has(id) }));
  });
  app.get('/metrics', { ...(cfg.metricsOpen ? publicRoute('metrics_open is set') : access({ role: 'viewer', scope: 'read' })), schema: { hide: true } }, async (req, reply) => {
    const list = (await hosts.list({})).filter((h) => hostAllowed(req, h.labels));
    // Streamed in chunks that leave the event loop free between them (a large fleet is over a million lines).
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(Readable.from(renderPrometheus(list, metrics, link, { liveClients: live.clientCount }), { objectMode: false }));
  });
  app.get('/api/v1/agent/ws', { ...publicRoute('agents prove who they are inside the socket (signed challenge)'), websocket: true, schema: { hide: true } }, (socket, req) => {
    const addr = req.socket.remoteAddress ?? 'unknown';
    releaseUpgrade(socket, req.socket);
    link.attach(socket, addr);
  });

  scheduler.every('auth.prune', 3600_000, (now) => auth.pruneSessions(now).then(() => {}), { lease: 'maintenance' });

  await app.listen({ host: cfg.listen.host, port: cfg.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.listen.port;
  const host = cfg.listen.host === '0.0.0.0' || cfg.listen.host === '::' ? '127.0.0.1' : cfg.listen.host;
  url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, listen: `${cfg.listen.host}:${port}`, heartbeatSec: cfg.heartbeatSec, artifacts: cfg.artifactsDir, ...(cfg.publicUrl ? { publicUrl: cfg.publicUrl } : {}), ...(tls ? { tls: tls.source, tlsFingerprint: tls.fingerprint, tlsCert: tls.certFile } : {}) }, 'hub listening');

  /**
   * Stops within STOP_BOUND_MS whatever is in flight: each step gets what is left of the bound, and
   * one that does not end in time is left behind (named in the log). What was committed stays
   * committed (SQLite's WAL and PostgreSQL both keep a committed transaction through a killed
   * process); what was not is not acknowledged to any agent, which sends it again.
   */
  let stopping: Promise<StopResult> | undefined;
  const stopHub = async (): Promise<StopResult> => {
    const deadline = performance.now() + STOP_BOUND_MS;
    const pending: string[] = [];
    const step = async (name: string, work: () => Promise<unknown>, atLeastMs = 0) => {
      let timer: NodeJS.Timeout | undefined;
      const left = Math.max(atLeastMs, deadline - performance.now());
      const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), left)));
      const r = await Promise.race([work().then(() => 'done' as const, (err: Error) => (log.warn({ step: name, err: err.message }, 'stop step failed'), 'done' as const)), late]);
      clearTimeout(timer);
      if (r === 'late') pending.push(name);
    };
    health.stop();
    pending.push(...(await scheduler.stop(Math.min(3000, STOP_BOUND_MS / 3))).map((t) => `task ${t}`));
    live.close();
    transfers.close();
    // Singletons go to another hub now, not when their leases expire.
    await step('cluster leave', () => cluster.leave());
    await step('alerts', () => alerts.stop());
    await step('agent link', () => link.close());
    await step('metrics', () => metrics.stop());
    await step('jobs', () => jobs.stop());
    await step('terminals', () => terminals.close());
    await step('http', () => app.close());
    await step('audit', () => audit.flush());
    await step('cluster', () => cluster.stop());
    // Closing the database is quick unless a query holds it; it gets a moment even past the bound.
    await step('database', () => db.close(), 500);
    const clean = pending.length === 0;
    if (clean) log.info('hub stopped');
    else log.warn({ pending, boundMs: STOP_BOUND_MS }, 'hub stopped with work still in flight (not committed, so not acknowledged)');
    return { clean, pending };
  };
  return {
    app: app as unknown as FastifyInstance,
    link,
    cluster,
    metrics,
    live,
    jobs,
    alerts,
    transfers,
    artifacts,
    hosts,
    enroll,
    auth,
    audit,
    routes,
    ...(tls ? { tls: { fingerprint: tls.fingerprint, source: tls.source, certFile: tls.certFile } } : {}),
    db,
    log,
    clock,
    scheduler,
    url,
    stop: () => (stopping ??= stopHub()),
  };
}

/**
 * Lets go of what @fastify/websocket keeps reachable from an upgraded socket for as long as it is
 * open: the upgrade's ServerResponse (assigned to the socket, holding the request, its headers and
 * Fastify's request, reply and child logger) and an 'error' listener closed over the same request
 * and reply. An agent's socket stays open for days; at 10,000 agents that was about 25 objects
 * each, 250,000 in the old generation for every full collection to mark. The caller adds its own
 * 'error' listener right after.
 */
function releaseUpgrade(ws: WebSocket, raw: Socket): void {
  const res = (raw as unknown as { _httpMessage?: { detachSocket?: (s: unknown) => void } | null })._httpMessage;
  if (res && typeof res.detachSocket === 'function') res.detachSocket(raw);
  ws.removeAllListeners('error');
}
