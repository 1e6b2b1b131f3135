import type { FastifyInstance } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseSelector, SelectorError } from '@tether/protocol';
import type { HostStore } from '../hosts/store.js';
import type { AgentLink } from '../agents/link.js';
import { latestSeries, latestUsage, type MetricsService } from './service.js';
import { pickTier, querySeries, type Tier } from './query.js';
import { FAMILIES, parseKey } from './series.js';
import { access, errors, hostAllowed } from '../../http.js';
import type { FastifyRequest } from 'fastify';
import { HOUR } from './codec.js';

/** Where the overview's figures sit in a usage key list: busiest filesystem, network totals without loopback. */
interface OverviewSlots {
  cpu: number;
  mem: number;
  load1: number;
  fs: Int32Array;
  rx: Int32Array;
  tx: Int32Array;
}

const overviewCache = new WeakMap<readonly string[], OverviewSlots>();

function overviewSlots(keys: readonly string[]): OverviewSlots {
  let at = overviewCache.get(keys);
  if (at) return at;
  const fs: number[] = [];
  const rx: number[] = [];
  const tx: number[] = [];
  at = { cpu: keys.indexOf('cpu_percent|busy'), mem: keys.indexOf('memory_used_percent'), load1: keys.indexOf('load1'), fs: new Int32Array(0), rx: new Int32Array(0), tx: new Int32Array(0) };
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k.startsWith('fs_used_percent|')) fs.push(i);
    else if (k.endsWith('|lo')) continue;
    else if (k.startsWith('net_rx_bytes_per_second|')) rx.push(i);
    else if (k.startsWith('net_tx_bytes_per_second|')) tx.push(i);
  }
  at.fs = Int32Array.from(fs);
  at.rx = Int32Array.from(rx);
  at.tx = Int32Array.from(tx);
  overviewCache.set(keys, at);
  return at;
}

/** Times as epoch ms, ISO 8601, `now`, or relative to now: `-1h`, `-30m`, `-7d`. */
export function parseTime(raw: string | undefined, now: number, dflt: number): number {
  if (raw === undefined || raw === '') return dflt;
  if (raw === 'now') return now;
  const rel = raw.match(/^-(\d+(?:\.\d+)?)(s|m|h|d)$/);
  if (rel) return now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{10,16}$/.test(raw)) return Number(raw);
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw new Error(`bad time ${JSON.stringify(raw)}: use epoch ms, ISO 8601, now or -1h`);
  return t;
}

export function metricsRoutes(metrics: MetricsService, hosts: HostStore, link: AgentLink) {
  const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
  const read = access({ role: 'viewer', scope: 'read' });
  /** A user limited to some hosts sees only those; others are answered as if they did not exist. */
  const hidden = async (req: FastifyRequest, id: string) => {
    if (!req.hostScopes) return false;
    const h = await hosts.get(id);
    return !h || !hostAllowed(req, h.labels);
  };
  const notFound = { error: 'not_found', message: 'no such host' };
  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get('/api/v1/metrics/catalog', { ...read, schema: { tags: ['metrics'], summary: 'Every metric family: help text and its dimension' } }, async () => ({
      families: Object.entries(FAMILIES).map(([name, f]) => ({ name, help: f.help, dimension: f.dim ?? null })),
    }));

    r.get(
      '/api/v1/metrics/query',
      {
        ...read,
        schema: {
          tags: ['metrics'],
          summary: 'History of a metric set for one host or a label selector; the tier is picked by range unless given',
          querystring: Type.Object({
            host: Type.Optional(Type.String({ maxLength: 64 })),
            selector: Type.Optional(Type.String({ maxLength: 1024 })),
            metrics: Type.String({ minLength: 1, maxLength: 4096, description: 'comma-separated: a family (cpu_percent) or one series (cpu_percent|busy)' }),
            from: Type.Optional(Type.String({ maxLength: 40 })),
            to: Type.Optional(Type.String({ maxLength: 40 })),
            tier: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('raw'), Type.Literal('1m'), Type.Literal('1h')])),
          }),
          response: { 200: Type.Unknown(), ...errors(400, 401, 404) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        let from: number, to: number;
        try {
          to = parseTime(req.query.to, now, now);
          from = parseTime(req.query.from, now, to - HOUR);
        } catch (err) {
          return reply.code(400).send({ error: 'bad_time', message: (err as Error).message });
        }
        if (from >= to) return reply.code(400).send({ error: 'bad_range', message: '`from` must be before `to`' });
        if (to - from > 400 * 24 * HOUR) return reply.code(400).send({ error: 'bad_range', message: 'at most 400 days per query' });
        const wanted = req.query.metrics.split(',').map((s) => s.trim()).filter(Boolean);
        for (const w of wanted) if (!FAMILIES[parseKey(w).family]) return reply.code(400).send({ error: 'unknown_metric', message: `unknown metric ${JSON.stringify(w)}; see /api/v1/metrics/catalog` });
        let ids: string[];
        if (req.query.host) {
          const h = await hosts.get(req.query.host);
          if (!h || !hostAllowed(req, h.labels)) return reply.code(404).send({ error: 'not_found', message: 'no such host' });
          ids = [req.query.host];
        } else if (req.query.selector !== undefined) {
          try {
            ids = (await hosts.list({ selector: parseSelector(req.query.selector) })).filter((h) => hostAllowed(req, h.labels)).map((h) => h.id);
          } catch (err) {
            if (err instanceof SelectorError) return reply.code(400).send({ error: 'bad_selector', message: err.message });
            throw err;
          }
          if (ids.length > 200) return reply.code(400).send({ error: 'too_many_hosts', message: `the selector matches ${ids.length} hosts; at most 200 per query` });
        } else return reply.code(400).send({ error: 'bad_request', message: 'give host or selector' });
        const tier: Tier = !req.query.tier || req.query.tier === 'auto' ? pickTier(from, to, now, metrics.opts.retention) : req.query.tier;
        await metrics.flush();
        const series: { hostId: string; key: string; family: string; dim: string | null; points: [number, number, number, number][] }[] = [];
        for (const hostId of ids) {
          const m = await querySeries(metrics.store, hostId, wanted, from, to, tier);
          for (const [key, points] of [...m].sort((a, b) => a[0].localeCompare(b[0]))) {
            const k = parseKey(key);
            series.push({ hostId, key, family: k.family, dim: k.dim ?? null, points });
          }
        }
        return { tier, from, to, series };
      },
    );

    r.get('/api/v1/metrics/overview', { ...read, schema: { tags: ['metrics'], summary: 'Latest values for every host, in one call' } }, async (req) => {
      const list = (await hosts.listOverview()).filter((h) => hostAllowed(req, h.labels));
      return {
        hosts: list.map((h) => {
          const st = metrics.latest.get(h.id);
          // Every figure shown here comes from the usage report: where each one sits in its key
          // list is worked out once per list (shared by alike hosts), not per host and request.
          const u = st?.kinds.usage;
          let fsMax = 0;
          let rx = 0;
          let tx = 0;
          let cpu: number | null = null;
          let mem: number | null = null;
          let load1: number | null = null;
          if (u) {
            const at = overviewSlots(u.keys);
            const v = u.values;
            if (at.cpu >= 0) cpu = v[at.cpu]!;
            if (at.mem >= 0) mem = v[at.mem]!;
            if (at.load1 >= 0) load1 = v[at.load1]!;
            for (const i of at.fs) fsMax = Math.max(fsMax, v[i]!);
            for (const i of at.rx) rx += v[i]!;
            for (const i of at.tx) tx += v[i]!;
          }
          return {
            id: h.id,
            hostname: h.hostname,
            online: link.isOnline(h.id),
            labels: h.labels,
            os: h.os ?? '',
            agentVersion: h.agentVersion,
            ts: st?.ts ?? null,
            uptimeSec: h.bootTime ? Math.round((app.clock.now() - h.bootTime) / 1000) : null,
            cpuPercent: cpu,
            memoryPercent: mem,
            diskPercent: st ? fsMax : null,
            load1,
            netRxBytesPerSec: st ? rx : null,
            netTxBytesPerSec: st ? tx : null,
          };
        }),
      };
    });

    r.get('/api/v1/hosts/:id/latest', { ...read, schema: { tags: ['metrics'], summary: "A host's latest report of every collector", params: Id, response: { 200: Type.Unknown(), ...errors(401, 404) } } }, async (req, reply) => {
      if (await hidden(req, req.params.id)) return reply.code(404).send(notFound);
      const st = metrics.latest.get(req.params.id);
      if (!st) return reply.code(404).send({ error: 'not_found', message: 'no reports from this host yet' });
      const { kinds: _kinds, usageFrame: _frame, ...rest } = st;
      return { ...rest, usage: latestUsage(st), series: latestSeries(st) };
    });

    r.get(
      '/api/v1/hosts/:id/processes',
      {
        ...read,
        schema: {
          tags: ['metrics'],
          summary: 'The latest process list, or the top processes by CPU and memory per minute over a range (at=… for one moment)',
          params: Id,
          querystring: Type.Object({ at: Type.Optional(Type.String({ maxLength: 40 })), from: Type.Optional(Type.String({ maxLength: 40 })), to: Type.Optional(Type.String({ maxLength: 40 })) }),
          response: { 200: Type.Unknown(), ...errors(400, 401, 404) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        if (await hidden(req, req.params.id)) return reply.code(404).send(notFound);
        try {
          if (req.query.at !== undefined) {
            const at = parseTime(req.query.at, now, now);
            const rows = await metrics.store.readTop(req.params.id, at - 10 * 60_000, at + 60_000);
            const best = rows.filter((x) => x.ts <= at).pop() ?? rows[0];
            if (!best) return reply.code(404).send({ error: 'not_found', message: 'no process history near that time' });
            return { ts: best.ts, ...(best.data as object) };
          }
          if (req.query.from !== undefined) {
            const to = parseTime(req.query.to, now, now);
            const from = parseTime(req.query.from, now, to - HOUR);
            return { minutes: (await metrics.store.readTop(req.params.id, from, to)).map((x) => ({ ts: x.ts, ...(x.data as object) })) };
          }
        } catch (err) {
          return reply.code(400).send({ error: 'bad_time', message: (err as Error).message });
        }
        const p = metrics.latest.get(req.params.id)?.processes;
        if (!p) return reply.code(404).send({ error: 'not_found', message: 'no process report from this host yet' });
        return p;
      },
    );

    r.get('/api/v1/hosts/:id/connections', { ...read, schema: { tags: ['metrics'], summary: 'Latest connections and listening sockets', params: Id, response: { 200: Type.Unknown(), ...errors(401, 404) } } }, async (req, reply) => {
      if (await hidden(req, req.params.id)) return reply.code(404).send(notFound);
      const c = metrics.latest.get(req.params.id)?.connections;
      if (!c) return reply.code(404).send({ error: 'not_found', message: 'no connections report from this host yet' });
      return c;
    });

    r.get('/api/v1/hosts/:id/inventory', { ...read, schema: { tags: ['metrics'], summary: 'Static inventory: CPUs, disks, partitions, interfaces, gateway, nameservers, users', params: Id, response: { 200: Type.Unknown(), ...errors(401, 404) } } }, async (req, reply) => {
      if (await hidden(req, req.params.id)) return reply.code(404).send(notFound);
      const inv = await metrics.store.getInventory(req.params.id);
      if (!inv) return reply.code(404).send({ error: 'not_found', message: 'no inventory from this host yet' });
      return inv;
    });

    r.get(
      '/api/v1/metrics/storage',
      { ...read, schema: { tags: ['metrics'], summary: 'Storage estimate per host per day and at the configured retention', querystring: Type.Object({ host: Type.Optional(Type.String({ maxLength: 64 })) }) } },
      async (req) => {
        await metrics.flush();
        const now = app.clock.now();
        const ret = metrics.opts.retention;
        const list = (req.query.host ? [await hosts.get(req.query.host)].filter((h) => h !== undefined) : await hosts.list({})).filter((h) => hostAllowed(req, h.labels));
        const out = [];
        for (const h of list.slice(0, 1000)) {
          // Measured over the last 24 h (or the host's life if shorter), scaled to a day.
          const since = Math.max(now - 24 * HOUR, h.createdAt);
          const span = Math.max(60_000, now - since);
          const u = await metrics.store.usage(h.id, since, now);
          const day = (b: number) => Math.round((b * 24 * HOUR) / span);
          // 1-minute and 1-hour tiers fill at a fixed rate per series: derive them from the series count.
          const st = metrics.latest.get(h.id);
          const nSeries = st ? Object.keys(latestSeries(st)).length : 0;
          const perDay = { raw: day(u.raw.bytes), m1: nSeries * 24 * 60 * 4 * 8, h1: nSeries * 24 * 4 * 8, top: day(u.top.bytes) };
          out.push({
            hostId: h.id,
            hostname: h.hostname,
            series: nSeries,
            measuredSec: Math.round(span / 1000),
            bytesPerDay: { ...perDay, total: perDay.raw + perDay.m1 + perDay.h1 + perDay.top },
            bytesAtRetention: {
              raw: Math.round((perDay.raw * ret.rawSec) / 86400),
              m1: Math.round((perDay.m1 * ret.m1Sec) / 86400),
              h1: Math.round((perDay.h1 * ret.h1Sec) / 86400),
              top: Math.round((perDay.top * ret.topSec) / 86400),
            },
          });
        }
        return { retention: ret, hosts: out, note: 'payload bytes; indexes and database overhead add roughly 20-40 %' };
      },
    );
  };
}
