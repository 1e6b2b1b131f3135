/**
 * Alerts over HTTP, split by what a call does: reads (viewer, scope read: alerts, history, rules,
 * channels without their secrets, silences, the delivery log, the live stream); rule and silence
 * changes (operator, scope write); channel changes (admin, scope write: a channel decides where
 * fleet data is sent, and holds credentials). A user limited to some hosts sees only those hosts'
 * alerts, may silence only those hosts, and cannot change rules (they apply to the whole fleet).
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { WebSocket } from 'ws';
import { access, errors, hostAllowed } from '../../http.js';
import { parseTime } from '../metrics/routes.js';
import { FAMILIES } from '../metrics/series.js';
import { secretView } from './channels.js';
import { ANOMALY_TYPES, DERIVED, PRESETS, SEVERITIES, type Rule, type RuleInput } from './model.js';
import type { AlertView } from './notifier.js';
import { AlertError, type AlertService } from './service.js';
import type { AlertRow, Channel, Silence } from './store.js';
import { OPS } from './evaluator.js';
import { CHANNEL_TYPES } from './channels.js';

const lit = <T extends string>(xs: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...xs] });
const Num = Type.Union([Type.Number(), Type.Null()]);
const Str = Type.Union([Type.String(), Type.Null()]);

const AlertSchema = Type.Object({
  id: Type.String(),
  ruleId: Type.String(),
  ruleName: Type.String(),
  severity: Type.String(),
  hostId: Type.String({ description: 'empty for alerts about no host (certificate expiry of an endpoint)' }),
  hostname: Type.String(),
  subject: Type.String({ description: 'the series key (cpu_percent|busy, fs_used_percent|/var), container, unit or endpoint' }),
  state: lit(['pending', 'firing', 'resolved', 'inactive'] as const),
  value: Num,
  peak: Num,
  threshold: Type.Number(),
  op: Type.String(),
  startedAt: Type.Number({ description: 'when the condition started to hold (pending since)' }),
  firedAt: Num,
  endedAt: Num,
  endReason: Str,
  silenced: Type.Boolean(),
  flapping: Type.Boolean(),
  detail: Str,
});

const ScopeSchema = Type.Object(
  {
    hosts: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 })),
    selector: Type.Optional(Type.String({ maxLength: 1024 })),
    exclude: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 })),
  },
  { additionalProperties: false },
);
const ruleFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  kind: lit(['metric', 'anomaly'] as const),
  metric: Type.String({ maxLength: 300, description: 'cpu_percent|busy, fs_used_percent (every mount), fs_used_percent|/var; see GET /api/v1/alerts/catalog' }),
  anomaly: lit(ANOMALY_TYPES),
  op: lit(OPS),
  threshold: Type.Number(),
  forSec: Type.Number({ minimum: 0, maximum: 7 * 86400, description: 'how long the condition must hold before firing' }),
  resolveForSec: Type.Number({ minimum: 0, maximum: 7 * 86400, description: 'how long it must stay clear before resolving' }),
  aggregate: lit(['all', 'avg'] as const),
  params: Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 1024 }), Type.Number()])),
  scope: ScopeSchema,
  severity: lit(SEVERITIES),
  enabled: Type.Boolean(),
  channels: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 }),
  groupWindowSec: Type.Number({ minimum: 0, maximum: 86400 }),
};
const RuleSchema = Type.Object({ id: Type.String(), preset: Str, createdAt: Type.Number(), updatedAt: Type.Number(), ...ruleFields, metric: Str, anomaly: Str });
const { name: _name, ...optionalRuleFields } = ruleFields;
const RuleBody = Type.Object({ name: ruleFields.name, ...(Object.fromEntries(Object.entries(optionalRuleFields).map(([k, v]) => [k, Type.Optional(v)])) as Record<string, ReturnType<typeof Type.Optional>>) }, { additionalProperties: false });
const RulePatch = Type.Partial(Type.Object(ruleFields), { additionalProperties: false });

const ChannelSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  enabled: Type.Boolean(),
  config: Type.Record(Type.String(), Type.Unknown()),
  secret: Type.Record(Type.String(), Type.Object({ set: Type.Boolean(), names: Type.Optional(Type.Array(Type.String())) }), { description: 'which secret fields are set; values are never shown' }),
  createdAt: Type.Number(),
  updatedAt: Type.Number(),
});
const channelFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  type: lit(CHANNEL_TYPES),
  enabled: Type.Boolean(),
  config: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
    description: 'webhook: {url}; email: {host, port, tls: tls|starttls|none, from, to: [], username, tlsVerify}; all: {minSeverity}',
  }),
  secret: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
    description: 'webhook: {hmacKey, headers: {name: value}}; slack: {url}; email: {password}; dingtalk, feishu: {url, signSecret}. On edit, fields left out are kept and null removes one.',
  }),
};
const ChannelBody = Type.Object({ name: channelFields.name, type: channelFields.type, enabled: Type.Optional(channelFields.enabled), config: Type.Optional(channelFields.config), secret: Type.Optional(channelFields.secret) }, { additionalProperties: false });
const ChannelPatch = Type.Object({ name: Type.Optional(channelFields.name), enabled: Type.Optional(channelFields.enabled), config: Type.Optional(channelFields.config), secret: Type.Optional(channelFields.secret) }, { additionalProperties: false });

const SilenceSchema = Type.Object({ id: Type.String(), ruleId: Str, hostId: Str, selector: Str, startsAt: Type.Number(), endsAt: Type.Number(), reason: Type.String(), createdBy: Type.String(), createdAt: Type.Number(), active: Type.Boolean() });
const SilenceBody = Type.Object(
  {
    ruleId: Type.Optional(Type.String({ maxLength: 64 })),
    hostId: Type.Optional(Type.String({ maxLength: 64 })),
    selector: Type.Optional(Type.String({ maxLength: 1024, description: 'hosts whose labels match' })),
    startsAt: Type.Optional(Type.Number()),
    endsAt: Type.Optional(Type.Number({ description: 'epoch ms' })),
    durationSec: Type.Optional(Type.Number({ minimum: 1, maximum: 366 * 86400, description: 'instead of endsAt' })),
    reason: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);
const DeliverySchema = Type.Object({
  id: Type.String(),
  channelId: Type.String(),
  channelName: Type.String(),
  ruleId: Str,
  kind: Type.String(),
  status: lit(['pending', 'ok', 'retrying', 'failed'] as const),
  attempts: Type.Integer(),
  lastError: Str,
  responseStatus: Num,
  alertIds: Type.Array(Type.String()),
  title: Type.String(),
  createdAt: Type.Number(),
  updatedAt: Type.Number(),
});
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const Ok = Type.Object({ ok: Type.Boolean() });

const channelView = (c: Channel) => ({ id: c.id, name: c.name, type: c.type, enabled: c.enabled, config: c.config, secret: secretView(c), createdAt: c.createdAt, updatedAt: c.updatedAt });
const silenceView = (s: Silence, now: number) => ({ ...s, active: s.startsAt <= now && s.endsAt > now });

function fail(reply: FastifyReply, err: unknown) {
  if (err instanceof AlertError) return reply.code(err.status).send({ error: err.code, message: err.message });
  throw err;
}

export interface AlertRouteOptions {
  trackSocket: (cred: string, socket: WebSocket) => void;
  originAllowed: (req: FastifyRequest) => boolean;
}

export function alertRoutes(alerts: AlertService, o: AlertRouteOptions) {
  const read = access({ role: 'viewer', scope: 'read' });
  const operate = access({ role: 'operator', scope: 'write' });
  const administer = access({ role: 'admin', scope: 'write' });
  /** Alerts about no host (a TLS endpoint) are fleet-wide and visible to all. */
  const visible = (req: FastifyRequest, hostId: string) => hostId === '' || (!req.hostScopes ? true : hostAllowed(req, alerts.hostLabels(hostId) ?? {}) && alerts.hostLabels(hostId) !== undefined);
  const fleetOnly = (req: FastifyRequest, reply: FastifyReply, what: string) => {
    if (!req.hostScopes) return false;
    void reply.code(403).send({ error: 'forbidden', message: `${what} apply to the whole fleet: a user limited to some hosts cannot change them` });
    return true;
  };
  const historyView = (a: AlertRow): AlertView => ({ ...a, hostname: alerts.hostname(a.hostId), value: Number.isFinite(a.value) ? a.value : null, peak: Number.isFinite(a.peak) ? a.peak : null });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    // ---- alerts
    r.get(
      '/api/v1/alerts',
      {
        ...read,
        schema: {
          tags: ['alerts'],
          summary: 'Pending and firing alerts now',
          querystring: Type.Object({ rule: Type.Optional(Type.String({ maxLength: 64 })), host: Type.Optional(Type.String({ maxLength: 64 })), state: Type.Optional(lit(['pending', 'firing'] as const)) }),
          response: { 200: Type.Object({ alerts: Type.Array(AlertSchema) }), ...errors(401) },
        },
      },
      async (req) => ({
        alerts: (await alerts.activeNow()).filter((a) => (!req.query.rule || a.ruleId === req.query.rule) && (!req.query.host || a.hostId === req.query.host) && (!req.query.state || a.state === req.query.state) && visible(req, a.hostId)),
      }),
    );
    r.get(
      '/api/v1/alerts/history',
      {
        ...read,
        schema: {
          tags: ['alerts'],
          summary: 'Alerts that fired (one row per episode, with start, end and peak), newest first; from/to select episodes overlapping the range',
          querystring: Type.Object({
            rule: Type.Optional(Type.String({ maxLength: 64 })),
            host: Type.Optional(Type.String({ maxLength: 64 })),
            state: Type.Optional(lit(['firing', 'resolved'] as const)),
            from: Type.Optional(Type.String({ maxLength: 40, description: 'epoch ms, ISO 8601, now or -24h' })),
            to: Type.Optional(Type.String({ maxLength: 40 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
          }),
          response: { 200: Type.Object({ alerts: Type.Array(AlertSchema) }), ...errors(400, 401) },
        },
      },
      async (req, reply) => {
        const now = app.clock.now();
        let from: number | undefined, to: number | undefined;
        try {
          from = req.query.from ? parseTime(req.query.from, now, 0) : undefined;
          to = req.query.to ? parseTime(req.query.to, now, now) : undefined;
        } catch (err) {
          return reply.code(400).send({ error: 'bad_request', message: (err as Error).message });
        }
        await alerts.settled();
        const rows = await alerts.store.history({ ...(req.query.rule ? { ruleId: req.query.rule } : {}), ...(req.query.host ? { hostId: req.query.host } : {}), ...(req.query.state ? { state: req.query.state } : {}), ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), limit: req.query.limit ?? 200, offset: req.query.offset ?? 0 });
        return { alerts: rows.filter((a) => visible(req, a.hostId)).map(historyView) };
      },
    );
    r.get(
      '/api/v1/alerts/catalog',
      {
        ...read,
        schema: {
          tags: ['alerts'],
          summary: 'What rules can watch: metric families (collected and derived), anomaly types (and what feeds each in this hub), presets',
          response: {
            200: Type.Object({
              metrics: Type.Array(Type.Object({ family: Type.String(), help: Type.String(), dim: Type.Optional(Type.String()), derived: Type.Boolean() })),
              anomalies: Type.Array(Type.Object({ type: Type.String(), help: Type.String(), op: Type.String(), threshold: Type.Number(), thresholdEditable: Type.Boolean(), unit: Type.String(), fedBy: Type.Array(Type.String()) })),
              presets: Type.Array(Type.String()),
              channelTypes: Type.Array(Type.String()),
            }),
          },
        },
      },
      async () => ({
        metrics: [
          ...Object.entries(FAMILIES).map(([family, f]) => ({ family, help: f.help, ...(f.dim ? { dim: f.dim } : {}), derived: false })),
          ...Object.entries(DERIVED).map(([family, f]) => ({ family, help: f.help, ...(f.dim ? { dim: f.dim } : {}), derived: true })),
        ],
        anomalies: alerts.anomalyCatalog(),
        presets: Object.keys(PRESETS),
        channelTypes: [...CHANNEL_TYPES],
      }),
    );
    r.get('/api/v1/alerts/live', { ...read, websocket: true, schema: { hide: true } }, (socket, req) => {
      if (!o.originAllowed(req)) {
        socket.close(4403, 'origin not allowed');
        return;
      }
      o.trackSocket(req.auth!.credHash, socket);
      const send = (m: unknown) => {
        if (socket.readyState !== socket.OPEN) return;
        // A client that cannot keep up is dropped; it reconnects and gets a fresh snapshot.
        if (socket.bufferedAmount > 1024 * 1024) return socket.close(4429, 'too slow');
        socket.send(JSON.stringify(m));
      };
      const onChange = (a: AlertView) => {
        if (visible(req, a.hostId)) send({ type: 'alert', alert: a });
      };
      alerts.on('change', onChange);
      socket.on('close', () => alerts.off('change', onChange));
      socket.on('error', () => {});
      void alerts.activeNow().then((list) => send({ type: 'snapshot', alerts: list.filter((a) => visible(req, a.hostId)) }));
    });

    // ---- rules
    r.get('/api/v1/alerts/rules', { ...read, schema: { tags: ['alerts'], summary: 'Alert rules (presets included)', response: { 200: Type.Object({ rules: Type.Array(RuleSchema) }), ...errors(401) } } }, async () => ({ rules: alerts.listRules() }));
    r.get('/api/v1/alerts/rules/:id', { ...read, schema: { tags: ['alerts'], summary: 'One rule', params: IdParams, response: { 200: RuleSchema, ...errors(401, 404) } } }, async (req, reply) => alerts.getRule(req.params.id) ?? reply.code(404).send({ error: 'not_found', message: 'no such rule' }));
    r.post(
      '/api/v1/alerts/rules',
      { ...operate, schema: { tags: ['alerts'], summary: 'Create a rule: a metric (any series, per dimension) or an anomaly, with scope, operator, threshold, duration, severity and channels', body: RuleBody, response: { 201: RuleSchema, ...errors(400, 401, 403) } } },
      async (req, reply) => {
        if (fleetOnly(req, reply, 'rules')) return reply;
        try {
          const rule = await alerts.createRule(req.body as Partial<RuleInput>);
          noteAudit(req, { type: 'rule', id: rule.id, name: rule.name, role: 'result' });
          return reply.code(201).send(rule);
        } catch (err) {
          return fail(reply, err);
        }
      },
    );
    r.patch(
      '/api/v1/alerts/rules/:id',
      { ...operate, schema: { tags: ['alerts'], summary: 'Change a rule (enable/disable: {"enabled": false}); alerts of a disabled rule end', params: IdParams, body: RulePatch, response: { 200: RuleSchema, ...errors(400, 401, 403, 404) } } },
      async (req, reply) => {
        if (fleetOnly(req, reply, 'rules')) return reply;
        try {
          return await alerts.updateRule(req.params.id, req.body as Partial<RuleInput>);
        } catch (err) {
          return fail(reply, err);
        }
      },
    );
    r.delete('/api/v1/alerts/rules/:id', { ...operate, schema: { tags: ['alerts'], summary: 'Delete a rule; its alerts end', params: IdParams, response: { 200: Ok, ...errors(401, 403, 404) } } }, async (req, reply) => {
      if (fleetOnly(req, reply, 'rules')) return reply;
      try {
        await alerts.deleteRule(req.params.id);
        return { ok: true };
      } catch (err) {
        return fail(reply, err);
      }
    });
    r.post(
      '/api/v1/alerts/rules/reset-presets',
      { ...operate, schema: { tags: ['alerts'], summary: 'Put the preset rules (CPU, memory, disk, inode, load, swap, host offline, network errors; container restart loop, OOM kill, unhealthy container, failed unit, clock skew, the hub certificate) back as shipped; other rules are untouched', response: { 200: Type.Object({ rules: Type.Array(RuleSchema) }), ...errors(401, 403) } } },
      async (req, reply) => {
        if (fleetOnly(req, reply, 'rules')) return reply;
        const rules = await alerts.resetPresets();
        noteAudit(req, ...rules.filter((x) => x.preset).map((x) => ({ type: 'rule', id: x.id, name: x.name })));
        return { rules };
      },
    );

    // ---- channels
    r.get('/api/v1/alerts/channels', { ...read, schema: { tags: ['alerts'], summary: 'Notification channels; secret fields show only whether they are set', response: { 200: Type.Object({ channels: Type.Array(ChannelSchema) }), ...errors(401) } } }, async () => ({ channels: alerts.listChannels().map(channelView) }));
    r.get('/api/v1/alerts/channels/:id', { ...read, schema: { tags: ['alerts'], summary: 'One channel', params: IdParams, response: { 200: ChannelSchema, ...errors(401, 404) } } }, async (req, reply) => {
      const c = alerts.getChannel(req.params.id);
      return c ? channelView(c) : reply.code(404).send({ error: 'not_found', message: 'no such channel' });
    });
    r.post('/api/v1/alerts/channels', { ...administer, schema: { tags: ['alerts'], summary: 'Create a channel: webhook, slack, email, dingtalk or feishu', body: ChannelBody, response: { 201: ChannelSchema, ...errors(400, 401, 403) } } }, async (req, reply) => {
      if (fleetOnly(req, reply, 'channels')) return reply;
      try {
        const c = await alerts.putChannel(req.body as Parameters<AlertService['putChannel']>[0]);
        noteAudit(req, { type: 'channel', id: c.id, name: c.name, role: 'result' });
        return reply.code(201).send(channelView(c));
      } catch (err) {
        return fail(reply, err);
      }
    });
    r.patch('/api/v1/alerts/channels/:id', { ...administer, schema: { tags: ['alerts'], summary: 'Change a channel (secret fields left out are kept; null removes one)', params: IdParams, body: ChannelPatch, response: { 200: ChannelSchema, ...errors(400, 401, 403, 404) } } }, async (req, reply) => {
      if (fleetOnly(req, reply, 'channels')) return reply;
      try {
        return channelView(await alerts.putChannel(req.body as Parameters<AlertService['putChannel']>[0], req.params.id));
      } catch (err) {
        return fail(reply, err);
      }
    });
    r.delete('/api/v1/alerts/channels/:id', { ...administer, schema: { tags: ['alerts'], summary: 'Delete a channel no rule sends to', params: IdParams, response: { 200: Ok, ...errors(401, 403, 404, 409) } } }, async (req, reply) => {
      if (fleetOnly(req, reply, 'channels')) return reply;
      try {
        await alerts.deleteChannel(req.params.id);
        return { ok: true };
      } catch (err) {
        return fail(reply, err);
      }
    });
    r.post('/api/v1/alerts/channels/:id/test', { ...operate, schema: { tags: ['alerts'], summary: 'Send a test notification now (one attempt) and answer how it went', params: IdParams, response: { 200: DeliverySchema, ...errors(401, 403, 404) } } }, async (req, reply) => {
      try {
        return await alerts.testChannel(req.params.id);
      } catch (err) {
        return fail(reply, err);
      }
    });
    r.get(
      '/api/v1/alerts/deliveries',
      {
        ...read,
        schema: {
          tags: ['alerts'],
          summary: 'The delivery log: every notification per channel with its status, attempts and last error, newest first',
          querystring: Type.Object({ channel: Type.Optional(Type.String({ maxLength: 64 })), rule: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })) }),
          response: { 200: Type.Object({ deliveries: Type.Array(DeliverySchema) }), ...errors(401) },
        },
      },
      async (req) => ({ deliveries: await alerts.store.deliveries({ ...(req.query.channel ? { channelId: req.query.channel } : {}), ...(req.query.rule ? { ruleId: req.query.rule } : {}), limit: req.query.limit ?? 200 }) }),
    );

    // ---- silences
    r.get('/api/v1/alerts/silences', { ...read, schema: { tags: ['alerts'], summary: 'Silences, current and past', response: { 200: Type.Object({ silences: Type.Array(SilenceSchema) }), ...errors(401) } } }, async (req) => ({
      silences: alerts
        .listSilences()
        .filter((s) => !s.hostId || visible(req, s.hostId))
        .map((s) => silenceView(s, app.clock.now())),
    }));
    r.post(
      '/api/v1/alerts/silences',
      { ...operate, schema: { tags: ['alerts'], summary: 'Silence notifications by rule, host and/or label selector until an end time, with a reason (alerts still show, marked silenced)', body: SilenceBody, response: { 201: SilenceSchema, ...errors(400, 401, 403) } } },
      async (req, reply) => {
        const b = req.body;
        if (req.hostScopes && (!b.hostId || !visible(req, b.hostId))) return reply.code(403).send({ error: 'forbidden', message: 'a user limited to some hosts silences one of those hosts (hostId)' });
        const endsAt = b.endsAt ?? (b.durationSec !== undefined ? app.clock.now() + b.durationSec * 1000 : NaN);
        try {
          const s = await alerts.addSilence({ ...(b.ruleId ? { ruleId: b.ruleId } : {}), ...(b.hostId ? { hostId: b.hostId } : {}), ...(b.selector ? { selector: b.selector } : {}), ...(b.startsAt !== undefined ? { startsAt: b.startsAt } : {}), endsAt, reason: b.reason }, req.user!.username);
          noteAudit(req, { type: 'silence', id: s.id, role: 'result' }, ...(s.hostId ? [{ type: 'host', id: s.hostId }] : []), ...(s.ruleId ? [{ type: 'rule', id: s.ruleId }] : []));
          return reply.code(201).send(silenceView(s, app.clock.now()));
        } catch (err) {
          return fail(reply, err);
        }
      },
    );
    r.delete('/api/v1/alerts/silences/:id', { ...operate, schema: { tags: ['alerts'], summary: 'End a silence (delete it)', params: IdParams, response: { 200: Ok, ...errors(401, 403, 404) } } }, async (req, reply) => {
      const s = alerts.listSilences().find((x) => x.id === req.params.id);
      if (!s || (req.hostScopes && (!s.hostId || !visible(req, s.hostId)))) return reply.code(404).send({ error: 'not_found', message: 'no such silence' });
      try {
        await alerts.deleteSilence(req.params.id);
        return { ok: true };
      } catch (err) {
        return fail(reply, err);
      }
    });
  };
}

export type { Rule };
